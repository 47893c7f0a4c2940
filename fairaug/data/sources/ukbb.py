"""The UK Biobank layout (and the built-in phantom, written in it).

<root>/<subject_id>/sa.nii.gz (4D short-axis cine), seg_sa_ED.nii.gz / seg_sa_ES.nii.gz
(canonical labels), la_4ch.nii.gz (optional 4-chamber cine) and one metadata CSV.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fairaug.data.cohort import Problems, finalise, settle_problems
from fairaug.data.metadata import read_metadata
from fairaug.data.phantom.generate import generate, phantom_spec
from fairaug.errors import DataError
from fairaug.schemas import ColumnsConfig

REQUIRED_FILE = "sa.nii.gz"
LONG_AXIS_FILE = "la_4ch.nii.gz"


def read_ukbb_layout(
    root: Path, metadata: Path, columns, on_error: str, age_scheme: str
) -> tuple[pd.DataFrame, Problems]:
    """A cohort stored as <root>/<subject_id>/sa.nii.gz (+ masks) with a metadata CSV."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root is not a folder: {root}")
    table, problems = read_metadata(metadata, columns)
    folders = [root / subject for subject in table.subject_id]
    missing = [not (folder / REQUIRED_FILE).is_file() for folder in folders]
    problems += [(s, f"{REQUIRED_FILE} not found in {d}") for s, d, m in zip(table.subject_id, folders, missing) if m]
    settle_problems(problems, on_error, f"reading the cohort in {root}")
    table = table.assign(
        subject_dir=[str(f) for f in folders],
        reader="nifti",
        image_path=[str(f / REQUIRED_FILE) for f in folders],
        ed_mask_path=[str(f / "seg_sa_ED.nii.gz") for f in folders],
        es_mask_path=[str(f / "seg_sa_ES.nii.gz") for f in folders],
        la_path=[str(f / LONG_AXIS_FILE) if (f / LONG_AXIS_FILE).is_file() else pd.NA for f in folders],
    )
    table = table[[not m for m in missing]]
    return finalise(table, age_scheme, "real", f"{root} ({Path(metadata).name})"), problems


def load_phantom(cfg) -> tuple[pd.DataFrame, Problems]:
    """The phantom as its UK Biobank layout reads, with each subject's heart-failure phenotype
    (healthy, hfref, ischaemic, hfpef) as its diagnosis, like the public datasets' groups."""
    folder = generate(phantom_spec(cfg), Path(cfg.root), workers=int(cfg.workers))
    table, problems = read_ukbb_layout(folder, folder / "metadata.csv", ColumnsConfig(), cfg.on_error, cfg.age_groups)
    phenotype = pd.read_csv(folder / "physiology.csv", dtype={"subject_id": str}).set_index("subject_id").phenotype
    table["diagnosis"] = table["subject_id"].map(phenotype)
    return table, problems


def load_ukbb(cfg) -> tuple[pd.DataFrame, Problems]:
    return read_ukbb_layout(Path(cfg.root), Path(cfg.metadata), cfg.columns, cfg.on_error, cfg.age_groups)
