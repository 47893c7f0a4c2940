"""Phantom subjects written in the ACDC layout, exactly as distributed.

    <root>/{training,testing}/patientNNN/Info.cfg             ED/ES counted from 1
    <root>/{training,testing}/patientNNN/patientNNN_4d.nii.gz  (X, Y, Z, T) int16
    <root>/{training,testing}/patientNNN/patientNNN_frameXX.nii.gz     the cine at frame XX
    <root>/{training,testing}/patientNNN/patientNNN_frameXX_gt.nii.gz  1 RV, 2 myocardium, 3 LV

Info.cfg comes in three styles, by subject: ACDC's own (LF, fixed order), one with an
`[Info]` header and CRLF line ends, and one shuffled with stray spaces and no NbFrame line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

TO_ACDC = np.array([0, 3, 2, 1], dtype=np.uint8)  # canonical 1 LV, 3 RV -> ACDC 3 LV, 1 RV
HEIGHT_CM = 170.0


def patient(index: int) -> str:
    """The name of the subject written from row `index`."""
    return f"patient{index + 1:03d}"


def patient_dir(root: Path, index: int) -> Path:
    """Every fourth patient is in testing/, the others in training/."""
    return Path(root) / ("testing" if index % 4 == 3 else "training") / patient(index)


def default_groups(subjects: pd.DataFrame) -> list[str]:
    """Heart failure alternates DCM and MINF; healthy subjects are NOR."""
    return [("DCM", "MINF")[i % 2] if label == 1 else "NOR" for i, label in enumerate(subjects.label)]


def info_text(index: int, ed: int, es: int, group: str, bmi: float, n_frames: int) -> str:
    """Info.cfg in the style of subject `index` (frames given 0-based, written 1-based)."""
    weight = bmi * (HEIGHT_CM / 100) ** 2
    lines = [
        f"ED: {ed + 1}",
        f"ES: {es + 1}",
        f"Group: {group}",
        f"Height: {HEIGHT_CM:.1f}",
        f"NbFrame: {n_frames}",
        f"Weight: {weight:.1f}",
    ]
    style = index % 3
    if style == 1:
        return "\r\n".join(["[Info]", *lines]) + "\r\n"
    if style == 2:
        shuffled = [lines[5], lines[2], lines[1], "", lines[3], lines[0]]  # no NbFrame line
        return "\n".join("  " + line.replace(": ", " :  ") + " " if line else line for line in shuffled)
    return "\n".join(lines) + "\n"


def write_acdc(
    root: Path, subjects: pd.DataFrame, groups: Mapping[int, str] | Sequence[str] | None = None, roll: int = 0
) -> Path:
    """Write `subjects` (rows of a phantom cohort) as ACDC patients; row i becomes patient(i)
    in patient_dir(root, i). `groups` overrides the diagnosis group of some rows ({1: "HCM"})
    or gives all of them (a list); the others keep default_groups. `roll` shifts every cine
    that many frames later (ED and ES move with it). Height is 170 cm, the weight gives the
    row's BMI to 0.1 kg. Returns root."""
    chosen = dict(enumerate(default_groups(subjects)))
    chosen.update(groups if isinstance(groups, Mapping) else dict(enumerate(groups or [])))
    for i, row in enumerate(subjects.itertuples()):
        name, folder = patient(i), patient_dir(root, i)
        folder.mkdir(parents=True)
        source = nib.load(row.image_path)
        cine = np.roll(np.asanyarray(source.dataobj).astype(np.int16), roll, axis=3)
        n_frames = cine.shape[3]
        ed, es = (int(row.ed_frame) + roll) % n_frames, (int(row.es_frame) + roll) % n_frames
        nib.save(nib.Nifti1Image(cine, source.affine, source.header), folder / f"{name}_4d.nii.gz")
        for frame, mask_path in ((ed, row.ed_mask_path), (es, row.es_mask_path)):
            mask = TO_ACDC[np.asanyarray(nib.load(mask_path).dataobj).astype(np.uint8)]
            nib.save(nib.Nifti1Image(cine[..., frame], source.affine), folder / f"{name}_frame{frame + 1:02d}.nii.gz")
            nib.save(nib.Nifti1Image(mask, source.affine), folder / f"{name}_frame{frame + 1:02d}_gt.nii.gz")
        text = info_text(i, ed, es, chosen[i], float(row.bmi), n_frames)
        (folder / "Info.cfg").write_bytes(text.encode())
    return Path(root)
