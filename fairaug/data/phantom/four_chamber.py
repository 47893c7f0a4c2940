"""The phantom's four-chamber plane, cut from the same heart as its short axis.

Plane coordinates in mm: u along the LV long axis from the end-diastolic mitral-valve plane
towards the apex, v across it (positive: the LV's lateral wall; negative: the septum and the
RV). What the short axis solves per slice and frame is read here per depth, so both views show
one heart:

- the LV cavity's half-width at a depth below the moving base is the short-axis cavity radius
  there: the apex stays while the valve plane descends in systole (long-axis shortening);
- the wall keeps its cross-section as the cavity narrows (systolic thickening); an infarct
  thins and stills the wall on the side of the plane its territory reaches (LAD: septum and
  apex; LCx: lateral wall; RCA: basal septum), and the healthy side contracts more, as in the
  short axis;
- the RV is as deep as the short-axis crescent at its middle (the plane cuts the crescent
  where it is deepest), opens at a tricuspid annulus nearer the apex than the mitral one, and
  holds a moderator band;
- the atria hang from the valve planes, filling while the ventricles empty; slow relaxation
  dilates the left atrium (HFpEF).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fairaug.data.phantom.body import OUTSIDE, ellipse_distance
from fairaug.data.phantom.heart import (
    ANGLES,
    RV_LENGTH,
    RV_WALL_MM,
    SCAR_THINNING,
    SEPTAL_GAP_MM,
    LeftVentricle,
    RightVentricle,
    crescent_depth,
    epicardial_radius,
    rv_taper,
)

TRICUSPID_OFFSET_MM = 7.0  # the tricuspid annulus sits this much nearer the apex than the mitral
ANNULUS_MM = 2.0  # the LV wall reaches this far above the valve plane (the annulus)
ATRIAL_RADIUS_MM = 17.0  # left atrium at end-diastole with healthy relaxation
ATRIAL_FILLING = 0.2  # atrial growth from end-diastole to end-systole
LA_DILATION = 0.8  # left-atrial growth per unit of early filling lost to slow relaxation
ATRIAL_WALL_MM = 2.0
LEAFLET_MM = 1.5  # closed atrioventricular valve leaflets, as a line between atrium and ventricle
INTERATRIAL_SEPTUM_MM = 3.0
MODERATOR_BAND = (0.6, 1.2)  # position along the RV (of its length) and half-thickness, mm


class Chambers(NamedTuple):
    """Signed distances (mm, positive inside), each (..., T) over the plane and the frames."""

    lv_cavity: np.ndarray
    lv_wall: np.ndarray  # the LV's epicardium (the cavity inside it)
    rv_cavity: np.ndarray
    rv_wall: np.ndarray
    left_atrium: np.ndarray
    right_atrium: np.ndarray
    moderator_band: np.ndarray  # inside the RV cavity


def _infarct(lv: LeftVentricle, rv_angle: float, u: np.ndarray, septal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the plane cuts the wall at end-diastolic depth u: the infarct weight (0 healthy,
    1 scar; on the septal side at the direction of the RV, on the lateral side opposite) and the
    share of the slice's circumference the infarct holds, per slice as the short axis has them,
    interpolated along the long axis between the slices (held beyond the first and last)."""
    if lv.defect_centre is None:
        return np.zeros_like(u), np.zeros_like(u)
    slices, depths = range(len(lv.depth)), lv.depth[:, 0]
    septum = [lv.defect(np.array([rv_angle]), z)[0] for z in slices]
    lateral = [lv.defect(np.array([rv_angle + np.pi]), z)[0] for z in slices]
    share = [float(np.mean(lv.defect(ANGLES, z))) for z in slices]
    scar = np.where(septal, np.interp(u, depths, septum), np.interp(u, depths, lateral))
    return scar, np.interp(u, depths, share)


def four_chamber(
    lv: LeftVentricle,
    rv: RightVentricle,
    curve: np.ndarray,
    systole: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    rv_angle: float,
    slow_relaxation: float,
) -> Chambers:
    """The chambers of the plane points (u, v) (each (..., 1)) in every frame (the last axis);
    `curve` is the share of stroke volume present per frame, `systole` whether the
    atrioventricular valves are closed."""
    length, radius = lv.length.astype(np.float32), lv.base_radius.astype(np.float32)  # (T,)
    base = length[0] - length  # the valve plane's descent towards the fixed apex
    depth = u - base  # below the moving valve plane

    def half_width(depth, length, radius):
        return radius * np.sqrt(np.clip(1.0 - (depth / length) ** 2, 0.0, None))

    # Cavity radii as the short axis's LeftVentricle.radii has them, at and above the valve plane
    # the base's (where the wall rims the annulus): c at this depth below the moving base, c0 where
    # the tissue was at end-diastole; an infarct keeps c0 (akinesis), the other sectors take up
    # the difference in area.
    moving = half_width(np.maximum(depth, 0.0), length, radius)
    still = half_width(np.maximum(u, 0.0), length[0], radius[0])
    septal = v < 0
    scar, share = _infarct(lv, rv_angle, u, septal)
    healthy_sq = np.maximum((moving**2 - share * still**2) / (1.0 - share), (0.3 * moving) ** 2)
    cavity = np.sqrt(scar * still**2 + (1.0 - scar) * healthy_sq)
    wall = lv.wall * (1.0 - SCAR_THINNING * scar)
    apex = length[0]
    epicardium = np.where(
        u <= apex,
        epicardial_radius(cavity, still, wall),
        wall * np.sqrt(np.clip(1.0 - ((u - apex) / wall) ** 2, 0.0, None)),  # closing over the apex
    )
    across = np.abs(v)
    lv_cavity = np.where(cavity > 0, np.minimum(cavity - across, depth), OUTSIDE)
    lv_wall = np.where(epicardium > 0, np.minimum(epicardium - across, depth + ANNULUS_MM), OUTSIDE)

    # The RV's cross-section at this depth as the short axis has it: a crescent as deep as one
    # wrapped around the septum without infarct, lying beyond that septum or this one, whichever
    # reaches further.
    septum = epicardial_radius(moving, still, lv.wall)
    section = rv.section * rv_taper(u, length[0]) * (depth >= TRICUSPID_OFFSET_MM)
    rv_depth = crescent_depth(section, septum + SEPTAL_GAP_MM)
    inner = np.maximum(septum, epicardium) + SEPTAL_GAP_MM
    open_rv = septal & (rv_depth > 0)
    rv_cavity = np.where(
        open_rv, np.minimum.reduce([-v - inner, inner + rv_depth + v, depth - TRICUSPID_OFFSET_MM]), OUTSIDE
    )
    rv_wall = np.where(open_rv, rv_cavity + RV_WALL_MM, OUTSIDE)
    band_at, band_half = MODERATOR_BAND
    band_depth = TRICUSPID_OFFSET_MM + band_at * (RV_LENGTH * length[0] - TRICUSPID_OFFSET_MM - base)
    moderator_band = np.where(rv_cavity > 0, band_half - np.abs(depth - band_depth), OUTSIDE)

    filled = 1.0 + ATRIAL_FILLING * (1.0 - curve)  # the atria fill in ventricular systole
    la = ATRIAL_RADIUS_MM * (1.0 + LA_DILATION * slow_relaxation) * filled
    ra = 0.9 * ATRIAL_RADIUS_MM * filled
    la_centre = 0.2 * radius[0]
    ra_centre = la_centre - la - INTERATRIAL_SEPTUM_MM - ra
    # The atria open onto their valve planes; the closed leaflets in systole are a thin line.
    leaflets = np.where(systole, LEAFLET_MM, 0.0)
    left_atrium = np.minimum(ellipse_distance(u, v, base - 0.6 * la, la_centre, 1.1 * la, la), -depth - leaflets)
    tricuspid = depth - TRICUSPID_OFFSET_MM
    right_atrium = np.minimum(
        ellipse_distance(u, v, base + TRICUSPID_OFFSET_MM - 0.6 * ra, ra_centre, 1.1 * ra, ra), -tricuspid - leaflets
    )
    # Between the two valve planes the right atrium lies beside the LV's base, beyond the septum.
    right_atrium = np.where(depth >= -ANNULUS_MM, np.minimum(right_atrium, -v - inner), right_atrium)
    return Chambers(lv_cavity, lv_wall, rv_cavity, rv_wall, left_atrium, right_atrium, moderator_band)
