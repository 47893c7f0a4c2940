"""The cohort table: one row per subject, the spine every stage reads.

Sources (phantom, ukbb, the public datasets, synthetic) produce it; splits, views, samplers and reports
only ever see this table, so a new source never needs special cases downstream.
"""

from __future__ import annotations

import logging

import pandas as pd

from fairaug.data.groups import UNKNOWN, age_groups, bmi_group
from fairaug.errors import DataError

log = logging.getLogger(__name__)

# What a subject's record says of them: the attributes and the values they derive from.
RECORDED = ["sex", "age", "bmi", "age_group", "bmi_group", "vendor", "centre"]
COLUMNS = [
    "subject_id",
    "label",
    "diagnosis",
    *RECORDED,
    "origin",
    "subject_dir",
    "ed_frame",
    "es_frame",
    "reader",
    "image_path",
    "ed_mask_path",
    "es_mask_path",
    "la_path",
]
# Sensitive attributes: categorical columns the samplers, reports and prompts group by; a
# person's (what a prompt describes and the balance planner fills) and the site's.
PERSON_ATTRIBUTES = ["sex", "age_group", "bmi_group"]
SITE_ATTRIBUTES = ["vendor", "centre"]
ATTRIBUTES = [*PERSON_ATTRIBUTES, *SITE_ATTRIBUTES]
LABEL_NAMES = {0: "healthy", 1: "heart failure"}  # canonical labels

Problems = list[tuple[str, str]]  # (subject_id, reason)


def settle_problems(problems: Problems, on_error: str, what: str) -> None:
    """Raise on bad subjects, or (data.on_error=skip) log each with its reason."""
    if not problems:
        return
    listed = "\n".join(f"  {subject}: {reason}" for subject, reason in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    if on_error == "raise":
        raise DataError(
            f"{len(problems)} subject(s) unusable while {what}:\n{listed}{more}\n"
            "(data.on_error=skip leaves them out and logs them)"
        )
    log.warning("Skipped %d subject(s) while %s:\n%s%s", len(problems), what, listed, more)


def finalise(table: pd.DataFrame, age_scheme: str, origin: str, where: str) -> pd.DataFrame:
    """Derive the sensitive-attribute groups, mark what the dataset does not record as
    unknown (never a guessed value) and order the columns."""
    if table.empty:
        raise DataError(f"the cohort is empty: no usable subject in {where}")
    table = table.copy()
    for column in COLUMNS:
        if column not in table:
            table[column] = pd.NA
    table["age"] = pd.to_numeric(table["age"], errors="coerce").astype(float)
    table["bmi"] = pd.to_numeric(table["bmi"], errors="coerce").astype(float)
    table["age_group"] = age_groups(table["age"], age_scheme)
    table["bmi_group"] = bmi_group(table["bmi"])
    for column in ("sex", "vendor", "centre"):
        table[column] = table[column].where(table[column].notna(), UNKNOWN).astype(str)
    table["reader"] = table["reader"].where(table["reader"].notna(), "nifti")
    table["origin"] = origin
    return table[COLUMNS].reset_index(drop=True)


def is_recorded(values: pd.Series) -> bool:
    """Whether an attribute column holds a value (not missing, not unknown) for any subject."""
    return bool((values.notna() & (values.astype(str) != UNKNOWN)).any())


def recorded_attributes(table: pd.DataFrame) -> list[str]:
    """The sensitive attributes this cohort records for at least one subject."""
    return [a for a in ATTRIBUTES if a in table and is_recorded(table[a])]
