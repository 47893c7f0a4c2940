"""What the public-dataset sources share: diagnosis groups -> labels, exclusions, and the
rule that an excluded subject is a choice (always listed), a broken one an error."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from fairaug.data.cohort import Problems, finalise, settle_problems
from fairaug.data.plausibility import out_of_range
from fairaug.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def group_labels(cfg) -> dict[str, int]:
    """Diagnosis group (upper case) -> label, from data.heart_failure and data.healthy."""
    heart_failure = [str(g).upper() for g in cfg.heart_failure]
    healthy = [str(g).upper() for g in cfg.healthy]
    both = sorted(set(heart_failure) & set(healthy))
    if both:
        raise ConfigError(f"data.heart_failure and data.healthy both name {both}")
    if not heart_failure or not healthy:
        raise ConfigError("data.heart_failure and data.healthy must each name at least one diagnosis group")
    return {**dict.fromkeys(healthy, 0), **dict.fromkeys(heart_failure, 1)}


def exclusion_reason(group: str, cfg) -> str:
    return (
        f"diagnosis group {group!r} is neither heart failure ({list(cfg.heart_failure)}) nor healthy "
        f"({list(cfg.healthy)}): excluded (set data.heart_failure / data.healthy to include it)"
    )


def number(text: str) -> float:
    """A recorded value as a float, NaN for an empty cell. float() also reads 'inf' and 'nan',
    which no dataset records as a measurement: a ValueError, like any other text."""
    if text == "":
        return math.nan
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def bmi_from(height_cm, weight_kg, plausible, where: str) -> float:
    """BMI from height (cm) and weight (kg); NaN when either is missing or not positive.
    A height or weight outside data.plausible is a DataError naming it and `where` it is recorded."""
    height, weight = pd.to_numeric(height_cm, errors="coerce"), pd.to_numeric(weight_kg, errors="coerce")
    if not (height > 0 and weight > 0 and np.isfinite(height) and np.isfinite(weight)):
        return float("nan")
    reasons = [
        r
        for r in (
            out_of_range(float(height), "height_cm", plausible),
            out_of_range(float(weight), "weight_kg", plausible),
        )
        if r
    ]
    if reasons:
        raise DataError(f"{where}: {'; '.join(reasons)}")
    return float(weight / (height / 100.0) ** 2)


def finish(rows: list[dict], errors: Problems, excluded: Problems, cfg, where: str) -> tuple[pd.DataFrame, Problems]:
    """The cohort of the usable rows. Errors raise (or, with data.on_error=skip, are logged);
    excluded subjects are logged with their count. Both are returned for skipped.csv."""
    settle_problems(errors, cfg.on_error, f"reading {where}")
    if excluded:
        log.info(
            "Excluded %d subject(s) of %s by diagnosis group or missing labels (listed in skipped.csv)",
            len(excluded),
            where,
        )
    bad = {subject for subject, _ in [*errors, *excluded]}
    table = pd.DataFrame([r for r in rows if r["subject_id"] not in bad])
    return finalise(table, cfg.age_groups, "real", where), [*errors, *excluded]
