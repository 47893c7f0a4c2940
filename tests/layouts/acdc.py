"""Phantom subjects written in the ACDC layout, exactly as distributed.

    <root>/training/patientNNN/Info.cfg
    <root>/training/patientNNN/patientNNN_4d.nii.gz            (X, Y, Z, T) int16
    <root>/training/patientNNN/patientNNN_frameXX.nii.gz       the cine at frame XX (1-based)
    <root>/training/patientNNN/patientNNN_frameXX_gt.nii.gz    ACDC labels: 1 RV, 2 myocardium, 3 LV
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

TO_ACDC = np.array([0, 3, 2, 1], dtype=np.uint8)  # canonical 1 LV, 3 RV -> ACDC 3 LV, 1 RV
HEIGHT_CM = 170.0


def patient(index: int) -> str:
    return f"patient{index + 1:03d}"


def default_groups(subjects: pd.DataFrame) -> list[str]:
    """Heart failure alternates DCM and MINF; healthy subjects are NOR."""
    return [("DCM", "MINF")[i % 2] if label == 1 else "NOR" for i, label in enumerate(subjects.label)]


def info_lines(ed: int, es: int, group: str, bmi: float, n_frames: int) -> list[str]:
    weight = bmi * (HEIGHT_CM / 100) ** 2
    return [f"ED: {ed + 1}", f"ES: {es + 1}", f"Group: {group}", f"Height: {HEIGHT_CM:.1f}",
            f"NbFrame: {n_frames}", f"Weight: {weight:.1f}"]


def write_acdc(root: Path, subjects: pd.DataFrame, groups: list[str] | None = None) -> Path:
    """Write `subjects` (phantom cohort rows) as ACDC patients, the i-th as patient(i) with
    groups[i] (default: default_groups); every other Info.cfg starts with an [Info] header and
    uses CRLF line ends. Returns root."""
    groups = groups or default_groups(subjects)
    for i, (row, group) in enumerate(zip(subjects.itertuples(), groups)):
        name = patient(i)
        folder = Path(root) / ("training" if i % 3 else "testing") / name
        folder.mkdir(parents=True)
        cine = nib.load(row.image_path)
        array = np.asanyarray(cine.dataobj).astype(np.int16)
        ed, es = int(row.ed_frame), int(row.es_frame)
        nib.save(nib.Nifti1Image(array, cine.affine), folder / f"{name}_4d.nii.gz")
        for frame, mask_path in ((ed, row.ed_mask_path), (es, row.es_mask_path)):
            mask = TO_ACDC[np.asanyarray(nib.load(mask_path).dataobj).astype(np.uint8)]
            nib.save(nib.Nifti1Image(array[..., frame], cine.affine), folder / f"{name}_frame{frame + 1:02d}.nii.gz")
            nib.save(nib.Nifti1Image(mask, cine.affine), folder / f"{name}_frame{frame + 1:02d}_gt.nii.gz")
        lines = info_lines(ed, es, group, float(row.bmi), array.shape[3])
        text = "\r\n".join(["[Info]", *lines]) if i % 2 else "\n".join(lines)
        (folder / "Info.cfg").write_text(text + "\n", newline="")
    return Path(root)
