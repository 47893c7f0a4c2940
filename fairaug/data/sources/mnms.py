"""M&Ms-1 (Multi-Centre, Multi-Vendor & Multi-Disease) read exactly as distributed.

Subjects at any depth under data.root as <code>/<code>_sa.nii.gz (4D cine) and
<code>/<code>_sa_gt.nii.gz (4D, labelled at ED and ES only, canonical labels; absent for the
unlabelled subjects); one information CSV whose first column is an unnamed index, with
`External code, VendorName, Vendor, Centre, ED, ES, Age, Pathology, Sex, Height, Weight`
(ED and ES counted from 0). Vendor and centre are recorded as sensitive attributes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pandas as pd

from fairaug.data.cohort import Problems
from fairaug.data.nifti import cine_frames
from fairaug.data.plausibility import check_ids, ranges
from fairaug.data.sources.public import bmi_from, exclusion_reason, finish, group_labels, number
from fairaug.errors import DataError

CODE = "External code"
REQUIRED_COLUMNS = (CODE, "VendorName", "Centre", "ED", "ES", "Age", "Pathology", "Sex", "Height", "Weight")
SEXES = {"F": "female", "M": "male"}


def load_mnms(cfg) -> tuple[pd.DataFrame, Problems]:
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"data.root is not a folder: {root}")
    path = information_file(root, cfg.metadata)
    (information, errors), folders, labels = read_information(path), subject_folders(root), group_labels(cfg)
    if not folders.keys() & set(information[CODE]):
        raise DataError(
            f"none of the {len(information)} subjects {path.name} lists has a <code>/<code>_sa.nii.gz "
            f"under {root}; set data.root to the M&Ms dataset folder"
        )
    rows, excluded = [], []
    for record in information.to_dict("records"):
        code, group = record[CODE], record["Pathology"]
        try:
            if group.upper() not in labels:
                excluded.append((code, exclusion_reason(group, cfg) if group else f"no Pathology in {path.name}"))
                continue
            if code not in folders:  # the CSV lists the whole release; a copy may hold part of it
                excluded.append((code, f"not in this copy of the dataset: no {code}/{code}_sa.nii.gz under {root}"))
                continue
            folder = _folder(code, folders[code])
            gt = folder / f"{code}_sa_gt.nii.gz"
            if not gt.is_file():
                excluded.append((code, f"unlabelled: no {gt.name} in {folder}"))
                continue
            rows.append(
                {
                    "subject_id": code,
                    "label": labels[group.upper()],
                    "diagnosis": group,
                    "sex": _sex(record["Sex"], path),
                    "age": _number(record, "Age", path),
                    "bmi": _bmi(record, path, ranges(cfg)),
                    "vendor": record["VendorName"] or pd.NA,
                    "centre": record["Centre"] or pd.NA,
                    "reader": "nifti",
                    "subject_dir": str(folder),
                    "la_path": pd.NA,
                    **_files_and_frames(folder, gt, record, path),
                }
            )
        except DataError as error:
            errors.append((code, str(error)))
    return finish(rows, errors, excluded, cfg, f"the M&Ms dataset in {root}")


def information_file(root: Path, configured: str | None) -> Path:
    """data.metadata, or the one *.csv in data.root."""
    if configured:
        if not Path(configured).is_file():
            raise DataError(f"data.metadata not found: {configured}")
        return Path(configured)
    found = sorted(root.glob("*.csv"))
    if len(found) != 1:
        listed = f"found {[p.name for p in found]}" if found else "found none"
        raise DataError(f"expected one M&Ms information *.csv in {root} ({listed}); set data.metadata=<file>")
    return found[0]


def read_information(path: Path) -> tuple[pd.DataFrame, Problems]:
    """The information CSV as stripped text, one row per External code, and the rows no code
    names unambiguously (empty, unsafe or listed twice), as problems."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"cannot read {path} ({type(error).__name__}: {error})") from error
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table]
    if missing:
        raise DataError(f"{path} has no column(s) {missing} (found {list(table.columns)})")
    table = table.apply(lambda column: column.str.strip())
    table = table[(table[list(REQUIRED_COLUMNS)] != "").any(axis=1)]  # a spreadsheet's empty trailing rows
    problems, identified = check_ids(table[CODE], CODE)
    return table[identified], [(subject, f"{path.name}: {reason}") for subject, reason in problems]


def subject_folders(root: Path) -> dict[str, list[Path]]:
    """code -> every folder under root holding <code>/<code>_sa.nii.gz."""
    found = defaultdict(list)
    for cine in sorted(root.rglob("*_sa.nii.gz")):
        if cine.name == f"{cine.parent.name}_sa.nii.gz":
            found[cine.parent.name].append(cine.parent)
    return found


def _folder(code: str, found: list[Path]) -> Path:
    if len(found) > 1:
        raise DataError(f"{code}_sa.nii.gz found in {len(found)} folders: {[str(f) for f in found]}")
    return found[0]


def _sex(value: str, path: Path):
    if value == "":
        return pd.NA
    if value.upper() not in SEXES:
        raise DataError(f"unknown Sex {value!r} in {path.name} (expected M or F)")
    return SEXES[value.upper()]


def _number(record: dict, column: str, path: Path) -> float:
    """A numeric value; NaN when the cell is empty."""
    try:
        return number(record[column])
    except ValueError:
        raise DataError(f"{column} {record[column]!r} in {path.name} is not a number") from None


def _bmi(record: dict, path: Path, plausible) -> float:
    return bmi_from(_number(record, "Height", path), _number(record, "Weight", path), plausible, path.name)


def _files_and_frames(folder: Path, gt: Path, record: dict, path: Path) -> dict:
    """The cine and its labels, with ED and ES checked against the cine's frames (header only)."""
    cine = folder / f"{folder.name}_sa.nii.gz"
    n_frames = cine_frames(cine)
    frames = {}
    for key in ("ED", "ES"):
        value = _number(record, key, path)
        if math.isnan(value) or value % 1 or not 0 <= value < n_frames:
            raise DataError(
                f"{key} {record[key]!r} in {path.name} is not a frame of {cine.name} "
                f"(0..{n_frames - 1}, counted from 0)"
            )
        frames[key] = int(value)
    return {
        "image_path": str(cine),
        "ed_mask_path": str(gt),
        "es_mask_path": str(gt),
        "ed_frame": frames["ED"],
        "es_frame": frames["ES"],
    }
