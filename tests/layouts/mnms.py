"""Phantom subjects written in the M&Ms-1 layout, exactly as distributed.

<root>/211230_M&Ms_Dataset_information_diagnosis_opendataset.csv  first column: an unnamed index
<root>/Training/Labeled/<code>/<code>_sa.nii.gz     4D cine (X, Y, Z, T) int16, oblique affine
<root>/Training/Labeled/<code>/<code>_sa_gt.nii.gz  4D labels at ED and ES only (1 LV, 2 myocardium, 3 RV)
<root>/Training/Unlabeled/<code>/<code>_sa.nii.gz   no labels
<root>/Validation/<code>/..., <root>/Testing/<code>/...  (one level higher)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

INFORMATION = "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"
VENDORS = [("Siemens", "A", 1), ("Philips Medical Systems", "B", 2), ("General Electric", "C", 4), ("Canon", "D", 5)]
FOLDERS = ("Training/Labeled", "Validation", "Testing")
HEIGHT_CM = 170.0


def code(index: int) -> str:
    """The External code of the subject written from row `index`."""
    return f"A{index:02d}S{index % 7}V"


def vendor(index: int) -> tuple[str, str, int]:
    """VendorName, Vendor and Centre of row `index`."""
    return VENDORS[index % len(VENDORS)]


def subject_dir(root: Path, index: int, unlabelled: bool = False) -> Path:
    parent = "Training/Unlabeled" if unlabelled else FOLDERS[index % len(FOLDERS)]
    return Path(root) / parent / code(index)


def oblique(affine: np.ndarray, degrees: float = 30.0) -> np.ndarray:
    """The affine turned about the scanner's z axis and moved, as real scans are; voxel sizes kept."""
    turn = np.radians(degrees)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
    rotation[:3, 3] = (-70.0, 12.5, 40.0)
    return rotation @ affine


def write_mnms(
    root: Path,
    subjects: pd.DataFrame,
    pathologies: Mapping[int, str] | Sequence[str] | None = None,
    unlabelled: Collection[int] = (),
    unmeasured: Collection[int] = (0,),
    roll: int = 0,
) -> Path:
    """Write `subjects` (rows of a phantom cohort) as M&Ms subjects; row i becomes code(i) in
    subject_dir(root, i), with vendor(i). `pathologies` overrides some rows' Pathology
    ({1: "HCM"}) or gives all of them (a list); by default heart failure is DCM, healthy NOR.
    Rows in `unlabelled` get no _sa_gt file (under Training/Unlabeled), rows in `unmeasured`
    an empty Height and Weight. `roll` shifts every cine that many frames later (ED and ES
    move with it). Height is 170 cm, the weight gives the row's BMI to 0.1 kg. Returns root."""
    chosen = {i: "DCM" if label == 1 else "NOR" for i, label in enumerate(subjects.label)}
    chosen.update(pathologies if isinstance(pathologies, Mapping) else dict(enumerate(pathologies or [])))
    records = []
    for i, row in enumerate(subjects.itertuples()):
        folder = subject_dir(root, i, i in unlabelled)
        folder.mkdir(parents=True)
        source = nib.load(row.image_path)
        affine = oblique(source.affine)
        cine = np.roll(np.asanyarray(source.dataobj).astype(np.int16), roll, axis=3)
        n_frames = cine.shape[3]
        ed, es = (int(row.ed_frame) + roll) % n_frames, (int(row.es_frame) + roll) % n_frames
        nib.save(nib.Nifti1Image(cine, affine, source.header), folder / f"{code(i)}_sa.nii.gz")
        if i not in unlabelled:
            labels = np.zeros(cine.shape, dtype=np.uint8)
            labels[..., ed] = np.asanyarray(nib.load(row.ed_mask_path).dataobj)
            labels[..., es] = np.asanyarray(nib.load(row.es_mask_path).dataobj)
            gt = nib.Nifti1Image(labels, affine, source.header)
            gt.set_data_dtype(np.uint8)
            nib.save(gt, folder / f"{code(i)}_sa_gt.nii.gz")
        name, letter, centre = vendor(i)
        measured = i not in unmeasured
        records.append(
            {
                "External code": code(i),
                "VendorName": name,
                "Vendor": letter,
                "Centre": centre,
                "ED": ed,
                "ES": es,
                "Age": round(float(row.age)),
                "Pathology": chosen[i],
                "Sex": "F" if row.sex == "female" else "M",
                "Height": HEIGHT_CM if measured else None,
                "Weight": round(float(row.bmi) * (HEIGHT_CM / 100) ** 2, 1) if measured else None,
            }
        )
    pd.DataFrame(records).to_csv(Path(root) / INFORMATION)  # the index becomes the unnamed first column
    return Path(root)
