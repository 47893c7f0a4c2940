"""The chest around the phantom's heart, as static bSSFP signal in one image plane.

Lungs (dark) around the heart, the chest wall with subcutaneous fat (thicker with BMI), in
women breast tissue in front of it, the liver under the heart in the apical planes, the
descending aorta and the spine behind. Body size follows height and BMI, so men's and
women's chests differ as they do in real scans. Tissue is textured by smooth random fields.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

OUTSIDE = -1e3  # signed distance of a structure that is absent from a plane


def soft_inside(signed_mm: np.ndarray, ramp_mm) -> np.ndarray:
    """Partial-volume membership from a signed distance (positive inside): a ramp `ramp_mm`
    wide (one pixel in-plane; wider where a wall runs oblique to the slice)."""
    return np.clip(0.5 + signed_mm / ramp_mm, 0.0, 1.0).astype(np.float32)


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-SD random field smooth over `sigma_px` pixels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return field / (field.std() + 1e-6)


def norm(dx, dy):
    """Euclidean length of (dx, dy); several times faster than np.hypot on float32 arrays."""
    return np.sqrt(dx * dx + dy * dy)


def ellipse_distance(x, y, cx, cy, a, b, angle=0.0):
    """Approximate signed distance (mm, positive inside) to a rotated ellipse (a, b > 0)."""
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return (1.0 - rho) * np.sqrt(a * b)


def blend(image: np.ndarray, weight: np.ndarray, signal) -> np.ndarray:
    """Replace `weight` of each pixel by `signal` (partial volume)."""
    return image * (1.0 - weight) + signal * weight


class Chest:
    """One subject's chest; `plane(z)` gives the static signal of short-axis plane z."""

    def __init__(
        self, subject: dict, x: np.ndarray, y: np.ndarray, centre, appearance, pixel_mm: float, rng: np.random.Generator
    ):
        self.x, self.y, self.px, self.a, self.rng = x, y, pixel_mm, appearance, rng
        bmi, female = subject["bmi"], subject["sex"] == "female"
        scale = subject["height_cm"] / 170.0
        cx, cy = centre
        # +y is posterior: the heart lies against the anterior chest wall, left of the midline.
        self.half_width = (135.0 + 4.0 * (bmi - 25.0)) * scale * (0.93 if female else 1.0)
        self.half_depth = (100.0 + 1.8 * (bmi - 25.0)) * scale * (0.95 if female else 1.0)
        self.midline = (cx - 25.0, cy + 38.0 + 0.6 * (bmi - 25.0))
        self.subcutaneous = float(np.clip(6.0 + 1.8 * (bmi - 25.0) + (3.0 if female else 0.0), 3.0, 40.0))
        self.breast = float(np.clip(22.0 + 3.0 * (bmi - 25.0), 12.0, 70.0)) if female else 0.0
        self.heart = (cx, cy)

    def plane(self, z: int, n_planes: int) -> np.ndarray:
        a, x, y, px, rng = self.a, self.x, self.y, self.px, self.rng
        cx, cy = self.heart
        mx, my = self.midline
        texture = smooth_field(rng, x.shape, 2.5)
        fine = smooth_field(rng, x.shape, 0.7)
        body = ellipse_distance(x, y, mx, my, self.half_width, self.half_depth)
        anterior = my - self.half_depth
        breasts = np.full(x.shape, OUTSIDE, np.float32)
        if self.breast:  # two breasts in front of the chest wall, left and right of the midline
            for side in (-1.0, 1.0):
                breasts = np.maximum(
                    breasts,
                    ellipse_distance(
                        x, y, mx + side * 0.45 * self.half_width, anterior + 5.0, 0.4 * self.half_width, self.breast
                    ),
                )
            breasts = np.minimum(breasts, 3.0 - body)  # outside the chest wall, following its curve
            body = np.maximum(body, breasts)
        image = np.full(x.shape, a.soft_tissue, np.float32) * (1.0 + 0.12 * texture + 0.05 * fine)
        lung_edge = 8.0 * smooth_field(rng, x.shape, 8.0)
        lung = soft_inside(
            np.minimum(
                norm(x - cx, y - cy) - 48.0 + lung_edge,
                np.minimum(y - anterior - 18.0, my + 0.55 * self.half_depth - y),
            ),
            px,
        )
        image = blend(image, lung, a.lung * (1.0 + 0.5 * fine))
        if z >= n_planes // 2:  # liver under the heart in the apical planes
            liver = soft_inside(ellipse_distance(x, y, cx - 55.0, cy + 40.0, 50.0, 38.0, 0.3), px)
            image = blend(image, liver, a.liver * (1.0 + 0.08 * texture))
        aorta = soft_inside(11.0 - norm(x - (cx + 20.0), y - (cy + 55.0)), px)
        image = blend(image, aorta, 0.9)
        spine_y = my + self.half_depth - 45.0
        vertebra = norm(x - (mx + 3.0), y - spine_y)
        image = blend(image, soft_inside(17.0 - vertebra, px), 0.08)  # cortical bone
        image = blend(image, soft_inside(14.5 - vertebra, px), a.fat * 0.55 * (1.0 + 0.1 * texture))  # marrow
        canal = soft_inside(6.0 - norm(x - (mx + 3.0), y - (spine_y + 24.0)), px)
        image = blend(image, canal, 0.9)  # cerebrospinal fluid
        fat = soft_inside(self.subcutaneous - body, px)
        image = blend(image, fat, a.fat * (1.0 + 0.06 * fine))
        if self.breast:  # fatty breast with patches of glandular tissue
            breast = soft_inside(breasts, px)
            image = blend(image, breast, a.fat * (1.0 + 0.06 * fine))
            glandular = soft_inside(6.0 * smooth_field(rng, x.shape, 3.0) - 1.0, px)
            image = blend(image, breast * glandular, a.breast)
        return image * soft_inside(body, px)  # air outside the body
