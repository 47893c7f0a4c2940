"""Synthetic subjects as cohort rows: a generated dataset is just another source.

A synthetic dataset is a folder with a `manifest.csv` and, per subject, an ED/ES/ED image
PNG and the mask PNG stacked the same way (label values 0-3 per channel), as the
diffusion model's generation writes them. Its rows carry `origin=synthetic`, join the
training split only, and serve the `edes` view.

manifest.csv columns: subject_id, image, mask (file names relative to the folder), label
(0/1 or healthy / heart failure), sex, age_group, bmi_group ("unknown" where the real data
does not record it); optional vendor and centre; others (prompt, source_subject, seed,
model_id) are kept for the record.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from fairaug.data.cohort import COLUMNS, LABEL_NAMES, UNKNOWN, Problems, settle_problems
from fairaug.data.groups import BMI_GROUPS
from fairaug.data.metadata import DIAGNOSIS_VALUES, SEX_VALUES, lookup_key
from fairaug.data.plausibility import check_ids, inside
from fairaug.errors import ConfigError, DataError

MANIFEST = "manifest.csv"
GENERATOR_SUBJECTS = "generator_subjects.csv"  # the real subjects the generating model was trained on
REQUIRED = ("subject_id", "image", "mask", "label", "sex", "age_group", "bmi_group")
SITE = ("vendor", "centre")  # optional: written by generation, absent from older manifests
# The age groups fairaug derives: decades ('60s', data.age_groups=decade), ranges ('45-58', tertile).
AGE_GROUP = re.compile(rf"(1[01]|[1-9])?0s|\d{{1,3}}-\d{{1,3}}|{UNKNOWN}")


def read_synthetic(folder: Path, max_samples: int | None, seed: int, on_error: str) -> tuple[pd.DataFrame, Problems]:
    """Cohort rows of a synthetic dataset (at most `max_samples`, drawn with `seed`)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise DataError(f"data.synthetic.path: no {MANIFEST} in {folder}")
    frame = pd.read_csv(manifest, dtype={"subject_id": str, **dict.fromkeys(SITE, str)})
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise DataError(f"{manifest}: missing column(s) {missing}")
    table = pd.DataFrame({
        "subject_id": frame.subject_id, "label": frame.label.map(lambda v: DIAGNOSIS_VALUES.get(lookup_key(v))),
        "sex": frame.sex.map(_sex), "age": np.nan, "bmi": np.nan,
        "age_group": frame.age_group.astype(str), "bmi_group": frame.bmi_group.astype(str), "origin": "synthetic",
        "subject_dir": str(folder), "ed_frame": pd.NA, "es_frame": pd.NA,
        "image_file": [_entry(folder, name) for name in frame.image],
        "mask_file": [_entry(folder, name) for name in frame["mask"]],
        "source_subject": frame["source_subject"].astype(str) if "source_subject" in frame else pd.NA,
    })
    problems, identified = check_ids(frame.subject_id)
    for i, row in table[identified].iterrows():
        reasons = []
        if pd.isna(row.label):
            reasons.append(f"unknown label {frame.label.iloc[i]!r}")
        if pd.isna(row.sex):
            reasons.append(f"unknown sex {frame.sex.iloc[i]!r}")
        if not AGE_GROUP.fullmatch(row.age_group):
            reasons.append(f"unknown age_group {row.age_group!r} (expected a decade such as '60s', a range such as "
                           f"'45-58', or '{UNKNOWN}')")
        if row.bmi_group not in (*BMI_GROUPS, UNKNOWN):
            reasons.append(f"unknown bmi_group {row.bmi_group!r} (expected one of {[*BMI_GROUPS, UNKNOWN]})")
        for column, entry in (("image", frame.image.iloc[i]), ("mask", frame["mask"].iloc[i])):
            path = row[f"{column}_file"]
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
    table = table.assign(**site, diagnosis=table.label.map(LABEL_NAMES))
    columns = [*COLUMNS, "image_file", "mask_file", "source_subject"]
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


def synthetic_edes(row: pd.Series, input_cfg) -> tuple[np.ndarray, np.ndarray]:
    """The edes view of a synthetic subject: its image in [0, 1] and its masks, resized."""
    import torch
    import torch.nn.functional as F

    if input_cfg.name != "edes":
        raise ConfigError(f"synthetic data provides the edes view only, not input={input_cfg.name}")
    image = read_png(Path(row.image_file), row.subject_id, "image")
    masks = read_png(Path(row.mask_file), row.subject_id, "mask")
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
