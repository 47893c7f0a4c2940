"""Renders a phantom subject as bSSFP-like cine MRI with its segmentation.

The left ventricle is a truncated prolate ellipsoid cut by the short-axis stack: its
cavity radius per slice is solved so that the cavity volume summed over slices (what a
Simpson's-rule analysis of the masks measures) equals the subject's volume in every
frame, and the myocardial cross-section per slice is conserved through the cycle (wall
thickening). The RV is a crescent wrapped around the septum. Around the heart: epicardial
fat, lungs, chest wall, liver and descending aorta, textured by smooth random fields. BMI
thickens fat and degrades image quality (blur, noise), as body habitus does in real scans.
Contrast follows the reference Sunnybrook cine (blood / myocardium ≈ 2.8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Relative bSSFP signal of each tissue (blood pool = 1).
BLOOD, RV_BLOOD, MYOCARDIUM, FAT, SOFT_TISSUE, LIVER, LUNG = 1.0, 0.95, 0.35, 0.8, 0.3, 0.42, 0.05
INTENSITY_SCALE = 500.0  # int16 counts for blood, close to the reference scanner's range
LV_ASPECT = 3.5  # long axis / basal radius of the LV cavity
LONGITUDINAL_SHORTENING = 0.25  # fraction of the ejected volume fraction lost in length


@dataclass(frozen=True)
class Geometry:
    matrix: int
    pixel_mm: float
    n_slices: int
    slice_mm: float
    n_frames: int


def volume_curve(n_frames: int, es_frame: int) -> np.ndarray:
    """Fraction of stroke volume present per frame: 1 at ED (frame 0), 0 at ES."""
    phase = np.arange(n_frames) / n_frames
    es = es_frame / n_frames
    systole = 0.5 * (1.0 + np.cos(np.pi * np.minimum(phase, es) / es))
    u = np.clip((phase - es) / (1.0 - es), 0.0, 1.0)
    atrial_kick = np.clip((u - 0.7) / 0.3, 0.0, 1.0) ** 2
    diastole = 0.8 * (1.0 - np.exp(-5.0 * u)) + 0.2 * atrial_kick
    return np.where(phase <= es, systole, diastole)


def _soft_inside(signed_mm: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Partial-volume membership from a signed distance (positive inside), 1-pixel ramp."""
    return np.clip(0.5 + signed_mm / pixel_mm, 0.0, 1.0).astype(np.float32)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return field / (field.std() + 1e-6)


OUTSIDE = -1e3  # signed distance of a structure that is absent from a plane


def _ellipse_distance(x, y, cx, cy, a, b, angle):
    """Approximate signed distance (mm, positive inside) to a rotated ellipse."""
    if a <= 0 or b <= 0:
        return np.full(np.broadcast(x, y).shape, OUTSIDE, np.float32)
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    rho = np.sqrt((u / np.maximum(a, 1e-3)) ** 2 + (v / np.maximum(b, 1e-3)) ** 2)
    return (1.0 - rho) * np.sqrt(a * b)


class SubjectRenderer:
    """Everything one subject's images share: geometry, anatomy and image quality."""

    def __init__(self, subject: dict, geometry: Geometry, seed: int):
        self.s = subject
        self.g = geometry
        self.rng = np.random.default_rng(seed)
        half = (geometry.matrix - 1) / 2.0
        axis = ((np.arange(geometry.matrix) - half) * geometry.pixel_mm).astype(np.float32)
        self.x, self.y = np.meshgrid(axis, axis, indexing="ij")
        self.centre = self.rng.normal(0.0, 6.0, 2)
        self.rv_angle = np.pi + self.rng.normal(0.0, 0.2)
        bmi = subject["bmi"]
        excess = max(0.0, bmi - 22.0)
        self.fat_mm = float(np.clip(1.5 + 0.35 * (bmi - 20.0), 1.0, 12.0))
        self.blur_px = 0.35 + 0.07 * excess
        self.noise = 0.03 * (1.0 + 0.07 * excess)
        self.curve = volume_curve(geometry.n_frames, int(subject["es_frame"]))

    # -- left ventricle ---------------------------------------------------------------
    def _lv_shape(self):
        """Cavity and epicardial radius per (slice, frame), in mm."""
        s, g = self.s, self.g
        edv, esv = s["lvedv_ml"] * 1e3, s["lvesv_ml"] * 1e3
        volume = esv + (edv - esv) * self.curve  # mm³ per frame
        length_ed = LV_ASPECT * (edv / (2.0 / 3.0 * np.pi * LV_ASPECT)) ** (1.0 / 3.0)
        length = length_ed * (1.0 - LONGITUDINAL_SHORTENING * (edv - volume) / edv)
        offset = self.rng.uniform(2.0, 8.0)
        depth = offset + g.slice_mm * np.arange(g.n_slices)[:, None]  # (Z, 1) from the base
        profile = np.clip(1.0 - (depth / length[None, :]) ** 2, 0.0, None)  # (Z, T)
        radius_sq = volume / (np.pi * g.slice_mm * profile.sum(axis=0))
        cavity = np.sqrt(radius_sq[None, :] * profile)
        cavity_ed = cavity[:, 0]
        myocardium = s["lv_mass_g"] / 1.05 * 1e3 / (np.pi * g.slice_mm)
        filled = cavity_ed > 0
        n, total = filled.sum(), cavity_ed[filled].sum()
        wall = (-total + np.sqrt(total**2 + n * myocardium)) / n
        area = np.where(filled, 2.0 * cavity_ed * wall + wall**2, 0.0)  # /π, per slice
        epicardium = np.sqrt(cavity**2 + area[:, None])
        return cavity, epicardium, length

    # -- right ventricle ----------------------------------------------------------------
    def _rv_axes(self, epicardium_ed, length_ed):
        """RV ellipse semi-axes per slice at ED, scaled so the crescent holds RVEDV."""
        g = self.g
        depth = 5.0 + g.slice_mm * np.arange(g.n_slices)
        taper = np.sqrt(np.clip(1.0 - (depth / (0.85 * length_ed)) ** 2, 0.0, None))
        base = np.max(epicardium_ed)
        target = self.s["rvedv_ml"] * 1e3 / (g.pixel_mm**2 * g.slice_mm)  # voxels
        low, high = 0.5, 4.0
        for _ in range(14):  # bisection: the crescent grows steeply once it clears the septum
            scale = 0.5 * (low + high)
            a, b = 1.05 * base * taper * scale, 1.35 * base * taper * scale
            voxels = sum(self._rv_cavity(a[z], b[z], epicardium_ed[z], 0).sum() for z in range(g.n_slices))
            low, high = (scale, high) if voxels < target else (low, scale)
        return 1.05 * base * taper * scale, 1.35 * base * taper * scale

    def _rv_cavity(self, a, b, epicardium, shift):
        """Hard RV cavity mask for one slice: inside the ellipse, outside the septum."""
        cx, cy = self.centre + shift
        ex = cx + np.cos(self.rv_angle) * 0.35 * epicardium
        ey = cy + np.sin(self.rv_angle) * 0.35 * epicardium
        inside = _ellipse_distance(self.x, self.y, ex, ey, a, b, self.rv_angle) > 0
        septum = np.hypot(self.x - cx, self.y - cy) < epicardium + 1.0
        return inside & ~septum

    # -- surroundings -------------------------------------------------------------------
    def _background(self, n_planes: int) -> np.ndarray:
        """Static tissue around the heart, one plane per slice: (X, Y, planes)."""
        g, x, y = self.g, self.x, self.y
        cx, cy = self.centre
        planes = []
        bmi = self.s["bmi"]
        # Chest wall: an elliptic body outline, wider with BMI, subcutaneous fat under the skin.
        body = _ellipse_distance(x, y, cx, cy + 45.0, 150.0 + 4.0 * (bmi - 25.0), 110.0 + 1.6 * (bmi - 25.0), 0.0)
        subcutaneous = max(3.0, 6.0 + 1.8 * (bmi - 25.0))
        for z in range(n_planes):
            texture = _smooth_field(self.rng, x.shape, 2.5 / g.pixel_mm * 2)
            fine = _smooth_field(self.rng, x.shape, 0.7)
            tissue = SOFT_TISSUE * (1.0 + 0.12 * texture + 0.05 * fine)
            heart_distance = np.hypot(x - cx, y - cy)
            lung_field = _smooth_field(self.rng, x.shape, 8.0)
            lung = _soft_inside(np.minimum(heart_distance - 50.0, 10.0 * lung_field + 4.0), g.pixel_mm)
            image = tissue * (1.0 - lung) + LUNG * (1.0 + 0.5 * fine) * lung
            if z >= n_planes // 2:  # liver below the heart in the apical slices
                liver = _soft_inside(_ellipse_distance(x, y, cx - 55.0, cy + 50.0, 45.0, 35.0, 0.3), g.pixel_mm)
                image = image * (1.0 - liver) + LIVER * (1.0 + 0.08 * texture) * liver
            aorta = _soft_inside(11.0 - np.hypot(x - (cx + 22.0), y - (cy + 48.0)), g.pixel_mm)
            image = image * (1.0 - aorta) + BLOOD * 0.9 * aorta
            fat = _soft_inside(subcutaneous - body, g.pixel_mm)
            image = image * (1.0 - fat) + FAT * (1.0 + 0.06 * fine) * fat
            image *= _soft_inside(body, g.pixel_mm)  # air outside the body
            planes.append(image)
        return np.stack(planes, axis=-1)

    def _acquire(self, image: np.ndarray) -> np.ndarray:
        """Coil shading, BMI-dependent blur and Rician noise, then int16 counts."""
        shading = 1.0 + 0.15 * _smooth_field(self.rng, self.x.shape, 20.0) - 0.002 * self.y
        image = image * shading.astype(np.float32)[..., None, None]
        sigma = (self.blur_px, self.blur_px) + (0.0,) * (image.ndim - 2)
        image = ndimage.gaussian_filter(image, sigma)
        image += self.noise * self.rng.standard_normal(image.shape, dtype=np.float32)
        imaginary = self.noise * self.rng.standard_normal(image.shape, dtype=np.float32)
        magnitude = np.hypot(image, imaginary, out=image)
        magnitude *= INTENSITY_SCALE
        return np.rint(magnitude, out=magnitude).astype(np.int16)

    # -- views ---------------------------------------------------------------------------
    def short_axis(self):
        """Cine (X, Y, Z, T) int16 and segmentations at ED and ES (X, Y, Z) uint8."""
        g = self.g
        cavity, epicardium, length = self._lv_shape()
        rv_a_ed, rv_b_ed = self._rv_axes(epicardium[:, 0], length[0])
        rv_volume = self.s["rvesv_ml"] + (self.s["rvedv_ml"] - self.s["rvesv_ml"]) * self.curve
        rv_scale = np.sqrt(rv_volume / self.s["rvedv_ml"])
        background = self._background(g.n_slices)
        shift = np.stack([1.5 * (1.0 - self.curve), 1.0 * (1.0 - self.curve)], axis=1)  # heart motion
        papillary_angle = self.rv_angle + np.pi + np.array([-0.9, 0.9])
        blood_gain = 1.0 + 0.04 * self.rng.standard_normal(g.n_slices)

        image = np.empty((g.matrix, g.matrix, g.n_slices, g.n_frames), np.float32)
        segs = {t: np.zeros((g.matrix, g.matrix, g.n_slices), np.uint8) for t in (0, int(self.s["es_frame"]))}
        px = g.pixel_mm
        for t in range(g.n_frames):
            cx, cy = self.centre + shift[t]
            r = np.hypot(self.x - cx, self.y - cy)
            for z in range(g.n_slices):
                endo, epi = cavity[z, t], epicardium[z, t]
                a, b = rv_a_ed[z] * rv_scale[t], rv_b_ed[z] * rv_scale[t]
                ex = cx + np.cos(self.rv_angle) * 0.35 * epi
                ey = cy + np.sin(self.rv_angle) * 0.35 * epi
                rv_signed = _ellipse_distance(self.x, self.y, ex, ey, a, b, self.rv_angle)
                heart = np.maximum(np.where(epi > 0, epi - r, OUTSIDE), rv_signed + 3.0)
                plane = background[..., z]
                fat = _soft_inside(heart + self.fat_mm, px)
                plane = plane * (1.0 - fat) + FAT * fat
                muscle = _soft_inside(heart, px)
                plane = plane * (1.0 - muscle) + MYOCARDIUM * muscle
                rv_blood = _soft_inside(np.minimum(rv_signed, r - epi - 1.0), px)
                plane = plane * (1.0 - rv_blood) + RV_BLOOD * blood_gain[z] * rv_blood
                lv_blood = _soft_inside(endo - r, px)
                plane = plane * (1.0 - lv_blood) + BLOOD * blood_gain[z] * lv_blood
                for angle in papillary_angle:  # papillary muscles: dark dots inside the cavity
                    px_c = cx + np.cos(angle) * 0.65 * endo
                    py_c = cy + np.sin(angle) * 0.65 * endo
                    dot = _soft_inside(0.13 * endo - np.hypot(self.x - px_c, self.y - py_c), px)
                    plane = plane * (1.0 - 0.8 * dot) + MYOCARDIUM * 0.8 * dot
                image[..., z, t] = plane
                if t in segs:
                    seg = segs[t][..., z]
                    seg[(r < epi) & (epi > 0)] = 2
                    seg[r < endo] = 1
                    seg[(rv_signed > 0) & (r >= epi + 1.0)] = 3
        return self._acquire(image), segs[0], segs[int(self.s["es_frame"])]

    def long_axis_4ch(self):
        """Four-chamber cine (X, Y, 1, T) int16: LV and RV above the valve plane, atria below."""
        g, x, y, px = self.g, self.x, self.y, self.g.pixel_mm
        cavity, _, length = self._lv_shape()
        radius = cavity.max(axis=0)  # basal cavity radius per frame
        wall = 0.25 * radius[0]
        background = self._background(1)[..., 0]
        cx, cy = self.centre
        valve = cy + 25.0
        image = np.empty((g.matrix, g.matrix, 1, g.n_frames), np.float32)
        lv_x = cx + 0.6 * radius[0]
        rv_x = lv_x - 2.0 * radius[0] - 6.0
        above = valve - y

        def ventricle(centre_x, a, b, margin):
            """Half-ellipse above the valve plane (margin > 0 lets the wall close below it)."""
            return np.where(above > -margin, _ellipse_distance(x, y, centre_x, valve, a, b, 0.0), OUTSIDE)

        for t in range(g.n_frames):
            stretch = 1.0 - self.curve[t]
            rv_len, rv_rad = 0.8 * length[t], 0.85 * radius[t]
            lv = ventricle(lv_x, radius[t], length[t], 0.0)
            lv_wall = ventricle(lv_x, radius[t] + wall, length[t] + wall, 2.0)
            rv, rv_wall = ventricle(rv_x, rv_rad, rv_len, 0.0), ventricle(rv_x, rv_rad + 3.0, rv_len + 3.0, 2.0)
            atrium = 17.0 * (1.0 + 0.2 * stretch)
            la = _ellipse_distance(x, y, lv_x, valve + atrium + 3.0, atrium, atrium * 1.1, 0.0)
            ra = _ellipse_distance(x, y, rv_x, valve + atrium + 3.0, atrium * 0.9, atrium, 0.0)
            heart = np.maximum.reduce([lv_wall, rv_wall, la + 2.0, ra + 2.0])
            fat = _soft_inside(heart + self.fat_mm, px)
            plane = background * (1.0 - fat) + FAT * fat
            muscle = _soft_inside(heart, px)
            plane = plane * (1.0 - muscle) + MYOCARDIUM * muscle
            for region, level in ((lv, BLOOD), (rv, RV_BLOOD), (la, BLOOD), (ra, RV_BLOOD)):
                blood = _soft_inside(region, px)
                plane = plane * (1.0 - blood) + level * blood
            image[..., 0, t] = plane
        return self._acquire(image)
