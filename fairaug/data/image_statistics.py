"""Image statistics of a short-axis cine, measured the same way on the phantom and on real scans.

All are taken on the mid-ventricular slice at ED (the middle of the slices whose ED mask
holds LV blood pool):

- contrast: mean blood-pool signal / mean myocardial signal;
- blood CV: coefficient of variation of the blood pool (papillary muscles, trabeculae and
  flow inside the label make it far from flat in real cine);
- blood SNR: mean blood-pool signal / noise SD. Noise is the temporal SD of static tissue:
  pixels at least `STATIC_MM` from the LV centre (away from the beating heart) and brighter
  than the slice median (not air or lung, where magnitude noise is not Gaussian). Breath-held
  cine keeps that tissue still, so what varies from frame to frame there is noise.
"""

from __future__ import annotations

import numpy as np

from fairaug.data.measurements import BLOOD_POOL, MYOCARDIUM

STATIC_MM = 60.0


def mid_ventricular_slice(seg_ed: np.ndarray) -> int:
    slices = np.flatnonzero((seg_ed == BLOOD_POOL).any(axis=(0, 1)))
    if not len(slices):
        raise ValueError("the ED segmentation has no LV blood pool (label 1)")
    return int(slices[len(slices) // 2])


def noise_sd(cine_slice: np.ndarray, seg_slice: np.ndarray, pixel_mm: float) -> float:
    """Temporal noise SD of static tissue in one slice's cine (X, Y, T)."""
    cine_slice = cine_slice.astype(np.float64)
    xs, ys = np.nonzero(seg_slice == BLOOD_POOL)
    gx, gy = np.meshgrid(np.arange(cine_slice.shape[0]), np.arange(cine_slice.shape[1]), indexing="ij")
    far = np.hypot(gx - xs.mean(), gy - ys.mean()) * pixel_mm >= STATIC_MM
    mean = cine_slice.mean(axis=-1)
    static = far & (mean > np.median(mean))
    if static.sum() < 20:
        raise ValueError(
            f"fewer than 20 pixels of static tissue {STATIC_MM:.0f} mm from the heart: "
            "the field of view is too small to measure noise"
        )
    return float(np.median(cine_slice.std(axis=-1, ddof=1)[static]))


def tissue_statistics(cine: np.ndarray, seg_ed: np.ndarray, ed: int, pixel_mm: float) -> dict[str, float]:
    """Contrast, blood CV and blood SNR of a cine (X, Y, Z, T) with its ED segmentation."""
    z = mid_ventricular_slice(seg_ed)
    image = cine[..., z, ed].astype(np.float64)
    blood = image[seg_ed[..., z] == BLOOD_POOL]
    myocardium = image[seg_ed[..., z] == MYOCARDIUM]
    if not len(myocardium):
        raise ValueError(f"slice {z} of the ED segmentation has no myocardium (label 2)")
    return {
        "contrast": float(blood.mean() / myocardium.mean()),
        "blood_cv": float(blood.std() / blood.mean()),
        "blood_snr": float(blood.mean() / noise_sd(cine[..., z, :], seg_ed[..., z], pixel_mm)),
    }
