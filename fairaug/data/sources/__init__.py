"""Where cohorts come from: one loader per `data=` choice, each returning the cohort table
(canonical columns, one row per subject) and the subjects it skipped with their reasons."""

from __future__ import annotations

import pandas as pd
from omegaconf import OmegaConf

from fairaug.data.cohort import Problems, settle_problems
from fairaug.data.groups import age_groups
from fairaug.data.plausibility import check_ranges, cohort_problems, ranges
from fairaug.data.sources.acdc import load_acdc
from fairaug.data.sources.mnms import load_mnms
from fairaug.data.sources.sunnybrook import load_sunnybrook
from fairaug.data.sources.ukbb import load_phantom, load_ukbb
from fairaug.errors import ConfigError, DataError

SOURCES = {
    "phantom": load_phantom,
    "ukbb": load_ukbb,
    "acdc": load_acdc,
    "mnms": load_mnms,
    "sunnybrook": load_sunnybrook,
}


# Settings of the data group that change how a cohort is read, not who is in it.
NOT_COHORT = ("workers", "on_error", "synthetic", "use_real")


def cohort_identity(data_cfg) -> dict:
    """The settings that decide who is in a cohort (two configs with the same identity read the same subjects)."""
    data = OmegaConf.to_container(data_cfg, resolve=True)
    return {key: value for key, value in data.items() if key not in NOT_COHORT}


def load_cohort(data_cfg) -> tuple[pd.DataFrame, Problems]:
    """The source's cohort, less the subjects that fail the checks every cohort must pass
    (raised, or with data.on_error=skip listed among the skipped)."""
    if data_cfg.name not in SOURCES:
        raise ConfigError(f"unknown data source '{data_cfg.name}'; known: {sorted(SOURCES)}")
    check_ranges(ranges(data_cfg))
    table, skipped = SOURCES[data_cfg.name](data_cfg)
    problems = cohort_problems(table, data_cfg)
    settle_problems(problems, data_cfg.on_error, f"checking the cohort of data={data_cfg.name}")
    if problems:
        table = table[~table.subject_id.astype(str).isin({s for s, _ in problems})]
        if table.empty:
            raise DataError(f"the cohort is empty: no usable subject in data={data_cfg.name}")
        table = table.assign(age_group=age_groups(table.age, data_cfg.age_groups)).reset_index(drop=True)
    return table, [*skipped, *problems]
