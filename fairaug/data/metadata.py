"""Reads a cohort metadata CSV into canonical columns.

Accepts our column names or UK Biobank field ids in both common spellings (`31-0.0` as
exported by ukbconv, `f.31.0.0` as read by R's ukbtools). Every value is checked: an
unknown sex or diagnosis is an error naming the subject, never a silently wrong label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fairaug.data.plausibility import check_ids
from fairaug.errors import DataError

# Canonical column -> names recognised automatically, in order of preference.
KNOWN_COLUMNS = {
    "subject_id": ["subject_id", "eid", "f.eid"],
    "sex": ["sex", "31-0.0", "f.31.0.0"],
    "age": ["age", "21003-2.0", "f.21003.2.0"],
    "birth_year": ["birth_year", "34-0.0", "f.34.0.0"],
    "birth_month": ["birth_month", "52-0.0", "f.52.0.0"],
    "visit_date": ["visit_date", "53-2.0", "f.53.2.0"],
    "bmi": ["bmi", "21001-2.0", "f.21001.2.0"],
    "diagnosis": ["diagnosis", "label"],
    "ed_frame": ["ed_frame"],
    "es_frame": ["es_frame"],
}
SEX_VALUES = {
    "0": "female",
    "1": "male",
    "female": "female",
    "f": "female",
    "woman": "female",
    "male": "male",
    "m": "male",
    "man": "male",
}
DIAGNOSIS_VALUES = {
    "0": 0,
    "healthy": 0,
    "control": 0,
    "normal": 0,
    "1": 1,
    "heart failure": 1,
    "heart_failure": 1,
    "hf": 1,
}


def _find_column(frame: pd.DataFrame, canonical: str, configured: str | None, path: Path) -> str | None:
    if configured:
        if configured not in frame.columns:
            raise DataError(
                f"{path}: column '{configured}' (data.columns.{canonical}) is missing; "
                f"columns are {list(frame.columns)}"
            )
        return configured
    return next((name for name in KNOWN_COLUMNS[canonical] if name in frame.columns), None)


def _require(frame, canonical, configured, path) -> str:
    column = _find_column(frame, canonical, configured, path)
    if column is None:
        raise DataError(
            f"{path}: no '{canonical}' column (looked for {KNOWN_COLUMNS[canonical]}; "
            f"set data.columns.{canonical} to name another)"
        )
    return column


def lookup_key(value) -> str:
    """A value as a lookup key: 1.0 -> '1', ' Heart Failure ' -> 'heart failure'."""
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip().lower()


def _age(frame: pd.DataFrame, columns, path: Path) -> pd.Series:
    column = _find_column(frame, "age", columns.age, path)
    if column is not None:
        return pd.to_numeric(frame[column], errors="coerce")
    birth = _find_column(frame, "birth_year", columns.birth_year, path)
    visit = _find_column(frame, "visit_date", columns.visit_date, path)
    if birth is None or visit is None:
        raise DataError(
            f"{path}: no age: give an 'age' column, or year of birth (34-0.0) and the "
            "imaging visit date (53-2.0); data.columns.* names other columns"
        )
    visit_date = pd.to_datetime(frame[visit], errors="coerce")
    age = visit_date.dt.year - pd.to_numeric(frame[birth], errors="coerce")
    month = _find_column(frame, "birth_month", columns.birth_month, path)
    if month is not None:  # UK Biobank field 52, coding 8: 1 = January ... 12 = December
        age = age + (visit_date.dt.month - pd.to_numeric(frame[month], errors="coerce")) / 12.0
    return age


def _invalid(name: str, value: float) -> str | None:
    """Why an age or BMI cannot be used; pandas reads 'inf' as a number, which no group holds."""
    if value > 0 and np.isfinite(value):
        return None
    if pd.isna(value):
        return f"missing or invalid {name}"  # empty, or text that is not a number
    return f"invalid {name} {value:g} (not a positive finite number)"


def read_metadata(path: Path, columns) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Canonical metadata (subject_id, sex, age, bmi, label, ed_frame, es_frame) and the
    rows that cannot be used, as (subject_id, reason)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"metadata file not found: {path}")
    id_columns = [columns.subject_id] if columns.subject_id else KNOWN_COLUMNS["subject_id"]
    try:
        frame = pd.read_csv(path, dtype=dict.fromkeys(id_columns, str))
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from error
    raw_ids = frame[_require(frame, "subject_id", columns.subject_id, path)]
    ids = raw_ids.astype("string").str.strip().fillna("").astype(str)  # a missing id is "", never "nan"
    problems, identified = check_ids(ids)
    sex_raw = frame[_require(frame, "sex", columns.sex, path)]
    diagnosis_raw = frame[_require(frame, "diagnosis", columns.diagnosis, path)]
    table = pd.DataFrame(
        {
            "subject_id": ids,
            "sex": sex_raw.map(lambda v: SEX_VALUES.get(lookup_key(v))),
            "age": _age(frame, columns, path),
            "bmi": pd.to_numeric(frame[_require(frame, "bmi", columns.bmi, path)], errors="coerce"),
            "label": diagnosis_raw.map(lambda v: DIAGNOSIS_VALUES.get(lookup_key(v))),
            "diagnosis": diagnosis_raw.astype(str).str.strip(),
        }
    )
    frame_problems = {}
    for name in ("ed_frame", "es_frame"):
        column = _find_column(frame, name, getattr(columns, name), path)
        if column is None:
            table[name] = pd.NA
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = (frame[column].notna() & values.isna()) | (values.notna() & ((values % 1 != 0) | (values < 0)))
        for i in np.flatnonzero(bad.to_numpy()):
            frame_problems.setdefault(i, []).append(f"{name} {frame[column].iloc[i]!r} is not a frame index")
        table[name] = values.where(~bad).astype("Int64")

    for i, row in table[identified].iterrows():
        reasons = list(frame_problems.get(i, []))
        if pd.isna(row.sex):
            reasons.append(f"unknown sex {sex_raw.iloc[i]!r} (expected 0/1, female/male)")
        if row.label is None or pd.isna(row.label):
            reasons.append(f"unknown diagnosis {diagnosis_raw.iloc[i]!r} (expected 0/1, healthy/heart failure)")
        reasons += [r for r in (_invalid("age", row.age), _invalid("BMI", row.bmi)) if r]
        if reasons:
            problems.append((row.subject_id, "; ".join(reasons)))
    table = table[identified & ~table.subject_id.isin({subject for subject, _ in problems})].reset_index(drop=True)
    table["label"] = table["label"].astype(int)
    return table, [(s, f"{path.name}: {r}") for s, r in problems]
