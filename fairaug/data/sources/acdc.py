"""ACDC (Automated Cardiac Diagnosis Challenge) as distributed.

<root>/{training,testing}/patientNNN/Info.cfg (`ED: 1`, `ES: 12`, `Group: DCM`, `Height: 184.0`,
`NbFrame: 30`, `Weight: 95.0`; frames 1-based), patientNNN_4d.nii.gz (the cine) and
patientNNN_frameXX_gt.nii.gz at ED and ES (1 RV, 2 myocardium, 3 LV: the "acdc" reader
translates them). ACDC records no sex and no age.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fairaug.data.cohort import Problems
from fairaug.data.sources.public import bmi_from, exclusion_reason, finish, group_labels
from fairaug.errors import DataError

REQUIRED_KEYS = ("ED", "ES", "Group")


def read_info(path: Path) -> dict[str, str]:
    """Info.cfg as key -> value; section headers and blank lines are ignored."""
    info = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            info[key.strip()] = value.strip()
    return info


def patient_folders(root: Path) -> list[Path]:
    """patientNNN folders in root/training, root/testing, or root itself."""
    if not root.is_dir():
        raise DataError(f"data.root is not a folder: {root}")
    folders = sorted({p.parent for p in [*root.glob("patient*/Info.cfg"), *root.glob("*/patient*/Info.cfg")]})
    if not folders:
        raise DataError(f"{root}: no ACDC patient folders (patientNNN/Info.cfg in {root}, {root}/training or "
                        f"{root}/testing)")
    return folders


def _frame(info: dict, key: str, n_frames: int | None) -> int:
    """A 1-based frame of Info.cfg as a 0-based index."""
    value = int(float(info[key]))
    if value < 1 or (n_frames is not None and value > n_frames):
        raise ValueError(f"{key}: {value} is outside frames 1..{n_frames}")
    return value - 1


def read_patient(folder: Path, labels: dict[str, int]) -> dict:
    """One cohort row; raises ValueError / FileNotFoundError with the reason."""
    subject = folder.name
    info_path = folder / "Info.cfg"
    info = read_info(info_path)
    missing = [k for k in REQUIRED_KEYS if k not in info]
    if missing:
        raise ValueError(f"Info.cfg has no {', '.join(missing)} line")
    try:
        n_frames = int(float(info["NbFrame"])) if "NbFrame" in info else None
        ed, es = _frame(info, "ED", n_frames), _frame(info, "ES", n_frames)
    except ValueError as error:
        raise ValueError(f"Info.cfg: {error}") from error
    files = {"image_path": folder / f"{subject}_4d.nii.gz",
             "ed_mask_path": folder / f"{subject}_frame{ed + 1:02d}_gt.nii.gz",
             "es_mask_path": folder / f"{subject}_frame{es + 1:02d}_gt.nii.gz"}
    absent = [p.name for p in files.values() if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{', '.join(absent)} not found in {folder}")
    group = info["Group"].upper()
    return {"subject_id": subject, "label": labels.get(group), "diagnosis": group,
            "bmi": bmi_from(info.get("Height"), info.get("Weight")), "ed_frame": ed, "es_frame": es,
            "reader": "acdc", "subject_dir": str(folder), **{k: str(v) for k, v in files.items()}}


def load_acdc(cfg) -> tuple[pd.DataFrame, Problems]:
    root = Path(cfg.root)
    labels = group_labels(cfg)
    rows, errors, excluded = [], [], []
    for folder in patient_folders(root):
        try:
            row = read_patient(folder, labels)
        except (ValueError, OSError) as error:
            errors.append((folder.name, str(error)))
            continue
        if row["label"] is None:
            excluded.append((row["subject_id"], exclusion_reason(row["diagnosis"], cfg)))
        rows.append(row)
    ids = pd.Series([r["subject_id"] for r in rows])
    if ids.duplicated().any():
        raise DataError(f"{root}: patient folders appear twice (training and testing?): "
                        f"{sorted(set(ids[ids.duplicated()]))[:5]}")
    return finish(rows, errors, excluded, cfg, f"the ACDC dataset in {root}")
