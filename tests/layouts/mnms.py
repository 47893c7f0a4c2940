"""Phantom subjects written in the M&Ms-1 layout, exactly as distributed.

    <root>/211230_M&Ms_Dataset_information_diagnosis_opendataset.csv   (first column: an unnamed index)
    <root>/Training/Labeled/<code>/<code>_sa.nii.gz      4D cine
    <root>/Training/Labeled/<code>/<code>_sa_gt.nii.gz   4D labels at ED and ES only (1 LV, 2 myocardium, 3 RV)
    <root>/Testing/<code>/...                             (some subjects one level higher)
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

INFORMATION = "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"
VENDORS = [("Siemens", "A", 1), ("Philips Medical Systems", "B", 2), ("GE", "C", 4), ("Canon", "D", 5)]
HEIGHT_CM = 170.0


def code(index: int) -> str:
    return f"A{index:02d}B{index % 7}C"


def write_mnms(root: Path, subjects: pd.DataFrame, pathologies: list[str] | None = None) -> Path:
    """Write `subjects` (phantom cohort rows) as M&Ms subjects, the i-th as code(i), with
    pathologies[i] (default: DCM for heart failure, NOR for healthy) and vendor VENDORS[i % 4].
    Subject 0 has no height and weight. Returns root."""
    pathologies = pathologies or ["DCM" if label == 1 else "NOR" for label in subjects.label]
    records = []
    for i, (row, pathology) in enumerate(zip(subjects.itertuples(), pathologies)):
        folder = Path(root) / ("Training/Labeled" if i % 2 else "Testing") / code(i)
        folder.mkdir(parents=True)
        cine = nib.load(row.image_path)
        array = np.asanyarray(cine.dataobj).astype(np.int16)
        ed, es = int(row.ed_frame), int(row.es_frame)
        labels = np.zeros(array.shape, dtype=np.uint8)
        labels[..., ed] = np.asanyarray(nib.load(row.ed_mask_path).dataobj)
        labels[..., es] = np.asanyarray(nib.load(row.es_mask_path).dataobj)
        nib.save(nib.Nifti1Image(array, cine.affine), folder / f"{code(i)}_sa.nii.gz")
        nib.save(nib.Nifti1Image(labels, cine.affine), folder / f"{code(i)}_sa_gt.nii.gz")
        vendor, letter, centre = VENDORS[i % len(VENDORS)]
        known = i != 0
        records.append({"External code": code(i), "VendorName": vendor, "Vendor": letter, "Centre": centre, "ED": ed,
                        "ES": es, "Age": round(float(row.age)), "Pathology": pathology,
                        "Sex": "F" if row.sex == "female" else "M",
                        "Height": HEIGHT_CM if known else None,
                        "Weight": round(float(row.bmi) * (HEIGHT_CM / 100) ** 2, 1) if known else None})
    pd.DataFrame(records).to_csv(Path(root) / INFORMATION)  # the index is written as an unnamed first column
    return Path(root)
