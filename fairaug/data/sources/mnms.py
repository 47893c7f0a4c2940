"""M&Ms-1 (Multi-Centre, Multi-Vendor & Multi-Disease) as distributed.

Subjects at any depth as <code>/<code>_sa.nii.gz (4D cine) and <code>_sa_gt.nii.gz (4D,
labelled at ED and ES only, canonical labels); one information CSV whose first column is
an unnamed index, with `External code, VendorName, Vendor, Centre, ED, ES, Age, Pathology,
Sex, Height, Weight` (ED/ES 0-based). Vendor and centre become sensitive attributes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fairaug.data.cohort import Problems
from fairaug.data.metadata import SEX_VALUES, lookup_key
from fairaug.data.sources.public import bmi_from, exclusion_reason, finish, group_labels
from fairaug.errors import DataError

REQUIRED_COLUMNS = ("External code", "VendorName", "Centre", "ED", "ES", "Age", "Pathology", "Sex", "Height",
                    "Weight")


def metadata_file(root: Path, configured: str | None) -> Path:
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise DataError(f"data.metadata not found: {path}")
        return path
    found = sorted(root.glob("*.csv"))
    if len(found) != 1:
        listed = [p.name for p in found] or "none"
        raise DataError(f"{root}: expected one M&Ms information *.csv, found {listed}; set data.metadata=<file>")
    return found[0]


def read_information(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"External code": str}, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from error
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns are {list(frame.columns)}")
    codes = frame["External code"].astype(str).str.strip()
    if codes.duplicated().any():
        raise DataError(f"{path}: duplicate External code(s) {sorted(set(codes[codes.duplicated()]))[:5]}")
    return frame.assign(**{"External code": codes})


def subject_folders(root: Path) -> dict[str, Path]:
    """code -> folder, for every <code>/<code>_sa.nii.gz under root."""
    return {p.parent.name: p.parent for p in sorted(root.rglob("*_sa.nii.gz"))
            if p.name == f"{p.parent.name}_sa.nii.gz"}


def _text(value) -> str:
    """A category as text: 1.0 -> '1' (pandas reads integer columns with gaps as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _frame(value, name: str) -> int:
    frame = pd.to_numeric(value, errors="coerce")
    if pd.isna(frame) or frame < 0 or frame % 1:
        raise ValueError(f"{name} {value!r} is not a frame index")
    return int(frame)


def load_mnms(cfg) -> tuple[pd.DataFrame, Problems]:
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"data.root is not a folder: {root}")
    path = metadata_file(root, cfg.metadata)
    frame, folders, labels = read_information(path), subject_folders(root), group_labels(cfg)
    rows, errors, excluded = [], [], []
    for record in frame.to_dict("records"):
        code = record["External code"]
        folder = folders.get(code)
        if folder is None:
            errors.append((code, f"{path.name} lists it, but no {code}/{code}_sa.nii.gz is under {root}"))
            continue
        group = str(record["Pathology"]).strip().upper()
        sex = SEX_VALUES.get(lookup_key(record["Sex"])) if pd.notna(record["Sex"]) else None
        gt = folder / f"{code}_sa_gt.nii.gz"
        try:
            ed, es = _frame(record["ED"], "ED"), _frame(record["ES"], "ES")
            if pd.notna(record["Sex"]) and sex is None:
                raise ValueError(f"unknown Sex {record['Sex']!r} (expected M/F)")
        except ValueError as error:
            errors.append((code, f"{path.name}: {error}"))
            continue
        if not gt.is_file():
            excluded.append((code, f"unlabelled: no {gt.name} in {folder}"))
        elif group not in labels:
            excluded.append((code, exclusion_reason(group, cfg)))
        rows.append({"subject_id": code, "label": labels.get(group), "diagnosis": group, "sex": sex,
                     "age": pd.to_numeric(record["Age"], errors="coerce"),
                     "bmi": bmi_from(record["Height"], record["Weight"]), "vendor": _text(record["VendorName"]),
                     "centre": _text(record["Centre"]), "ed_frame": ed, "es_frame": es, "reader": "nifti",
                     "subject_dir": str(folder), "image_path": str(folder / f"{code}_sa.nii.gz"),
                     "ed_mask_path": str(gt), "es_mask_path": str(gt)})
    return finish(rows, errors, excluded, cfg, f"the M&Ms dataset in {root}")
