"""The LightningDataModule: cohort -> split -> cached view -> loaders."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from fairaug.data.cache import ViewCache, build_view_cache
from fairaug.data.samplers import build_sampler, check_sampler
from fairaug.data.sources import load_cohort
from fairaug.data.splits import SPLITS, make_split
from fairaug.data.synthetic import generator_subjects, read_synthetic
from fairaug.data.views import check_view_available
from fairaug.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class CachedViewDataset(Dataset):
    """Items of one split, read from the memory-mapped view cache."""

    def __init__(self, cache: ViewCache, table: pd.DataFrame):
        self.cache = cache
        self.table = table.reset_index(drop=True)
        self.rows = cache.rows(self.table.subject_id)
        self.labels = self.table.label.to_numpy(dtype=np.float32)
        self._images = self._masks = None  # opened lazily, once per worker process

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> dict:
        if self._images is None:
            self._images = self.cache.images()
        image = torch.from_numpy(self._images[self.rows[i]].astype(np.float32))
        item = {"image": image, "label": torch.tensor(self.labels[i]), "index": i}
        if self.cache.has_masks:
            if self._masks is None:
                self._masks = self.cache.masks()
            item["masks"] = torch.from_numpy(np.array(self._masks[self.rows[i]]))
        return item


class CohortDataModule(L.LightningDataModule):
    def __init__(self, cfg):
        super().__init__()
        check_sampler(cfg.sampler)  # before the cohort is generated or cached, not when the loader starts
        self.cfg = cfg
        self.cohort: pd.DataFrame | None = None
        self.split: pd.DataFrame | None = None
        self.cache: ViewCache | None = None
        self.synthetic: pd.DataFrame | None = None
        self.skipped: list[tuple[str, str]] = []  # (subject_id, reason) under data.on_error=skip
        self.datasets: dict[str, CachedViewDataset] = {}

    def prepare(self) -> None:
        """Load the cohort, split it and build (or reuse) the view cache. Idempotent."""
        if self.datasets:
            return
        cfg = self.cfg
        cohort, problems = load_cohort(cfg.data)
        check_view_available(cohort, cfg.input, cfg.data.name)
        synthetic, synthetic_problems = self._synthetic(cohort)
        rows = pd.concat([cohort, synthetic], ignore_index=True) if len(synthetic) else cohort
        self.cache = build_view_cache(rows, cfg.input, Path(cfg.paths.cache_dir) / "views", cfg.data.on_error)
        self.skipped = [*problems, *synthetic_problems, *self.cache.skipped]
        cached = set(self.cache.index.subject_id)
        self.cohort = cohort[cohort.subject_id.isin(cached)].reset_index(drop=True)
        self.synthetic = synthetic[synthetic.subject_id.isin(cached)].reset_index(drop=True)
        fold = None if cfg.fold is None else int(cfg.fold)
        self.split = make_split(self.cohort, cfg.split, int(cfg.split.seed), fold)
        if len(synthetic):
            self._check_no_leak()
        for name in SPLITS:
            ids = set(self.split.subject_id[self.split.split == name])
            table = self.cohort[self.cohort.subject_id.isin(ids)]
            if name == "train":  # synthetic subjects only ever join the training split
                table = pd.concat([table if cfg.data.use_real else table.iloc[:0], self.synthetic], ignore_index=True)
            self.datasets[name] = CachedViewDataset(self.cache, table)
        log.info("Split sizes: %s (synthetic in train: %d)", {k: len(v) for k, v in self.datasets.items()},
                 len(self.synthetic))

    def _check_no_leak(self) -> None:
        """Synthetic subjects made from (a generator trained on) validation or test subjects
        would leak them into training."""
        shaped_by = generator_subjects(Path(self.cfg.data.synthetic.path), self.synthetic)
        held_out = set(self.split.subject_id[self.split.split != "train"])
        leaked = sorted(shaped_by & held_out)
        if leaked:
            raise DataError(f"{len(leaked)} validation/test subject(s) (e.g. {leaked[:3]}) shaped the synthetic "
                            f"data in {self.cfg.data.synthetic.path}: use the generator's split (split.seed and "
                            "fold of its controlnet_train run)")

    def _synthetic(self, cohort: pd.DataFrame) -> tuple[pd.DataFrame, list]:
        """The synthetic subjects of data.synthetic.path, and the ones left out with reasons."""
        data = self.cfg.data
        if not data.synthetic.path:
            if not data.use_real:
                raise ConfigError("data.use_real=false needs data.synthetic.path (nothing else to train on)")
            return cohort.iloc[:0], []
        table, problems = read_synthetic(Path(data.synthetic.path), data.synthetic.max_samples, int(self.cfg.seed),
                                         data.on_error)
        clash = set(table.subject_id) & set(cohort.subject_id)
        if clash:
            raise DataError(f"synthetic subject ids also name real subjects: {sorted(clash)[:5]}")
        return table, problems

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.cache.shape

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def _loader(self, name: str, **kwargs) -> DataLoader:
        loader = self.cfg.loader
        return DataLoader(self.datasets[name], batch_size=int(loader.batch_size), num_workers=int(loader.num_workers),
                          persistent_workers=int(loader.num_workers) > 0, **kwargs)

    def train_dataloader(self) -> DataLoader:
        sampler = build_sampler(self.cfg.sampler, self.datasets["train"].table, int(self.cfg.seed))
        # A last batch of one sample would break batch norm.
        drop_last = len(self.datasets["train"]) > int(self.cfg.loader.batch_size)
        return self._loader("train", sampler=sampler, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
