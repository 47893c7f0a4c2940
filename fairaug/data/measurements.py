"""Left-ventricular volumes, ejection fraction and mass from a subject's masks.

Volumes sum the mask's voxels slice by slice times the distance between slice centres
(from the slice positions, not the header's slice thickness, which differs when slices
have gaps or overlap). The mass is the ED myocardium's volume times 1.05 g/mL.
"""

from __future__ import annotations

import numpy as np

from fairaug.data.readers import ShortAxis

MYOCARDIUM_G_PER_ML = 1.05
BLOOD_POOL, MYOCARDIUM, RIGHT_VENTRICLE = 1, 2, 3  # canonical mask labels
MEASURES_COLUMNS = ["lv_edv_ml", "lv_esv_ml", "lv_ef_percent", "lv_mass_g"]


def _volume_ml(mask: np.ndarray, voxel_mm3: float) -> float:
    return float(mask.sum() * voxel_mm3 / 1000.0)


def lv_measurements(sa: ShortAxis) -> dict:
    """lv_edv_ml, lv_esv_ml, lv_ef_percent, lv_mass_g (NaN where the masks cannot say)."""
    gap = sa.slice_gap_mm()
    voxel = sa.spacing[0] * sa.spacing[1] * gap
    edv, esv = _volume_ml(sa.seg_ed == BLOOD_POOL, voxel), _volume_ml(sa.seg_es == BLOOD_POOL, voxel)
    myocardium = sa.seg_ed == MYOCARDIUM
    return {
        "lv_edv_ml": edv,
        "lv_esv_ml": esv,
        "lv_ef_percent": 100.0 * (edv - esv) / edv if edv > 0 else float("nan"),
        "lv_mass_g": _volume_ml(myocardium, voxel) * MYOCARDIUM_G_PER_ML if myocardium.any() else float("nan"),
    }


def geometry(sa: ShortAxis) -> dict:
    """Voxel spacing, the gap between slices and the cine's shape, as a cohort.csv records them."""
    return {
        "spacing_x_mm": sa.spacing[0],
        "spacing_y_mm": sa.spacing[1],
        "slice_gap_mm": sa.slice_gap_mm(),
        "shape": "x".join(str(n) for n in sa.cine.shape),
    }
