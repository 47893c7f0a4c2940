"""The cohort table: one row per subject, the spine every stage reads.

Sources (phantom, ukbb, later synthetic) produce it; splits, views, samplers and reports
only ever see this table, so a new source never needs special cases downstream.
"""

from __future__ import annotations

import logging

import pandas as pd

from fairaug.data.groups import age_groups, bmi_group
from fairaug.errors import ConfigError, DataError

log = logging.getLogger(__name__)

COLUMNS = ["subject_id", "label", "sex", "age", "bmi", "age_group", "bmi_group", "origin",
           "subject_dir", "ed_frame", "es_frame"]
ATTRIBUTES = ["sex", "age_group", "bmi_group"]
ON_ERROR = ("raise", "skip")

Problems = list[tuple[str, str]]  # (subject_id, reason)


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ConfigError(f"data.on_error must be one of {ON_ERROR}, got '{on_error}'")


def settle_problems(problems: Problems, on_error: str, what: str) -> None:
    """Raise on bad subjects, or (data.on_error=skip) log each with its reason."""
    if not problems:
        return
    listed = "\n".join(f"  {subject}: {reason}" for subject, reason in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    if on_error == "raise":
        raise DataError(f"{len(problems)} subject(s) unusable while {what}:\n{listed}{more}\n"
                        "(data.on_error=skip leaves them out and logs them)")
    log.warning("Skipped %d subject(s) while %s:\n%s%s", len(problems), what, listed, more)


def finalise(table: pd.DataFrame, age_scheme: str, origin: str) -> pd.DataFrame:
    """Derive the sensitive-attribute groups and order the columns."""
    if table.empty:
        raise DataError("the cohort is empty: no usable subject")
    table = table.copy()
    table["age_group"] = age_groups(table["age"], age_scheme)
    table["bmi_group"] = bmi_group(table["bmi"])
    table["origin"] = origin
    return table[COLUMNS].reset_index(drop=True)
