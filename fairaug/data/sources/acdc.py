"""ACDC (Automated Cardiac Diagnosis Challenge) read exactly as distributed.

<root>/{training,testing}/patientNNN/ (or root = one of those folders) holds Info.cfg
(`ED: 1`, `ES: 12`, `Group: DCM`, `Height: 184.0`, `NbFrame: 30`, `Weight: 95.0`: frames
counted from 1, lines in any order, with or without an `[Info]` header), patientNNN_4d.nii.gz
(the cine) and patientNNN_frameXX_gt.nii.gz at ED and ES, labelled 1 RV, 2 myocardium,
3 LV (the "acdc" reader translates them). ACDC records neither sex nor age: both stay unknown.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from fairaug.data.cohort import Problems
from fairaug.data.nifti import cine_frames
from fairaug.data.plausibility import ranges
from fairaug.data.sources.public import bmi_from, exclusion_reason, finish, group_labels, number
from fairaug.errors import DataError

INFO_FILE = "Info.cfg"
KEYS = ("ED", "ES", "Group", "NbFrame", "Height", "Weight")
REQUIRED_KEYS = ("ED", "ES", "Group")
PATIENT = re.compile(r"patient\d+")


def load_acdc(cfg) -> tuple[pd.DataFrame, Problems]:
    root = Path(cfg.root)
    labels = group_labels(cfg)
    rows, errors, excluded = [], [], []
    folders = patient_folders(root)
    for subject, found in folders.items():
        try:
            if len(found) > 1:
                raise DataError(f"found twice, in {[str(f.parent) for f in found]} (point data.root at one of them)")
            info = read_info(found[0] / INFO_FILE)
            group = info["Group"]
            if group.upper() not in labels:
                excluded.append((subject, exclusion_reason(group, cfg)))
                continue
            rows.append(
                {
                    "subject_id": subject,
                    "label": labels[group.upper()],
                    "diagnosis": group,
                    "bmi": _bmi(info, found[0] / INFO_FILE, ranges(cfg)),
                    "reader": "acdc",
                    "subject_dir": str(found[0]),
                    "la_path": pd.NA,
                    **_files_and_frames(found[0], info),
                }
            )
        except DataError as error:
            errors.append((subject, str(error)))
    return finish(rows, errors, excluded, cfg, f"the ACDC dataset in {root}")


def patient_folders(root: Path) -> dict[str, list[Path]]:
    """patientNNN -> its folder(s), in root itself or one level down (training/, testing/)."""
    if not root.is_dir():
        raise DataError(f"data.root is not a folder: {root}")
    found: dict[str, list[Path]] = {}
    for folder in sorted([*root.glob("patient*"), *root.glob("*/patient*")]):
        if folder.is_dir() and PATIENT.fullmatch(folder.name):
            found.setdefault(folder.name, []).append(folder)
    if not found:
        raise DataError(
            f"no ACDC patient folders (patientNNN/) in {root} or its training/ and testing/ folders; "
            "set data.root to the folder holding them"
        )
    return dict(sorted(found.items()))


def read_info(path: Path) -> dict[str, str]:
    """Info.cfg as key -> value; headers, blank lines, CRLF and stray spaces are tolerated."""
    if not path.is_file():
        raise DataError(f"{path.name} not found in {path.parent}")
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        raise DataError(f"cannot read {path} ({type(error).__name__}: {error.strerror or error})") from error
    canonical = {key.lower(): key for key in KEYS}
    info = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip():
            info[canonical.get(key.strip().lower(), key.strip())] = value.strip()
    missing = [key for key in REQUIRED_KEYS if not info.get(key)]
    if missing:
        raise DataError(f"{path} has no {', '.join(missing)} line")
    return info


def _number(info: dict, key: str, path: Path) -> float:
    """A numeric Info.cfg value; NaN when the line is absent or empty."""
    value = info.get(key, "")
    try:
        return number(value)
    except ValueError:
        raise DataError(f"{path}: {key} {value!r} is not a number") from None


def _frame(info: dict, key: str, n_frames: int, limit: str, path: Path) -> int:
    """A 1-based Info.cfg frame as a 0-based index."""
    value = _number(info, key, path)
    if value % 1 or not 1 <= value <= n_frames:
        raise DataError(f"{path}: {key} {info[key]} is outside frames 1..{n_frames} ({limit})")
    return int(value) - 1


def _bmi(info: dict, path: Path, plausible) -> float:
    return bmi_from(_number(info, "Height", path), _number(info, "Weight", path), plausible, str(path))


def _files_and_frames(folder: Path, info: dict) -> dict:
    """The cine and the ED/ES label files, with ED and ES checked against NbFrame and the cine."""
    subject, path = folder.name, folder / INFO_FILE
    cine = folder / f"{subject}_4d.nii.gz"
    in_cine, recorded = cine_frames(cine), _number(info, "NbFrame", path)
    n_frames = in_cine if math.isnan(recorded) else min(in_cine, int(recorded))
    limit = f"{cine.name} has {in_cine} frames" + ("" if math.isnan(recorded) else f", NbFrame {info['NbFrame']}")
    ed, es = _frame(info, "ED", n_frames, limit, path), _frame(info, "ES", n_frames, limit, path)
    masks = [folder / f"{subject}_frame{frame + 1:02d}_gt.nii.gz" for frame in (ed, es)]
    absent = [mask.name for mask in masks if not mask.is_file()]
    if absent:
        raise DataError(f"{', '.join(absent)} not found in {folder} (the ground truth at ED/ES of {path.name})")
    return {
        "image_path": str(cine),
        "ed_mask_path": str(masks[0]),
        "es_mask_path": str(masks[1]),
        "ed_frame": ed,
        "es_frame": es,
    }
