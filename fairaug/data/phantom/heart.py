"""Shape and motion of the phantom's ventricles, per short-axis slice and frame.

The LV cavity is a truncated prolate ellipsoid whose base descends towards a fixed apex in
systole (long-axis shortening, so the basal slice leaves the ventricle at end-systole). Its
mean radius per slice is solved so that the cavity volume summed over slices (what a
Simpson's-rule analysis of the masks measures) equals the subject's volume in every frame.
An ischaemic territory keeps its end-diastolic radius (akinesis) and half its wall (scar);
the rest of the slice contracts more, so the slice still holds its volume. The myocardial
cross-section of every angular sector is conserved through the cycle while the slice stays in
the ventricle (wall thickening), and the wall is solved so the ED myocardium holds the
subject's LV mass (less the basal wall the outflow tract opens, a few per cent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairaug.data.measurements import MYOCARDIUM_G_PER_ML
from fairaug.data.phantom.body import OUTSIDE, soft_inside

LV_ASPECT = 3.5  # long axis / basal radius of the LV cavity
LONGITUDINAL_SHORTENING = 0.25  # fraction of the ejected volume fraction lost in length
SCAR_THINNING = 0.5  # wall thickness lost in the centre of an infarct
INFARCT_BORDER = 0.35  # radians over which an infarct fades into healthy wall
SLICE_THICKNESS = 0.8  # of the slice spacing (UK Biobank: 8 mm slices, 2 mm gaps)
MAX_PARTIAL_VOLUME_MM = 15.0  # widest partial-volume band of an oblique wall
ANGLES = np.linspace(-np.pi, np.pi, 720, endpoint=False)  # grid for angular integrals

# Where each coronary territory lies, relative to the septum (the direction of the RV), and
# which part of the base-to-apex length it covers (as fractions of the ED length).
TERRITORY_CENTRE = {"LAD": np.pi / 4, "RCA": -np.pi / 3, "LCx": np.pi + 0.4}
TERRITORY_DEPTH = {"LAD": (0.35, 1.0), "RCA": (0.0, 0.7), "LCx": (0.0, 0.75)}


def volume_curve(n_frames: int, es_frame: int, early_filling: float) -> np.ndarray:
    """Fraction of stroke volume present per frame: 1 at ED (frame 0), 0 at ES.

    Diastole is early (passive) filling, then the atrial kick; slow relaxation (HFpEF)
    moves filling from the first to the second.
    """
    phase = np.arange(n_frames) / n_frames
    es = es_frame / n_frames
    systole = 0.5 * (1.0 + np.cos(np.pi * np.minimum(phase, es) / es))
    u = np.clip((phase - es) / (1.0 - es), 0.0, 1.0)
    atrial_kick = np.clip((u - 0.7) / 0.3, 0.0, 1.0) ** 2
    diastole = early_filling * (1.0 - np.exp(-5.0 * u)) + (1.0 - early_filling) * atrial_kick
    return np.where(phase <= es, systole, diastole)


def wrapped(angle):
    """Angle folded into [-π, π) (floor, not %: several times faster on float32 arrays)."""
    return angle - 2.0 * np.pi * np.floor((angle + np.pi) / (2.0 * np.pi))


def _ramp(value, low, high, width):
    """1 inside [low, high], falling linearly to 0 over `width` outside."""
    return np.clip(np.minimum(value - low, high - value) / width + 1.0, 0.0, 1.0)


@dataclass
class LeftVentricle:
    cavity: np.ndarray  # (Z, T) mean cavity radius, mm (0: the slice misses the cavity)
    depth: np.ndarray  # (Z, T) distance below the moving base, mm (negative: above the valve plane)
    length: np.ndarray  # (T,) base-to-apex length of the cavity, mm
    wall: float  # healthy ED wall thickness, mm
    defect_centre: float | None  # angle of the infarct centre in the image, or None
    defect_half: float  # half-width of the infarct, radians
    defect_extent: np.ndarray  # (Z,) how much of the infarct each slice holds, 0..1
    through_plane: np.ndarray  # (Z, T) spread of the cavity radius over the slice thickness, mm
    base_radius: np.ndarray  # (T,) cavity radius at the base; at depth d it is base_radius·√(1 - (d/length)²)

    def defect(self, theta: np.ndarray, z: int) -> np.ndarray:
        """Infarct weight (0 healthy, 1 scar) at angles `theta` of slice z."""
        if self.defect_centre is None or self.defect_extent[z] == 0:
            return np.zeros_like(theta)
        inside = self.defect_half - np.abs(wrapped(theta - self.defect_centre))
        return self.defect_extent[z] * np.clip(inside / INFARCT_BORDER + 1.0, 0.0, 1.0)

    def radii(self, theta: np.ndarray, z: int, t) -> tuple[np.ndarray, np.ndarray]:
        """Endo- and epicardial radius (mm) at angles `theta` of slice z in frame(s) t.

        `theta` broadcasts against `cavity[z, t]`; an infarct keeps its ED radius and the
        other sectors take up the difference in area.
        """
        c0 = self.cavity[z, 0]
        c = self.cavity[z, t]
        w = self.defect(theta, z)
        share = float(np.mean(self.defect(ANGLES, z)))
        healthy_sq = np.maximum((c**2 - share * c0**2) / (1.0 - share), (0.3 * c) ** 2)
        endo_sq = w * c0**2 + (1.0 - w) * healthy_sq
        section = (c0 + self.wall * (1.0 - SCAR_THINNING * w)) ** 2 - c0**2
        inside = np.asarray(c) > 0
        return np.sqrt(endo_sq) * inside, np.sqrt(endo_sq + section) * inside


def left_ventricle(
    subject: dict, curve: np.ndarray, n_slices: int, slice_mm: float, rv_angle: float, rng: np.random.Generator
) -> LeftVentricle:
    """Solve the LV of one subject for every slice and frame."""
    edv, esv = subject["lvedv_ml"] * 1e3, subject["lvesv_ml"] * 1e3
    volume = esv + (edv - esv) * curve  # mm³ per frame
    length_ed = LV_ASPECT * (edv / (2.0 / 3.0 * np.pi * LV_ASPECT)) ** (1.0 / 3.0)
    descent = LONGITUDINAL_SHORTENING * length_ed * (edv - volume) / edv  # base moves towards the apex
    length = length_ed - descent
    position = rng.uniform(2.0, 8.0) + slice_mm * np.arange(n_slices)[:, None]  # below the ED base
    depth = position - descent[None, :]

    def profile(depth):  # (Z, T) squared radius relative to the base's
        return np.where(depth >= 0, np.clip(1.0 - (depth / length[None, :]) ** 2, 0.0, None), 0.0)

    radius_sq = volume / (np.pi * slice_mm * profile(depth).sum(axis=0))
    cavity = np.sqrt(radius_sq[None, :] * profile(depth))
    # A slice is SLICE_THICKNESS thick: where the wall is oblique to it (base, apex), the
    # cavity's edge smears over the radii it spans within the slice.
    half = SLICE_THICKNESS * slice_mm / 2.0
    spanned = np.abs(np.sqrt(radius_sq * profile(depth - half)) - np.sqrt(radius_sq * profile(depth + half)))

    territory = subject.get("territory")
    territory = territory if isinstance(territory, str) and territory else None  # "" or NaN (read back) for none
    centre, width, extent = None, 0.0, np.zeros(n_slices)
    if territory:
        centre = rv_angle + TERRITORY_CENTRE[territory]
        width = np.radians(subject["defect_deg"]) / 2.0
        low, high = TERRITORY_DEPTH[territory]
        extent = _ramp(position[:, 0] / length_ed, low, high, 0.15)
    lv = LeftVentricle(
        cavity.astype(np.float32),
        depth.astype(np.float32),
        length,
        0.0,
        centre,
        width,
        extent,
        (np.minimum(spanned, MAX_PARTIAL_VOLUME_MM) * (cavity > 0)).astype(np.float32),
        np.sqrt(radius_sq),
    )

    # ED myocardial area per slice is c0·W·∫f + W²/2·∫f² with f the relative wall thickness.
    c0 = cavity[:, 0]
    thickness = np.stack([1.0 - SCAR_THINNING * lv.defect(ANGLES, z) for z in range(n_slices)])
    step = 2.0 * np.pi / len(ANGLES)
    filled = c0 > 0
    a = 0.5 * (thickness[filled] ** 2).sum() * step
    b = (c0[filled] * thickness[filled].sum(axis=1)).sum() * step
    myocardium = subject["lv_mass_g"] / MYOCARDIUM_G_PER_ML * 1e3 / slice_mm  # mm², summed over slices
    lv.wall = float((-b + np.sqrt(b**2 + 4.0 * a * myocardium)) / (2.0 * a))
    return lv


RV_HALF_ANGLE = 1.45  # the RV crescent wraps ±83° around the septum
RV_LENGTH = 0.8  # of the LV's end-diastolic length: the RV ends before the LV apex
SEPTAL_GAP_MM = 1.0  # between the LV epicardium and the RV cavity (the septum's RV side)
RV_WALL_MM = 3.0


def crescent_profile(offset: np.ndarray) -> np.ndarray:
    """RV cavity depth (0..1) at angular distance `offset` from the direction of the RV."""
    return np.clip(1.0 - (offset / RV_HALF_ANGLE) ** 2, 0.0, None)


@dataclass
class RightVentricle:
    depth: np.ndarray  # (Z, T) cavity depth at the middle of the crescent, mm
    section: np.ndarray  # (T,) mm²: the cross-section at end-diastolic depth d is section·rv_taper(d, ...)
    through_plane: np.ndarray  # (Z, T) spread of the crescent's depth over the slice thickness, mm

    def cavity(
        self, r: np.ndarray, offset: np.ndarray, septum: np.ndarray, z: int, px: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The RV cavity of slice z: its signed distance (mm, positive inside; the masks) and the
        partial-volume fraction of RV blood (the image). `offset` is the angle from the RV
        direction and `septum` the LV epicardial radius, per frame.

        In the image the septal edge is as sharp as a pixel (it moves with the LV) and the free
        wall smeared by how far the crescent's depth changes over the slice thickness; the
        fraction is the overlap of the two edges' ramps, so a crescent thinner than a pixel
        holds its share of it and nothing is drawn where it ends."""
        inner = septum + SEPTAL_GAP_MM
        profile = crescent_profile(offset)
        outer = inner + self.depth[z] * profile
        # Beyond the crescent's tips there is no RV (nor its wall) around the LV.
        signed = np.where((septum > 0) & (outer > inner), np.minimum(r - inner, outer - r), OUTSIDE)
        free_wall = soft_inside(outer - r, np.maximum(self.through_plane[z] * profile, px))
        fraction = np.clip(soft_inside(r - inner, px) + free_wall - 1.0, 0.0, 1.0)
        return signed, np.where(septum > 0, fraction, 0.0)


def rv_taper(ed_depth, ed_length: float):
    """Relative RV cross-section at an end-diastolic depth below the base: widest at the base,
    ending before the LV apex."""
    return np.sqrt(np.clip(1.0 - (ed_depth / (RV_LENGTH * ed_length)) ** 2, 0.0, None))


def crescent_depth(area, inner):
    """Depth at the middle of a crescent of cross-section `area` (mm²) wrapped around the
    radius `inner`: area = inner·h·∫p + h²/2·∫p² over the crescent's profile p."""
    profile = crescent_profile(ANGLES)
    step = 2.0 * np.pi / len(ANGLES)
    p1, p2 = profile.sum() * step, (profile**2).sum() * step
    return (-inner * p1 + np.sqrt((inner * p1) ** 2 + 2.0 * p2 * area)) / p2


def epicardial_radius(cavity, ed_cavity, wall):
    """Epicardial radius around a cavity of radius `cavity` whose wall was `wall` thick around
    `ed_cavity` at end-diastole: the wall keeps its cross-section, so it thickens as the cavity
    narrows."""
    return np.sqrt(cavity**2 + 2.0 * ed_cavity * wall + wall**2)


def mean_epicardium(lv: LeftVentricle) -> np.ndarray:
    """(Z, T) epicardial radius of a slice without infarct (the septum the RV wraps)."""
    return epicardial_radius(lv.cavity, lv.cavity[:, :1], lv.wall) * (lv.cavity > 0)


def right_ventricle(subject: dict, curve: np.ndarray, lv: LeftVentricle, slice_mm: float) -> RightVentricle:
    """Crescent depth per slice and frame so that the slices hold the RV volume of each frame."""
    volume = (subject["rvesv_ml"] + (subject["rvedv_ml"] - subject["rvesv_ml"]) * curve) * 1e3  # mm³, (T,)
    septum = mean_epicardium(lv)
    inside = septum > 0
    ed_depth, ed_length = lv.depth[:, :1], lv.length[0]
    taper = rv_taper(ed_depth, ed_length) * inside
    section = volume / (taper.sum(axis=0) * slice_mm)
    inner = septum + SEPTAL_GAP_MM
    depth = crescent_depth(section[None, :] * taper, inner)
    # Where the RV narrows towards its end, the crescent's edge smears over the slice thickness.
    half = SLICE_THICKNESS * slice_mm / 2.0
    spanned = np.abs(
        crescent_depth(section[None, :] * rv_taper(ed_depth - half, ed_length), inner)
        - crescent_depth(section[None, :] * rv_taper(ed_depth + half, ed_length), inner)
    )
    return RightVentricle(
        np.where(inside, depth, 0.0).astype(np.float32),
        section,
        np.where(inside & (depth > 0), np.minimum(spanned, MAX_PARTIAL_VOLUME_MM), 0.0).astype(np.float32),
    )
