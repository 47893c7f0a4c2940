"""Renders a phantom subject as bSSFP cine MRI with its segmentation.

The ventricles (`heart.py`) sit in a chest (`body.py`): the LV with trabeculation and two
papillary muscles that move with the cycle (inside the blood-pool label, as UK Biobank
annotations draw them), a crescent RV wrapped on its septal side, epicardial fat, and above
the valve plane the atrium that the basal slice shows in systole. Blood signal varies with
in-flow; an anterior coil array shades the image; slices may be misregistered (breath-hold
mismatch); BMI blurs and adds noise, as body habitus does. Rician noise at real SNR; signals
and acquisition settings are `data.appearance`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from fairaug.data.measurements import BLOOD_POOL, MYOCARDIUM, RIGHT_VENTRICLE
from fairaug.data.phantom.body import OUTSIDE, Chest, blend, norm, smooth_field, soft_inside
from fairaug.data.phantom.four_chamber import ATRIAL_RADIUS_MM, ATRIAL_WALL_MM, Chambers, four_chamber
from fairaug.data.phantom.heart import (
    ANGLES,
    RV_WALL_MM,
    SEPTAL_GAP_MM,
    SLICE_THICKNESS,
    left_ventricle,
    mean_epicardium,
    right_ventricle,
    volume_curve,
    wrapped,
)
from fairaug.data.phantom.physiology import HEALTHY_EARLY_FILLING
from fairaug.schemas import AppearanceConfig

BLOOD, RV_BLOOD = 1.0, 0.95  # relative bSSFP signal of the blood pools
SYSTOLIC_SHIFT_MM = np.array([1.5, 1.0])  # in-plane translation of the heart at end-systole
SYSTOLIC_REACH_MM = float(np.hypot(*SYSTOLIC_SHIFT_MM))  # how far the heart moves
TRABECULATION_RADIUS_MM = 25.0  # cavity radius at which the trabecular layer is trabeculation_mm deep
LVOT_DEPTH_MM = 14.0  # slices this close to the ED base cut the LV outflow tract
AORTIC_ROOT_MM = 11.0  # radius
LONG_AXIS_TILT_DEG = (40.0, 8.0)  # mean and SD of the four-chamber view's lean of the apex
INTENSITY_SCALE = 500.0  # int16 counts for blood, close to the reference scanner's range


@dataclass(frozen=True)
class Geometry:
    matrix: int
    pixel_mm: float
    n_slices: int
    slice_mm: float
    n_frames: int


def angular_index(theta: np.ndarray) -> np.ndarray:
    """Index into ANGLES of each angle in [-π, π)."""
    return ((theta + np.pi) / (2.0 * np.pi) * len(ANGLES)).astype(int) % len(ANGLES)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of `signal` plus complex Gaussian noise of SD `sigma` per channel.

    The complex noise is drawn in polar form (Rayleigh radius, uniform phase): the same
    distribution as two Gaussian channels, at half the cost of drawing them.
    """
    radius = np.sqrt(-2.0 * np.log1p(-rng.random(signal.shape, dtype=np.float32))) * np.float32(sigma)
    cosine = np.cos(rng.random(signal.shape, dtype=np.float32) * np.float32(2.0 * np.pi))
    # |s + ρ·e^{iφ}|² = s² + 2sρ·cos φ + ρ², never below 0 but for rounding
    squared = signal * signal + 2.0 * signal * radius * cosine + radius * radius
    return np.sqrt(np.maximum(squared, 0.0, out=squared), out=squared)


class SubjectRenderer:
    """Everything one subject's images share: geometry, anatomy and image quality."""

    def __init__(self, subject: dict, geometry: Geometry, appearance: AppearanceConfig, seed: int):
        self.s, self.g, self.a = subject, geometry, appearance
        # Separate streams, so a change in one (e.g. the size of the heart's window) leaves the others alone.
        rng, chest, self.texture, self.noise_rng, long_axis = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
        )
        self.long_axis_tilt = np.radians(long_axis.normal(*LONG_AXIS_TILT_DEG))
        half = (geometry.matrix - 1) / 2.0
        axis = ((np.arange(geometry.matrix) - half) * geometry.pixel_mm).astype(np.float32)
        self.x, self.y = np.meshgrid(axis, axis, indexing="ij")
        # The heart near the middle of the field of view, as planned on the scanner: the default
        # 140 mm view crop around it stays inside the 173 mm field of view (no zero padding).
        self.centre = np.clip(rng.normal(0.0, 4.0, 2), -10.0, 10.0)
        bmi = subject["bmi"]
        # The septum points to the RV (image left, slightly anterior); obesity lays the heart
        # flatter, and women's hearts sit rotated against men's (appearance.rotation_female_deg).
        female = subject["sex"] == "female"
        rotation = rng.normal(appearance.rotation_female_deg * female, appearance.rotation_sd_deg)
        self.rv_angle = np.pi + 0.1 + np.radians(rotation) + 0.01 * (bmi - 25.0)
        excess = max(0.0, bmi - 22.0)
        self.fat_mm = float(np.clip(1.5 + 0.35 * (bmi - 20.0), 1.0, 12.0))
        self.blur_px = appearance.blur_px + appearance.blur_per_bmi * excess
        self.noise = appearance.noise * (1.0 + appearance.noise_per_bmi * excess)
        self.curve = volume_curve(geometry.n_frames, int(subject["es_frame"]), float(subject["early_filling"]))
        self.motion = SYSTOLIC_SHIFT_MM * (1.0 - self.curve)[:, None]  # (T, 2) the heart moves in systole
        self.lv = left_ventricle(subject, self.curve, geometry.n_slices, geometry.slice_mm, self.rv_angle, rng)
        self.rv = right_ventricle(subject, self.curve, self.lv, geometry.slice_mm)
        spread = appearance.misregistration_mm
        self.misregistration = np.clip(rng.normal(0.0, spread, (geometry.n_slices, 2)), -2.5 * spread, 2.5 * spread)
        harmonics = np.arange(6, 31)
        spikes = rng.uniform(0.3, 1.0, len(harmonics))[:, None] * np.cos(
            harmonics[:, None] * ANGLES[None, :] + rng.uniform(0, 2 * np.pi, len(harmonics))[:, None]
        )
        spikes = spikes.sum(axis=0)
        self.trabeculae = (((spikes - spikes.min()) / (spikes.max() - spikes.min())) ** 2).astype(np.float32)
        # Epicardial fat gathers in patches (grooves, inferior wall) rather than an even ring.
        patches = sum(rng.uniform(0.5, 1.0) * np.cos(k * ANGLES + rng.uniform(0, 2 * np.pi)) for k in range(1, 5))
        self.fat_patches = np.clip(0.6 + 0.6 * patches / np.abs(patches).max(), 0.1, None).astype(np.float32)
        self.papillary_angles = self.rv_angle + np.pi + np.array([-0.9, 0.9]) + rng.normal(0.0, 0.1, 2)
        # Each papillary muscle has two to four heads: (radial, tangential) offsets of the extra
        # heads from the main one and their radii, in units of the muscle's radius.
        self.papillary_heads = []
        for n in rng.integers(1, 3, endpoint=True, size=2):
            direction = rng.uniform(0.0, 2.0 * np.pi, n)
            offsets = rng.uniform(0.8, 1.1, n)[:, None] * np.stack([np.cos(direction), np.sin(direction)], axis=1)
            self.papillary_heads.append((offsets, rng.uniform(0.5, 0.75, n)))
        half_thickness = SLICE_THICKNESS * geometry.slice_mm / 2.0
        self.chest = Chest(subject, self.x, self.y, self.centre, appearance, geometry.pixel_mm, half_thickness, chest)

    # -- views ---------------------------------------------------------------------------
    def short_axis(self):
        """Cine (X, Y, Z, T) int16 and segmentations at ED and ES (X, Y, Z) uint8."""
        g, a, lv, px = self.g, self.a, self.lv, self.g.pixel_mm
        es = int(self.s["es_frame"])
        septa = mean_epicardium(lv).astype(np.float32)
        image = np.empty((g.matrix, g.matrix, g.n_slices, g.n_frames), np.float32)
        segs = np.zeros((g.matrix, g.matrix, g.n_slices, 2), np.uint8)
        for z in range(g.n_slices):
            centre = self.centre + self.misregistration[z]
            image[..., z, :] = self.chest.plane(self.below_liver_dome(z))[..., None]
            # Everything below happens inside the heart's bounding square (outside it nothing changes).
            extent = (
                septa[z].max()
                + max(self.rv.depth[z].max() + SEPTAL_GAP_MM + RV_WALL_MM, 2.0 * AORTIC_ROOT_MM + 2.0)
                + self.fat_mm * self.fat_patches.max()
                + SYSTOLIC_REACH_MM
                + 2.0 * px
            )
            window = self._window(centre, extent)
            x, y = self.x[window][..., None], self.y[window][..., None]
            cx, cy = (centre + self.motion).T.astype(np.float32)  # (T,) each
            dx, dy = x - cx, y - cy
            r, theta = norm(dx, dy), np.arctan2(dy, dx)
            # Texture only (fat patches, trabeculae) may take angles from the ED centre: (X, Y, 1)
            # lookups are 50 times cheaper; the shapes the masks measure use the moving centre.
            texture_theta = np.arctan2(y - np.float32(centre[1]), x - np.float32(centre[0]))
            endo, epi = lv.radii(theta, z, slice(None))
            septum = septa[z]
            lvot = self._outflow_tract(z, r, theta, endo, septum, dx, dy)
            # The RV wraps the epicardium, also where an akinetic infarct keeps it outside the mean;
            # the aortic root in front of the septum is not RV.
            rv, rv_blood = self.rv.cavity(r, wrapped(theta - self.rv_angle), np.maximum(septum, epi), z, px)
            rv, rv_blood = np.minimum(rv, -lvot), rv_blood * soft_inside(-lvot, px)
            atrium = np.where((lv.depth[z] < 0) & (lv.depth[z] > -25.0), 0.9 * lv.cavity[0, 0] - r, OUTSIDE)
            walls = (atrium + ATRIAL_WALL_MM, lvot + 2.0)
            heart = np.maximum.reduce([np.where(epi > 0, epi - r, OUTSIDE), rv + RV_WALL_MM, *walls])
            flow = self._in_flow(r.shape[:2])
            gain = np.float32(1.0 + 0.04 * self.texture.standard_normal())
            plane = image[window + (z,)]
            fat_mm = self.fat_mm * self.fat_patches[angular_index(texture_theta)]
            ramp = np.maximum(lv.through_plane[z], px)  # (T,) partial volume across the slice thickness
            plane = blend(plane, soft_inside(heart + fat_mm, ramp), self.chest.fat)
            plane = blend(plane, soft_inside(heart, ramp), a.myocardium)
            plane = blend(plane, rv_blood, RV_BLOOD * gain * flow)
            plane = blend(plane, soft_inside(np.maximum(atrium, lvot), px), BLOOD * gain * flow)
            lv_blood = soft_inside(endo - r, ramp)
            plane = blend(plane, lv_blood, BLOOD * gain * flow)
            # Muscle inside the LV cavity: only the cavity's square, a fifth of the window, is touched.
            cavity = self._window(centre, lv.cavity[z].max() + SYSTOLIC_REACH_MM + px)
            inner = tuple(slice(c.start - w.start, c.stop - w.start) for c, w in zip(cavity, window))
            plane[inner] = self._trabeculae_and_papillary_muscles(
                plane[inner], z, r[inner], texture_theta[inner], endo[inner], lv_blood[inner], dx[inner], dy[inner]
            )
            image[window + (z,)] = plane
            for i, t in enumerate((0, es)):
                seg = segs[window + (z, i)]
                seg[(r[..., t] < epi[..., t]) & (epi[..., t] > 0) & (lvot[..., t] <= 0)] = MYOCARDIUM  # LVOT: open
                seg[r[..., t] < endo[..., t]] = BLOOD_POOL
                seg[rv[..., t] > 0] = RIGHT_VENTRICLE
        return self._acquire(image), segs[..., 0], segs[..., 1]

    def below_liver_dome(self, z: int) -> float:
        """How far short-axis slice z lies below the top of the liver's dome (mm): the dome's top
        half a slice spacing above the middle slice, so the liver fills the apical half."""
        return (z - self.g.n_slices // 2 + 0.5) * self.g.slice_mm

    def _in_flow(self, shape: tuple[int, int]) -> np.ndarray:
        """(*shape, T) relative blood signal: in-flow varies smoothly in space and over the cycle."""
        phase = (2.0 * np.pi * np.arange(self.g.n_frames) / self.g.n_frames).astype(np.float32)
        return 1.0 + self.a.flow * (
            np.cos(phase) * smooth_field(self.texture, shape, 5.0)[..., None]
            + np.sin(phase) * smooth_field(self.texture, shape, 5.0)[..., None]
        )

    def _window(self, centre_mm, extent_mm: float) -> tuple[slice, slice]:
        """Pixel ranges of the square of half-width `extent_mm` around `centre_mm`, inside the image."""
        g = self.g
        middle = np.asarray(centre_mm) / g.pixel_mm + (g.matrix - 1) / 2.0
        half = extent_mm / g.pixel_mm + 1.0
        low = np.clip(np.floor(middle - half), 0, g.matrix).astype(int)
        high = np.clip(np.ceil(middle + half) + 1, 0, g.matrix).astype(int)
        return slice(low[0], high[0]), slice(low[1], high[1])

    def _outflow_tract(self, z, r, theta, endo, septum, dx, dy):
        """Signed distance to the LV outflow tract of a basal slice: the anteroseptal wall opens
        into the aortic root in front of it (not part of the LV masks, as annotators close the
        LV at the outflow tract). Absent in other slices and where the base has left the slice."""
        lv = self.lv
        if lv.depth[z, 0] > LVOT_DEPTH_MM:
            return np.full(r.shape, OUTSIDE, np.float32)
        angle = self.rv_angle + 1.5  # anterior, just beyond the RV crescent
        reach = septum + AORTIC_ROOT_MM  # (T,) root centre from the LV centre
        root = AORTIC_ROOT_MM - norm(dx - np.cos(angle) * reach, dy - np.sin(angle) * reach)
        channel = np.minimum((0.35 - np.abs(wrapped(theta - angle))) * r, reach - r)
        channel = np.where(r > 0.6 * endo, channel, OUTSIDE)
        return np.where((lv.depth[z] >= 0) & (septum > 0), np.maximum(root, channel), OUTSIDE)

    def _trabeculae_and_papillary_muscles(self, plane, z, r, theta, endo, lv_blood, dx, dy):
        """Muscle inside the blood pool: a trabecular fringe along the endocardium (deeper towards
        the apex, compacted in systole) and two papillary muscles attached to the free wall."""
        a, lv, px = self.a, self.lv, self.g.pixel_mm
        c0 = lv.cavity[z, 0]
        if c0 <= 0:
            return plane
        towards_apex = np.clip(lv.depth[z, 0] / lv.length[0], 0.0, 1.0)
        squeeze = lv.cavity[z] / c0  # (T,)
        index = angular_index(theta)
        size = c0 / TRABECULATION_RADIUS_MM  # dilated ventricles are more trabeculated
        fringe = a.trabeculation_mm * size * (0.6 + 0.8 * towards_apex) * squeeze * self.trabeculae[index]
        plane = blend(plane, soft_inside(r - endo + fringe, px) * lv_blood, a.myocardium * 1.1)
        if not 0.2 < towards_apex < 0.85:
            return plane
        radius = min(6.0, 0.24 * c0)  # mm, the main head; keeps its size through the cycle (fills more of ES)
        for angle, (offsets, radii) in zip(self.papillary_angles, self.papillary_heads):
            reach = np.maximum(lv.cavity[z] - radius - 0.5, 0.0)  # (T,), attached to the wall
            outward = np.array([np.cos(angle), np.sin(angle)], np.float32)
            along = np.array([-np.sin(angle), np.cos(angle)], np.float32)
            mx, my = dx - outward[0] * reach, dy - outward[1] * reach  # from the main head's centre
            inside = radius - norm(mx, my)
            for (radial, tangential), head in zip(offsets * radius, radii * radius):
                hx, hy = np.float32(radial) * outward + np.float32(tangential) * along
                inside = np.maximum(inside, np.float32(head) - norm(mx - hx, my - hy))
            plane = blend(plane, soft_inside(inside, px) * lv_blood, a.myocardium)
        return plane

    def _acquire(self, image: np.ndarray) -> np.ndarray:
        """Coil shading, BMI-dependent blur and Rician noise, then int16 counts."""
        a, cy = self.a, self.centre[1]
        ripples = 1.0 + a.shading * smooth_field(self.texture, self.x.shape, 20.0)
        coil = np.exp(-(self.y - cy) / a.coil_falloff_mm) * ripples  # the anterior coil array is closest
        image *= coil.astype(np.float32)[..., None, None]
        sigma = (self.blur_px, self.blur_px) + (0.0,) * (image.ndim - 2)
        image = ndimage.gaussian_filter(image, sigma)
        magnitude = rician(image, self.noise, self.noise_rng)  # the magnitude of the signed (fat: opposed) signal
        magnitude *= INTENSITY_SCALE
        return np.clip(np.rint(magnitude, out=magnitude), 0, np.iinfo(np.int16).max).astype(np.int16)

    def four_chamber(self, u: np.ndarray | None = None, v: np.ndarray | None = None) -> Chambers:
        """The chambers of the four-chamber plane (`four_chamber.py`) in every frame: at plane
        points (u, v) (each (..., 1)), by default at every pixel, the apex leaning
        `long_axis_tilt` from the image's vertical, the atria below."""
        if u is None or v is None:
            apex = np.array([np.sin(self.long_axis_tilt), -np.cos(self.long_axis_tilt)])  # image direction
            lateral = np.array([np.cos(self.long_axis_tilt), np.sin(self.long_axis_tilt)])  # the RV opposite
            # The mitral valve where the heart, atria included, sits around the planned centre.
            valve = self.centre - apex * (0.5 * self.lv.length[0] - ATRIAL_RADIUS_MM)
            dx, dy = self.x - np.float32(valve[0]), self.y - np.float32(valve[1])
            u = (dx * apex[0] + dy * apex[1]).astype(np.float32)[..., None]
            v = (dx * lateral[0] + dy * lateral[1]).astype(np.float32)[..., None]
        slow_relaxation = max(0.0, HEALTHY_EARLY_FILLING - float(self.s["early_filling"]))
        systole = np.arange(self.g.n_frames) <= int(self.s["es_frame"])
        return four_chamber(
            self.lv, self.rv, self.curve.astype(np.float32), systole, u, v, self.rv_angle, slow_relaxation
        )

    def long_axis_4ch(self):
        """Four-chamber cine (X, Y, 1, T) int16 of the short axis's heart."""
        a, px = self.a, self.g.pixel_mm
        c = self.four_chamber()
        flow = self._in_flow(self.x.shape)
        atria = (c.left_atrium + ATRIAL_WALL_MM, c.right_atrium + ATRIAL_WALL_MM)
        heart = np.maximum.reduce([c.lv_wall, c.rv_wall, *atria])
        plane = self.chest.plane(np.inf)[..., None]  # the liver whole, below the heart
        plane = blend(plane, soft_inside(heart + self.fat_mm, px), self.chest.fat)
        plane = blend(plane, soft_inside(heart, px), a.myocardium)
        blood = ((c.lv_cavity, BLOOD), (c.rv_cavity, RV_BLOOD), (c.left_atrium, BLOOD), (c.right_atrium, RV_BLOOD))
        for region, level in blood:
            plane = blend(plane, soft_inside(region, px), level * flow)
        plane = blend(plane, soft_inside(c.moderator_band, px), a.myocardium)
        return self._acquire(plane[:, :, None, :].astype(np.float32))
