"""Where cohorts come from: one loader per `data=` choice, each returning the cohort table
(canonical columns, one row per subject) and the subjects it skipped with their reasons."""

from __future__ import annotations

import pandas as pd

from fairaug.data.cohort import Problems
from fairaug.data.sources.acdc import load_acdc
from fairaug.data.sources.mnms import load_mnms
from fairaug.data.sources.sunnybrook import load_sunnybrook
from fairaug.data.sources.ukbb import load_phantom, load_ukbb
from fairaug.errors import ConfigError

SOURCES = {"phantom": load_phantom, "ukbb": load_ukbb, "acdc": load_acdc, "mnms": load_mnms,
           "sunnybrook": load_sunnybrook}


def load_cohort(data_cfg) -> tuple[pd.DataFrame, Problems]:
    if data_cfg.name not in SOURCES:
        raise ConfigError(f"unknown data source '{data_cfg.name}'; known: {sorted(SOURCES)}")
    return SOURCES[data_cfg.name](data_cfg)
