"""Where cohorts come from. Each source returns the cohort table and its skipped subjects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fairaug.config import ColumnsConfig
from fairaug.data.cohort import Problems, check_on_error, finalise, settle_problems
from fairaug.data.metadata import read_metadata
from fairaug.data.phantom.generate import generate, phantom_spec
from fairaug.errors import ConfigError, DataError

REQUIRED_FILE = "sa.nii.gz"


def read_ukbb_layout(root: Path, metadata: Path, columns, on_error: str, age_scheme: str
                     ) -> tuple[pd.DataFrame, Problems]:
    """A cohort stored as <root>/<subject_id>/sa.nii.gz (+ masks) with a metadata CSV."""
    check_on_error(on_error)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root is not a folder: {root}")
    table, problems = read_metadata(metadata, columns)
    table["subject_dir"] = [str(root / subject) for subject in table.subject_id]
    missing = [not (Path(d) / REQUIRED_FILE).is_file() for d in table.subject_dir]
    problems += [(s, f"{REQUIRED_FILE} not found in {d}")
                 for s, d, m in zip(table.subject_id, table.subject_dir, missing) if m]
    settle_problems(problems, on_error, f"reading the cohort in {root}")
    table = table[[not m for m in missing]]
    return finalise(table, age_scheme, origin="real"), problems


def load_phantom(cfg) -> tuple[pd.DataFrame, Problems]:
    folder = generate(phantom_spec(cfg), Path(cfg.root), workers=int(cfg.workers))
    return read_ukbb_layout(folder, folder / "metadata.csv", ColumnsConfig(), cfg.on_error, cfg.age_groups)


def load_ukbb(cfg) -> tuple[pd.DataFrame, Problems]:
    return read_ukbb_layout(Path(cfg.root), Path(cfg.metadata), cfg.columns, cfg.on_error, cfg.age_groups)


SOURCES = {"phantom": load_phantom, "ukbb": load_ukbb}


def load_cohort(data_cfg) -> tuple[pd.DataFrame, Problems]:
    if data_cfg.name not in SOURCES:
        raise ConfigError(f"unknown data source '{data_cfg.name}'; known: {sorted(SOURCES)}")
    return SOURCES[data_cfg.name](data_cfg)
