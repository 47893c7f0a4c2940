"""The chest around the phantom's heart, as static bSSFP signal in one image plane.

Lungs (dark) around the heart, the chest wall (muscle crossed by ribs) under subcutaneous fat
(thicker with BMI), in women breast tissue in front of it, the liver with its vessels under the
heart in the apical planes (rising as a dome), the descending aorta and the spine behind. Body
size follows height and BMI, so men's and women's chests differ as they do in real scans.
Tissue is textured by smooth random fields.
Fat's signal has the opposite phase of water's (bSSFP at TE = TR/2, `fat_opposed_phase`): the
image is the magnitude, so pixels holding both are dark, as fat-water boundaries are in cine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

OUTSIDE = -1e3  # signed distance of a structure that is absent from a plane
LIVER_DOME_MM = 45.0  # below the top of its dome, the liver's cross-section reaches full size this deep
LIVER_AXES_MM = (50.0, 38.0)  # semi-axes of its full cross-section
LIVER_VESSELS = 4  # hepatic vessel cross-sections per plane
CHEST_WALL_MM = 12.0  # muscle and ribs between the subcutaneous fat and the lungs
RIB_SPACING = 0.4  # radians of the body's outline between neighbouring ribs in a plane
RIB_AXES_MM = (9.0, 4.5)  # an oblique rib section, long along the chest wall


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


def liver_section(below_dome_mm: float) -> float:
    """Size of the liver's cross-section, relative to its full size, this far below the top of
    its dome (a spherical cap; 0 above it)."""
    height = np.clip(below_dome_mm, 0.0, LIVER_DOME_MM)
    return float(np.sqrt(1.0 - ((LIVER_DOME_MM - height) / LIVER_DOME_MM) ** 2))


def blend(image: np.ndarray, weight: np.ndarray, signal) -> np.ndarray:
    """Replace `weight` of each pixel by `signal` (partial volume)."""
    return image * (1.0 - weight) + signal * weight


class Chest:
    """One subject's chest; `plane(...)` gives the static signal of one short-axis plane."""

    def __init__(
        self,
        subject: dict,
        x: np.ndarray,
        y: np.ndarray,
        centre,
        appearance,
        pixel_mm: float,
        half_thickness_mm: float,
        rng: np.random.Generator,
    ):
        self.x, self.y, self.px, self.a, self.rng = x, y, pixel_mm, appearance, rng
        self.half_thickness = half_thickness_mm
        self.fat = -appearance.fat if appearance.fat_opposed_phase else appearance.fat
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

    def plane(self, below_liver_dome_mm: float) -> np.ndarray:
        """Signed signal (fat negative when opposed in phase) of the plane this far below the
        top of the liver's dome (negative: above it; the liver appears in the apical planes)."""
        a, x, y, px, rng = self.a, self.x, self.y, self.px, self.rng
        cx, cy = self.heart
        mx, my = self.midline
        texture = smooth_field(rng, x.shape, 2.5)
        fine = smooth_field(rng, x.shape, 0.7)
        body = below_skin = ellipse_distance(x, y, mx, my, self.half_width, self.half_depth)
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
            np.minimum.reduce(
                [
                    norm(x - cx, y - cy) - 48.0 + lung_edge,
                    y - anterior - 18.0,
                    my + 0.55 * self.half_depth - y,
                    below_skin - self.subcutaneous - CHEST_WALL_MM,
                ]
            ),
            px,
        )
        image = blend(image, lung, a.lung * (1.0 + 0.5 * fine))
        image = self._ribs(image)
        # The slice spans the dome's sections over its thickness: the mean section, smeared by
        # partial volume over the range between the thinnest and the widest.
        low, high = (liver_section(below_liver_dome_mm + d) for d in (-self.half_thickness, self.half_thickness))
        if high > 0:
            (semi_a, semi_b), middle = LIVER_AXES_MM, 0.5 * (low + high)
            ramp = max((high - low) * 0.5 * (semi_a + semi_b), px)
            centre, tilt = (cx - 55.0, cy + 40.0), 0.3
            liver = soft_inside(ellipse_distance(x, y, *centre, semi_a * middle, semi_b * middle, tilt), ramp)
            image = blend(image, liver, a.liver * (1.0 + 0.08 * texture))
            for _ in range(LIVER_VESSELS):  # hepatic veins and portal branches, bright as blood
                u, v = rng.uniform(-0.7, 0.7, 2) * (semi_a * middle, semi_b * middle)
                vx = np.float32(centre[0] + u * np.cos(tilt) - v * np.sin(tilt))
                vy = np.float32(centre[1] + u * np.sin(tilt) + v * np.cos(tilt))
                vessel = soft_inside(np.float32(rng.uniform(1.5, 4.0)) - norm(x - vx, y - vy), px) * liver
                image = blend(image, vessel, 0.8)
        aorta = soft_inside(11.0 - norm(x - (cx + 20.0), y - (cy + 55.0)), px)
        image = blend(image, aorta, 0.9)
        spine_y = my + self.half_depth - 45.0
        vertebra = norm(x - (mx + 3.0), y - spine_y)
        image = blend(image, soft_inside(17.0 - vertebra, px), 0.08)  # cortical bone
        image = blend(image, soft_inside(14.5 - vertebra, px), self.fat * 0.55 * (1.0 + 0.1 * texture))  # marrow
        canal = soft_inside(6.0 - norm(x - (mx + 3.0), y - (spine_y + 24.0)), px)
        image = blend(image, canal, 0.9)  # cerebrospinal fluid
        fat = soft_inside(self.subcutaneous - body, px)
        image = blend(image, fat, self.fat * (1.0 + 0.06 * fine))
        if self.breast:  # fatty breast with patches of glandular tissue
            breast = soft_inside(breasts, px)
            image = blend(image, breast, self.fat * (1.0 + 0.06 * fine))
            glandular = soft_inside(6.0 * smooth_field(rng, x.shape, 3.0) - 1.0, px)
            image = blend(image, breast * glandular, a.breast)
        return image * soft_inside(body, px)  # air outside the body

    def _ribs(self, image: np.ndarray) -> np.ndarray:
        """Oblique rib sections in the middle of the anterior and lateral chest wall: dark
        cortical bone around marrow, at a spacing whose phase differs between planes."""
        x, y, px = self.x, self.y, self.px
        (mx, my), width, depth = self.midline, self.half_width, self.half_depth
        inward = self.subcutaneous + 0.5 * CHEST_WALL_MM
        for phi in np.arange(np.pi - 0.3 + self.rng.uniform(0.0, RIB_SPACING), 2.0 * np.pi + 0.3, RIB_SPACING):
            centre = np.float32([mx + (width - inward) * np.cos(phi), my + (depth - inward) * np.sin(phi)])
            along = np.float32(np.arctan2(depth * np.cos(phi), -width * np.sin(phi)))  # the outline's tangent
            rib = ellipse_distance(x, y, *centre, *RIB_AXES_MM, along)
            image = blend(image, soft_inside(rib, px), 0.08)
            image = blend(image, soft_inside(rib - 1.5, px), self.fat * 0.5)
        return image
