"""What every cohort must pass before anything uses it, whatever its source: recorded values
within plausible ranges (data.plausible), subject ids usable as file names, and every file
confined to the data's own folders.

Confinement is lexical (`..` and absolute paths are resolved against the folder, symlinks
are not followed): a dataset whose subject folders are symlinks to other disks stays valid,
while an id like `../1000006` or a manifest entry `/etc/x.png` cannot reach outside.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from fairaug.data.cohort import Problems
from fairaug.errors import ConfigError
from fairaug.schemas import PlausibleConfig

PATH_COLUMNS = ("subject_dir", "image_path", "ed_mask_path", "es_mask_path", "la_path")
_UNSAFE_ID = re.compile(r"[/\\\x00-\x1f]")


def ranges(data_cfg):
    """data.plausible, or its defaults for a run config saved before it existed."""
    return data_cfg.get("plausible") or OmegaConf.structured(PlausibleConfig)


def check_ranges(plausible) -> None:
    for name, bounds in plausible.items():
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise ConfigError(f"data.plausible.{name} must be [low, high] with low < high, got {list(bounds)}")


def out_of_range(value: float, name: str, plausible) -> str | None:
    """Why `value` is implausible for data.plausible.`name`; None when it is fine or missing."""
    low, high = plausible[name]
    if value is None or (isinstance(value, float) and math.isnan(value)) or low <= value <= high:
        return None
    return f"{name} {value:g} is outside data.plausible.{name}=[{low:g}, {high:g}]"


def id_problem(subject) -> str | None:
    """Why a subject id cannot be used (it names folders and files); None when it can."""
    text = "" if subject is None or pd.isna(subject) else str(subject)
    if not text.strip():
        return "empty subject id"
    if _UNSAFE_ID.search(text) or text.startswith(".") or text != text.strip():
        return (
            f"subject id {text!r} is not a safe file name (no '/', '\\\\', control characters, leading '.' or "
            "surrounding spaces)"
        )
    return None


def check_ids(ids: pd.Series, column: str = "subject id") -> tuple[Problems, pd.Series]:
    """Which rows of a metadata table (index as read: row i is line i + 2 under the header)
    an id names unambiguously, as a mask, and (subject, reason) for the others: an empty id
    (named by its line), an id that is not a safe file name (refused before it becomes a
    path), an id listed more than once (all its rows: which one is right is unknown)."""
    text = ids.fillna("").astype(str)
    lines: dict[str, list[int]] = {}
    for index, subject in text.items():
        lines.setdefault(subject, []).append(int(index) + 2)
    problems, bad = [], set()
    for subject, at in lines.items():
        reason = id_problem(subject)
        if not subject.strip():
            problems += [(f"line {line}", f"empty {column}") for line in at]
        elif reason:
            problems.append((subject, reason))
        elif len(at) > 1:
            problems.append((subject, f"listed {len(at)} times (lines {', '.join(map(str, at))})"))
        else:
            continue
        bad.add(subject)
    return problems, ~text.isin(bad)


def confined(path, roots: list[Path]) -> bool:
    """Whether `path` lies inside one of `roots` once `..` is resolved (lexically)."""
    target = os.path.abspath(path)
    return any(os.path.commonpath([target, os.path.abspath(root)]) == os.path.abspath(root) for root in roots)


def inside(folder: Path, entry: str) -> Path | None:
    """`folder / entry` for a relative entry that stays inside `folder`; None otherwise."""
    if os.path.isabs(entry) or not confined(Path(folder) / entry, [Path(folder)]):
        return None
    return Path(folder) / entry


def cohort_problems(table: pd.DataFrame, data_cfg) -> Problems:
    """(subject, reason) for every row with an unsafe id, an implausible age or BMI, or a file
    outside data.root (or data.contours where the source has one). The ranges are checked by
    the caller, before the source is read."""
    plausible = ranges(data_cfg)
    roots = [Path(data_cfg.root), *([Path(data_cfg.contours)] if data_cfg.get("contours") else [])]
    problems = []
    for row in table.itertuples(index=False):
        reasons = [
            id_problem(row.subject_id),
            out_of_range(row.age, "age", plausible),
            out_of_range(row.bmi, "bmi", plausible),
        ]
        reasons += [
            f"{column} {value} lies outside {', '.join(map(str, roots))}"
            for column in PATH_COLUMNS
            if not pd.isna(value := getattr(row, column)) and not confined(value, roots)
        ]
        reasons = [r for r in reasons if r]
        if reasons:
            problems.append((str(row.subject_id), "; ".join(reasons)))
    return problems
