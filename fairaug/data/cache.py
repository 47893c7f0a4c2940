"""Preprocessed views on disk, memory-mapped, so that epochs never decode NIfTI.

A cache folder is keyed by the view config and by the identity of every input file
(path, size, modification time), so a changed file or setting builds a new cache and an
unchanged one is reused by every run and every job of a sweep. Subjects are processed
one at a time and appended to a flat float16 file: preparing a cohort never holds it in
memory. The folder appears under its final name only once complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from tqdm import tqdm

from fairaug.data import nifti
from fairaug.data.cohort import Problems, settle_problems
from fairaug.data.readers import NIFTI_READERS, reader_for
from fairaug.data.views import ViewBuilder
from fairaug.errors import ConfigError, DataError
from fairaug.io import build_once, publish, staging_folder
from fairaug.processes import worker_pool

log = logging.getLogger(__name__)

# Bumped whenever what a view holds changes for the same files (2: volume slices base to apex).
CACHE_VERSION = 2
IMAGE_DTYPE = np.float16


@dataclass
class ViewCache:
    folder: Path
    index: pd.DataFrame  # subject_id -> row
    shape: tuple[int, ...]
    skipped: Problems

    @property
    def has_masks(self) -> bool:
        return (self.folder / "masks.bin").exists()

    def images(self) -> np.memmap:
        return np.memmap(self.folder / "images.bin", dtype=IMAGE_DTYPE, mode="r", shape=(len(self.index), *self.shape))

    def masks(self) -> np.memmap:
        return np.memmap(self.folder / "masks.bin", dtype=np.uint8, mode="r", shape=(len(self.index), *self.shape))

    def rows(self, subject_ids) -> np.ndarray:
        lookup = dict(zip(self.index.subject_id, self.index.row))
        return np.array([lookup[s] for s in subject_ids], dtype=np.int64)

    @classmethod
    def open(cls, folder: Path) -> "ViewCache":
        meta = json.loads((folder / "meta.json").read_text())
        index = pd.read_csv(folder / "index.csv", dtype={"subject_id": str})
        return cls(folder, index, tuple(meta["shape"]), [tuple(p) for p in meta["skipped"]])


def _file_identity(row) -> list:
    identity = []
    for path in reader_for(row).files(row):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.exists():
                stat = file.stat()
                identity.append([str(file.relative_to(path.parent)), stat.st_size, stat.st_mtime_ns])
    return identity


def cache_key(cohort: pd.DataFrame, input_cfg) -> str:
    view = OmegaConf.to_container(input_cfg, resolve=True)
    view.pop("workers", None)
    subjects = [
        [
            r.subject_id,
            str(r.get("reader")),
            str(Path(r.subject_dir).resolve()),
            str(r.ed_frame),
            str(r.es_frame),
            _file_identity(r),
        ]
        for _, r in cohort.iterrows()
    ]
    blob = json.dumps({"version": CACHE_VERSION, "view": view, "subjects": subjects}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _build_one(job):
    builder, row = job
    try:
        image, masks = builder(row)
        if not np.isfinite(image).all():  # the readers refuse NaN/inf voxels; a cached view must never hold one
            raise DataError(f"subject {row.subject_id}: its {builder.cfg.name} view holds NaN or infinite values")
        return row.subject_id, image, masks, None
    except DataError as error:
        return row.subject_id, None, None, str(error)
    except Exception as error:  # noqa: BLE001 - reported with the subject that caused it
        return row.subject_id, None, None, f"subject {row.subject_id}: {type(error).__name__}: {error}"


def check_cine_lengths(cohort: pd.DataFrame, input_cfg) -> None:
    """Cines of different lengths cannot share one tensor shape unless input.frames resamples them."""
    if input_cfg.name != "cine" or input_cfg.frames:
        return
    column = "la_path" if input_cfg.view == "la_4ch" else "image_path"
    lengths = {}
    for row in cohort.itertuples():
        path = getattr(row, column)
        if getattr(row, "reader", "nifti") not in NIFTI_READERS or pd.isna(path):
            continue  # other readers check their own frames; a missing file is reported per subject
        try:
            shape = nifti.shape(Path(path), row.subject_id)
        except DataError:
            continue  # unreadable files are reported, per subject, by the view builder
        if len(shape) == 4:  # a short-axis file of another shape is refused, per subject, by the reader
            lengths.setdefault(shape[3], []).append(row.subject_id)
    if len(lengths) > 1:
        found = ", ".join(f"{n} frames: {len(s)} subjects (e.g. {s[0]})" for n, s in sorted(lengths.items()))
        raise ConfigError(
            f"cine lengths differ across the cohort ({found}); set input.frames=<n> to resample every cine to n frames"
        )


def _write(cohort: pd.DataFrame, builder: ViewBuilder, staging: Path, workers: int) -> ViewCache:
    jobs = [(builder, row) for _, row in cohort.iterrows()]
    index, skipped, shape = [], [], None
    pool = worker_pool(workers) if workers > 1 and len(jobs) > 1 else None
    results = pool.map(_build_one, jobs, chunksize=4) if pool else map(_build_one, jobs)
    try:
        with open(staging / "images.bin", "wb") as images, open(staging / "masks.bin", "wb") as masks:
            for subject, image, mask, error in tqdm(
                results, total=len(jobs), desc=f"{builder.cfg.name} view", unit="subject"
            ):
                if error is None and shape is None:
                    shape = image.shape
                if error is None and image.shape != shape:
                    error = f"subject {subject}: view shape {image.shape} differs from {shape}"
                if error is not None:
                    skipped.append((subject, error.removeprefix(f"subject {subject}: ")))
                    continue
                images.write(image.astype(IMAGE_DTYPE).tobytes())
                if mask is not None:
                    masks.write(mask.tobytes())
                index.append((subject, len(index)))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if not builder.has_masks:
        (staging / "masks.bin").unlink()
    return ViewCache(staging, pd.DataFrame(index, columns=["subject_id", "row"]), shape or (), skipped)


def _build(cohort: pd.DataFrame, input_cfg, folder: Path, on_error: str) -> None:
    check_cine_lengths(cohort, input_cfg)
    staging = staging_folder(folder)
    staging.mkdir()
    try:
        log.info("Preparing the %s view of %d subjects into %s", input_cfg.name, len(cohort), folder)
        built = _write(cohort, ViewBuilder(input_cfg), staging, int(input_cfg.workers))
        if on_error == "raise":
            settle_problems(built.skipped, on_error, f"preparing the {input_cfg.name} view")
        if built.index.empty:
            settle_problems(built.skipped, "raise", f"preparing the {input_cfg.name} view")
        built.index.to_csv(staging / "index.csv", index=False)
        meta = {
            "shape": list(built.shape),
            "view": OmegaConf.to_container(input_cfg, resolve=True),
            "skipped": built.skipped,
            "dtype": np.dtype(IMAGE_DTYPE).name,
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=2))
        publish(staging, folder, "meta.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_view_cache(cohort: pd.DataFrame, input_cfg, cache_dir: Path, on_error: str) -> ViewCache:
    """Open the cache for this cohort and view, building it first if needed."""
    folder = Path(cache_dir) / f"{input_cfg.name}-{cache_key(cohort, input_cfg)}"
    build_once(folder, "meta.json", lambda: _build(cohort, input_cfg, folder, on_error))
    cache = ViewCache.open(folder)
    settle_problems(cache.skipped, on_error, f"preparing the {input_cfg.name} view")
    return cache
