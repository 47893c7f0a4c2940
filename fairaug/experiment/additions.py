"""Training additions that are not sampled from the diffusion model, written in the synthetic
dataset's layout (manifest.csv, ED/ES/ED image and mask PNGs at the generator's size) so that
every arm's additions are read, resized and sampled the same way:

- new real subjects from the built-in cohort's generator: of given cells (the oracle) or
  drawn from the population (the oracle's control);
- classical augmentation of real training subjects of the planned cells.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from fairaug.data.cache import build_view_cache
from fairaug.data.cohort import PERSON_ATTRIBUTES, SITE_ATTRIBUTES
from fairaug.data.datamodule import CachedViewDataset
from fairaug.data.phantom.physiology import cells_from_counts
from fairaug.data.sources import load_cohort
from fairaug.diffusion.generator import write_manifest, write_subject
from fairaug.diffusion.planning import CELL, subject_seeds
from fairaug.errors import DataError
from fairaug.io import build_once, publish, staging_folder, write_csv

log = logging.getLogger(__name__)
COMPLETE = "manifest.csv"


def _manifest_rows(subjects: pd.DataFrame, prefix: str, folder: Path) -> pd.DataFrame:
    """Manifest rows for `subjects` (label and attributes kept, ids `<prefix>000000`...) with
    their PNG file names; the image and mask folders are created in `folder`."""
    plan = subjects[["label", *PERSON_ATTRIBUTES]].reset_index(drop=True)
    for column in SITE_ATTRIBUTES:
        plan[column] = subjects[column].to_numpy() if column in subjects else "unknown"
    plan.insert(0, "subject_id", [f"{prefix}{i:06d}" for i in range(len(plan))])
    plan["image"] = [f"images/{s}.png" for s in plan.subject_id]
    plan["mask"] = [f"masks/{s}.png" for s in plan.subject_id]
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    return plan


def _write(folder: Path, cohort: pd.DataFrame, view_cfg, cache_dir: Path, prefix: str, note: str) -> None:
    """The cohort's subjects, in `view_cfg` (edes with masks), as a synthetic-layout dataset."""
    cache = build_view_cache(cohort, view_cfg, cache_dir, "raise")
    views = CachedViewDataset(cache, cohort)
    plan = _manifest_rows(cohort, prefix, folder)
    plan["origin_subject"] = cohort.subject_id.to_numpy()  # the drawn subject, for the record
    plan["note"] = note
    for i, row in enumerate(plan.itertuples()):
        item = views[i]
        write_subject(folder, row.image, row.mask, item["image"], item["masks"])
    write_manifest(plan, folder)


def _drawn(data_cfg, changes: dict, what: str) -> pd.DataFrame:
    data = OmegaConf.merge(data_cfg, changes)
    cohort, problems = load_cohort(data)
    if problems:
        raise DataError(f"{what}: {len(problems)} drawn subject(s) failed the cohort checks, e.g. {problems[0]}")
    return cohort


def draw_real_subjects(
    folder: Path, data_cfg, view_cfg, seed: int, counts: pd.DataFrame | None = None, n: int = 0
) -> Path:
    """New subjects from the built-in cohort's generator at `seed`: exactly the cells and counts
    of a planner table (`counts`, column `generate`: the oracle), or else `n` subjects of the
    population (the oracle's control), into `folder` unless it is complete.

    The drawn cohort (its cine NIfTIs, about 5 MB a subject) and its views are built in a scratch
    folder beside `folder` and deleted once the PNGs are written: kept in the phantom cache, a
    design's draws filled about 21 GB per training set."""
    if counts is not None:
        cells = cells_from_counts(counts)
        changes = {"seed": seed, "composition": {"cells": cells}}
        prefix, note = "O", "oracle: new real subjects of the planned cells"
    else:
        changes = {"seed": seed, "n_subjects": n}
        prefix, note = "C", "oracle control: new real subjects of the population"

    def build() -> None:
        staging, scratch = staging_folder(folder), staging_folder(folder)
        try:
            drawn = {**changes, "root": str(scratch / "cohort")}
            cohort = _drawn(data_cfg, drawn, f"drawing new subjects into {folder}")
            _write(staging, cohort, view_cfg, scratch / "views", prefix, note)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if scratch.exists():
                log.warning("Could not delete the drawn cohort in %s; it is not read again", scratch)
        publish(staging, folder, COMPLETE)

    folder.parent.mkdir(parents=True, exist_ok=True)
    build_once(folder, COMPLETE, build)
    return folder


def augment_real_subjects(folder: Path, training: CachedViewDataset, counts: pd.DataFrame, seed: int, augment) -> Path:
    """Classical augmentation up to the planner's counts: each planned subject is a random real
    training subject of its cell (planned cells always hold one), augmented by `augment`
    (images, masks, seeds -> images, masks)."""
    table = training.table

    def build() -> None:
        staging = staging_folder(folder)
        rng = np.random.default_rng(seed)
        rows = []
        for cell in counts[counts.generate > 0].itertuples():
            same = table.index[(table[CELL] == [getattr(cell, c) for c in CELL]).all(axis=1)]
            if not len(same):
                raise DataError(f"classical augmentation: no real training subject in the planned cell {cell}")
            rows += list(rng.choice(same.to_numpy(), cell.generate))
        plan = _manifest_rows(table.loc[rows], "A", staging)
        plan["source_subject"] = table.subject_id.loc[rows].to_numpy()
        plan["seed"] = subject_seeds(seed, len(plan))
        for start in range(0, len(plan), 64):
            chunk = plan.iloc[start : start + 64]
            items = [training[int(i)] for i in rows[start : start + 64]]
            images = torch.stack([item["image"] for item in items])
            masks = torch.stack([item["masks"] for item in items])
            images, masks = augment(images, masks, list(chunk.seed))
            for row, image, mask in zip(chunk.itertuples(), images, masks):
                write_subject(staging, row.image, row.mask, image, mask)
        write_manifest(plan, staging)
        write_csv(table[["subject_id"]], staging / "generator_subjects.csv")
        publish(staging, folder, COMPLETE)

    folder.parent.mkdir(parents=True, exist_ok=True)
    build_once(folder, COMPLETE, build)
    return folder
