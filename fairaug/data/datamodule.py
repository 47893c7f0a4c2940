"""The LightningDataModule: cohort -> split -> cached view -> loaders."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch.utils.data import DataLoader, Dataset

from fairaug.config import dotted_leaves
from fairaug.data.cache import ViewCache, build_view_cache
from fairaug.data.samplers import build_sampler, check_sampler
from fairaug.data.sources import cohort_identity, load_cohort
from fairaug.data.sources.synthetic import TrainingAddition, load_synthetic
from fairaug.data.splits import SPLITS, external_split, make_split
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
    """The cohort of `data` (plus any subjects that only join training, e.g. data.synthetic),
    split by `split`, cached in the `view` (an input group), loaded with `sampler` and `loader`
    (None for both: no loaders, e.g. for the ControlNet, which batches the views itself)."""

    def __init__(self, data, view, split, sampler, loader, seed: int, fold: int | None, cache_dir: Path):
        super().__init__()
        if sampler is not None:
            check_sampler(sampler)  # before the cohort is generated or cached, not when the loader starts
        self.data_cfg, self.view_cfg, self.split_cfg, self.sampler_cfg, self.loader_cfg = (
            data,
            view,
            split,
            sampler,
            loader,
        )
        self.seed, self.fold, self.cache_dir = int(seed), None if fold is None else int(fold), Path(cache_dir)
        self.cohort: pd.DataFrame | None = None
        self.split: pd.DataFrame | None = None
        self.cache: ViewCache | None = None
        self.added: pd.DataFrame | None = None
        self.skipped: list[tuple[str, str]] = []  # (subject_id, reason) under data.on_error=skip
        self.datasets: dict[str, CachedViewDataset] = {}
        self._sampler = None
        self._sampler_state = None  # a resumed run's sampler continues where the checkpoint left it

    @classmethod
    def from_config(cls, cfg, loaders: bool = True) -> CohortDataModule:
        """`loaders=False`: the cohort, its split and views only; the sampler and loader settings unread."""
        return cls(
            cfg.data,
            cfg.input,
            cfg.split,
            cfg.sampler if loaders else None,
            cfg.loader if loaders else None,
            int(cfg.seed),
            cfg.fold,
            Path(cfg.paths.cache_dir) / "views",
        )

    def prepare(self) -> None:
        """Load the cohort, split it and build (or reuse) the view cache. Idempotent."""
        if self.datasets:
            return
        if self.split_cfg.name == "external" and self.fold is not None:  # before any data is read
            raise ConfigError(
                f"fold={self.fold} makes a k-fold split; split.name=external scores other cohorts instead"
            )
        data = self.data_cfg
        cohort, problems = load_cohort(data)
        check_view_available(cohort, self.view_cfg, data.name)
        added = load_synthetic(data, cohort, self.seed)
        rows = pd.concat([cohort, added.table], ignore_index=True) if len(added.table) else cohort
        self.cache = build_view_cache(rows, self.view_cfg, self.cache_dir, data.on_error)
        self.skipped = [*problems, *added.problems, *self.cache.skipped]
        cached = set(self.cache.index.subject_id)
        self.cohort = cohort[cohort.subject_id.isin(cached)].reset_index(drop=True)
        self.added = added.table[added.table.subject_id.isin(cached)].reset_index(drop=True)
        caches = dict.fromkeys(SPLITS, self.cache)
        if self.split_cfg.name == "external":
            scored = {name: self._external(name) for name in ("val", "test")}
            caches.update({name: cache for name, (_, cache) in scored.items()})
            parts = {"train": self.cohort, **{name: table for name, (table, _) in scored.items()}}
            self.split = external_split(parts, self.split_cfg, int(self.split_cfg.seed))
            self.cohort = pd.concat(parts.values(), ignore_index=True)
        else:
            self.split = make_split(self.cohort, self.split_cfg, int(self.split_cfg.seed), self.fold)
        _check_held_out(self.split, added)
        for name in SPLITS:
            ids = set(self.split.subject_id[self.split.split == name])
            table = self.cohort[self.cohort.subject_id.isin(ids)]
            if name == "train":  # added subjects only ever join the training split
                table = pd.concat([table if data.use_real else table.iloc[:0], self.added], ignore_index=True)
            self.datasets[name] = CachedViewDataset(caches[name], table)
        log.info("Split sizes: %s (added to train: %d)", {k: len(v) for k, v in self.datasets.items()}, len(self.added))

    def _external(self, name: str) -> tuple[pd.DataFrame, ViewCache]:
        """split=external's `name` cohort (ids prefixed with the split's name: cohorts of one
        source may reuse ids) and its view cache, which every run scoring this cohort shares."""
        data = external_data(self.data_cfg, self.split_cfg, name)
        cohort, problems = load_cohort(data)
        cohort = cohort.assign(subject_id=f"{name}-" + cohort.subject_id.astype(str))
        cache = build_view_cache(cohort, self.view_cfg, self.cache_dir, data.on_error)
        self.skipped += [*problems, *cache.skipped]
        return cohort[cohort.subject_id.isin(set(cache.index.subject_id))].reset_index(drop=True), cache

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.cache.shape

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def _loader(self, name: str, **kwargs) -> DataLoader:
        loader = self.loader_cfg
        return DataLoader(
            self.datasets[name],
            batch_size=int(loader.batch_size),
            num_workers=int(loader.num_workers),
            persistent_workers=int(loader.num_workers) > 0,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        sampler = build_sampler(self.sampler_cfg, self.datasets["train"].table, self.seed)
        if self._sampler_state is not None:  # once: a reloaded loader later continues, it does not repeat
            sampler.generator.set_state(self._sampler_state)
            self._sampler_state = None
        self._sampler = sampler
        # A last batch of one sample would break batch norm.
        drop_last = len(self.datasets["train"]) > int(self.loader_cfg.batch_size)
        return self._loader("train", sampler=sampler, drop_last=drop_last)

    def state_dict(self) -> dict:
        """What a checkpoint keeps of the data: the training sampler's generator state."""
        return {"sampler_generator": self._sampler.generator.get_state()} if self._sampler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        self._sampler_state = state.get("sampler_generator")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


def external_data(data_cfg, split_cfg, name: str):
    """`data` with split.<name>'s changes: the cohort split=external validates or tests on."""
    changes = split_cfg.get(name)
    if changes is None:
        raise ConfigError("split.name=external needs split.val and split.test: the changes to `data` that make them")
    data = data_cfg.copy()
    try:  # leaf by leaf: OmegaConf cannot merge a nested dict into a typed Dict[str, Dict[str, float]]
        for key, value in dotted_leaves(OmegaConf.to_container(changes, resolve=True)):
            OmegaConf.update(data, key, value, merge=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"split.{name}={OmegaConf.to_container(changes)}: {error}") from error
    if cohort_identity(data) == cohort_identity(data_cfg):
        raise ConfigError(
            f"split.{name} makes the training cohort itself; change its seed or source (e.g. split.{name}.seed)"
        )
    return data


def _check_held_out(split: pd.DataFrame, added: TrainingAddition) -> None:
    """Subjects that shaped the added training data (a generator's training set, mask donors)
    must not be held out: validation or test results would see them through training."""
    held_out = set(split.subject_id[split.split != "train"])
    leaked = sorted(added.shaped_by & held_out)
    if leaked:
        raise DataError(
            f"{len(leaked)} validation/test subject(s) (e.g. {leaked[:3]}) shaped {added.where}: use "
            "the generator's split (split.seed and fold of its controlnet_train run)"
        )
