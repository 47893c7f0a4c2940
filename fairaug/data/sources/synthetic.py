"""Synthetic subjects as cohort rows: a generated dataset is just another source.

A synthetic dataset is a folder with a `manifest.csv` and, per subject, an ED/ES/ED image
PNG and the mask PNG stacked the same way (label values 0-3 per channel), as the
diffusion model's generation writes them. Its rows carry `origin=synthetic` and the `png`
reader (which serves the `edes` view ready-made); they join the training split only, and the
real subjects that shaped them (the generator's training set, each row's mask donor) must
not be held out for validation or test.

manifest.csv columns: subject_id, image, mask (file names relative to the folder), label
(0/1 or healthy / heart failure), sex, age_group, bmi_group ("unknown" where the real data
does not record it); optional vendor and centre; others (prompt, prompt_sex, prompt_age_group,
prompt_bmi_group, source_subject, seed, model_id) are kept for the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from fairaug.data.cohort import (
    COLUMNS,
    LABEL_NAMES,
    PERSON_ATTRIBUTES,
    SITE_ATTRIBUTES,
    UNKNOWN,
    Problems,
    settle_problems,
)
from fairaug.data.groups import BMI_GROUPS
from fairaug.data.metadata import DIAGNOSIS_VALUES, SEX_VALUES, lookup_key
from fairaug.data.plausibility import check_ids, inside
from fairaug.errors import ConfigError, DataError

MANIFEST = "manifest.csv"
GENERATOR_SUBJECTS = "generator_subjects.csv"  # the real subjects the generating model was trained on
REQUIRED = ("subject_id", "image", "mask", "label", *PERSON_ATTRIBUTES)
SITE = SITE_ATTRIBUTES  # optional: written by generation, absent from older manifests
# The age groups fairaug derives: decades ('60s', data.age_groups=decade), ranges ('45-58', tertile).
AGE_GROUP = re.compile(rf"(1[01]|[1-9])?0s|\d{{1,3}}-\d{{1,3}}|{UNKNOWN}")


@dataclass
class TrainingAddition:
    """Subjects that join the training split only, and the real subjects that shaped them."""

    table: pd.DataFrame
    problems: Problems = field(default_factory=list)
    shaped_by: set[str] = field(default_factory=set)
    where: str = ""


def load_synthetic(data_cfg, cohort: pd.DataFrame, seed: int) -> TrainingAddition:
    """data.synthetic.path's subjects (at most data.synthetic.max_samples, drawn with `seed`);
    none without a path."""
    synthetic = data_cfg.synthetic
    if not synthetic.path:
        if not data_cfg.use_real:
            raise ConfigError("data.use_real=false needs data.synthetic.path (nothing else to train on)")
        return TrainingAddition(cohort.iloc[:0])
    folder = Path(synthetic.path)
    table, problems = read_synthetic(folder, synthetic.max_samples, seed, data_cfg.on_error)
    clash = set(table.subject_id) & set(cohort.subject_id)
    if clash:
        raise DataError(f"synthetic subject ids also name real subjects: {sorted(clash)[:5]}")
    return TrainingAddition(table, problems, generator_subjects(folder, table), f"the synthetic data in {folder}")


def read_synthetic(folder: Path, max_samples: int | None, seed: int, on_error: str) -> tuple[pd.DataFrame, Problems]:
    """Cohort rows of a synthetic dataset (at most `max_samples`, drawn with `seed`), with each
    row's mask donor (`source_subject`)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise DataError(f"data.synthetic.path: no {MANIFEST} in {folder}")
    frame = pd.read_csv(manifest, dtype={"subject_id": str, **dict.fromkeys(SITE, str)})
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise DataError(f"{manifest}: missing column(s) {missing}")
    table = pd.DataFrame(
        {
            "subject_id": frame.subject_id,
            "label": frame.label.map(lambda v: DIAGNOSIS_VALUES.get(lookup_key(v))),
            "sex": frame.sex.map(_sex),
            "age": np.nan,
            "bmi": np.nan,
            "age_group": frame.age_group.astype(str),
            "bmi_group": frame.bmi_group.astype(str),
            "origin": "synthetic",
            "subject_dir": str(folder),
            "ed_frame": pd.NA,
            "es_frame": pd.NA,
            "reader": "png",
            "image_path": [_entry(folder, name) for name in frame.image],
            "ed_mask_path": [_entry(folder, name) for name in frame["mask"]],
            "source_subject": frame["source_subject"].astype(str) if "source_subject" in frame else pd.NA,
        }
    )
    problems, identified = check_ids(frame.subject_id)
    for i, row in table[identified].iterrows():
        reasons = []
        if pd.isna(row.label):
            reasons.append(f"unknown label {frame.label.iloc[i]!r}")
        if pd.isna(row.sex):
            reasons.append(f"unknown sex {frame.sex.iloc[i]!r}")
        if not AGE_GROUP.fullmatch(row.age_group):
            reasons.append(
                f"unknown age_group {row.age_group!r} (expected a decade such as '60s', a range such as "
                f"'45-58', or '{UNKNOWN}')"
            )
        if row.bmi_group not in (*BMI_GROUPS, UNKNOWN):
            reasons.append(f"unknown bmi_group {row.bmi_group!r} (expected one of {[*BMI_GROUPS, UNKNOWN]})")
        for column, entry, path in (
            ("image", frame.image.iloc[i], row.image_path),
            ("mask", frame["mask"].iloc[i], row.ed_mask_path),
        ):
            if pd.isna(path):
                reasons.append(f"{column} {entry!r} is not a path inside {folder}")
            elif not Path(path).is_file():
                reasons.append(f"{Path(path).name} not found")
        if reasons:
            problems.append((row.subject_id, "; ".join(reasons)))
    problems = [(subject, f"{MANIFEST}: {reason}") for subject, reason in problems]
    settle_problems(problems, on_error, f"reading the synthetic dataset in {folder}")
    table = table[identified & ~table.subject_id.isin({s for s, _ in problems})]
    if max_samples is not None and len(table) > max_samples:
        table = table.sample(int(max_samples), random_state=seed).sort_index()
    table = table.assign(label=table.label.astype(int))
    site = {c: frame.loc[table.index, c].fillna(UNKNOWN).astype(str) if c in frame else UNKNOWN for c in SITE}
    table = table.assign(**site, diagnosis=table.label.map(LABEL_NAMES), es_mask_path=table.ed_mask_path)
    columns = [*COLUMNS, "source_subject"]
    return table.reindex(columns=columns).reset_index(drop=True), problems


def _sex(value):
    """female/male, UNKNOWN where the manifest says so, None (an error) for anything else."""
    if str(value).strip().lower() == UNKNOWN:
        return UNKNOWN
    return SEX_VALUES.get(lookup_key(value))


def generator_subjects(folder: Path, table: pd.DataFrame) -> set[str]:
    """Real subjects that shaped these synthetic ones: the generator's training set (when the
    dataset records it) and every manifest row's source subject."""
    subjects = set(table.get("source_subject", pd.Series(dtype=str)).dropna().astype(str))
    recorded = Path(folder) / GENERATOR_SUBJECTS
    if recorded.is_file():
        subjects |= set(pd.read_csv(recorded, dtype={"subject_id": str}).subject_id)
    return subjects


def read_png(path: Path, subject: str, what: str) -> np.ndarray:
    """(3, H, W) uint8 from an RGB (or greyscale, repeated) PNG."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"subject {subject}: cannot read {what} {path} ({error})") from error
    return np.ascontiguousarray(array.transpose(2, 0, 1))


class PngReader:
    """A subject stored as its edes view: an ED/ES/ED image PNG and the mask PNG stacked the
    same way. It has no cine, so it serves that view ready-made, resized."""

    ready_view = "edes"

    def files(self, row) -> list[Path]:
        return [Path(row.image_path), Path(row.ed_mask_path)]

    def view(self, row: pd.Series, input_cfg) -> tuple[np.ndarray, np.ndarray]:
        if input_cfg.name != "edes":
            raise ConfigError(f"synthetic data provides the edes view only, not input={input_cfg.name}")
        return _edes(row, input_cfg)


def _edes(row: pd.Series, input_cfg) -> tuple[np.ndarray, np.ndarray]:
    """The image in [0, 1] and the masks, resized to input.size."""
    import torch
    import torch.nn.functional as F

    image = read_png(Path(row.image_path), row.subject_id, "image")
    masks = read_png(Path(row.ed_mask_path), row.subject_id, "mask")
    if image.shape != masks.shape:
        raise DataError(f"subject {row.subject_id}: image {image.shape[1:]} and mask {masks.shape[1:]} sizes differ")
    if masks.max() > 3:
        raise DataError(f"subject {row.subject_id}: mask values must be labels 0-3, found {int(masks.max())}")
    size = (int(input_cfg.size), int(input_cfg.size))
    pixels = torch.from_numpy(image.astype(np.float32) / 255.0)[None]
    labels = torch.from_numpy(masks.astype(np.float32))[None]
    resized = F.interpolate(pixels, size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    labels = F.interpolate(labels, size=size, mode="nearest-exact")[0]
    return resized.clamp(0, 1).numpy(), labels.numpy().astype(np.uint8)


def _entry(folder: Path, name) -> str | None:
    """A manifest file entry as a path inside the dataset folder; None when it points elsewhere."""
    path = inside(folder, str(name))
    return None if path is None else str(path)
