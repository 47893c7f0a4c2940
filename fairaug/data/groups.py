"""Sensitive-attribute groups derived from age and BMI."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaug.errors import ConfigError

# WHO adult BMI categories (kg/m²).
BMI_CUTS = (18.5, 25.0, 30.0)
BMI_GROUPS = ("underweight", "normal", "overweight", "obese")


UNKNOWN = "unknown"  # a missing age or BMI: its own group, never a guessed one

# How clinicians order groups in tables and figures (others: alphabetically, which puts
# age decades in order); unknown last.
CLINICAL_ORDER = {"sex": ("female", "male"), "bmi_group": BMI_GROUPS, "diagnosis": ("healthy", "NOR")}


def clinical_order(column: str, value) -> tuple:
    """Sort key of a group of `column` in clinical order."""
    order = CLINICAL_ORDER.get(column, ())
    return (value == UNKNOWN, order.index(value) if value in order else len(order), str(value))


def bmi_group(bmi: pd.Series) -> pd.Series:
    edges = [-np.inf, *BMI_CUTS, np.inf]
    groups = pd.cut(bmi, edges, labels=BMI_GROUPS, right=False).astype(object)
    return groups.where(bmi.notna(), UNKNOWN).astype(str)


def age_decade(age: pd.Series) -> pd.Series:
    """'40s', '50s', ... as in the paper's prompts ("age in 60s")."""
    known = age.dropna()
    decades = ((known // 10).astype(int) * 10).astype(str) + "s"
    return decades.reindex(age.index, fill_value=UNKNOWN)


def age_tertile(age: pd.Series) -> pd.Series:
    """Three equal-count groups named by their age range, e.g. '45-58'."""
    known = age.dropna()
    edges = np.unique(np.quantile(known, [0.0, 1 / 3, 2 / 3, 1.0])) if len(known) else []
    if len(edges) < 4:
        raise ConfigError(
            f"data.age_groups=tertile needs at least three distinct ages in the cohort; it records "
            f"{len(set(known))} ({len(known)} of {len(age)} subjects have an age: ACDC records none)"
        )
    names = [f"{edges[i]:.0f}-{edges[i + 1]:.0f}" for i in range(3)]
    groups = pd.cut(known, edges, labels=names, include_lowest=True).astype(str)
    return groups.reindex(age.index, fill_value=UNKNOWN)


def age_groups(age: pd.Series, scheme: str) -> pd.Series:
    return {"decade": age_decade, "tertile": age_tertile}[scheme](age)
