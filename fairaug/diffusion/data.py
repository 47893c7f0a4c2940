"""What the diffusion model trains on: the edes views of the real training subjects, their
prompts' tokens, and a loader that draws rare prompts more often."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from fairaug.data.cohort import ATTRIBUTES
from fairaug.data.datamodule import CachedViewDataset, CohortDataModule
from fairaug.data.splits import save_split
from fairaug.errors import ConfigError
from fairaug.runtime import RunDir

TRAINING_COLUMNS = ["subject_id", "label", *ATTRIBUTES]  # training_subjects.csv: who the generator saw


class PromptedViews(Dataset):
    """Training items: the edes image in [-1, 1], its stacked masks and the prompt's tokens."""

    def __init__(self, views, input_ids: torch.Tensor):
        self.views, self.input_ids = views, input_ids

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int) -> dict:
        item = self.views[i]
        return {"pixels": item["image"] * 2.0 - 1.0, "masks": item["masks"], "input_ids": self.input_ids[i], "index": i}


def prompt_weights(prompts: list[str], max_ratio: float) -> np.ndarray:
    """Inverse prompt frequency, clipped at `max_ratio` times the weight of the most common prompt."""
    values, counts = np.unique(prompts, return_counts=True)
    frequency = dict(zip(values, counts))
    weights = np.array([1.0 / frequency[p] for p in prompts])
    return np.minimum(weights, max_ratio / counts.max())


def check_training_view(cfg) -> None:
    """The task config sets input=edes at the diffusion size; a command line that changes it is refused."""
    view = cfg.input
    if view.name != "edes" or view.view != "sa" or int(view.size) != int(cfg.diffusion.size):
        raise ConfigError(
            f"task=controlnet_train trains on input=edes, input.view=sa at input.size=diffusion.size "
            f"({cfg.diffusion.size}); got input={view.name}, input.view={view.view}, "
            f"input.size={view.size}: set diffusion.size instead"
        )


def training_views(cfg, folder: RunDir) -> tuple[CachedViewDataset, pd.DataFrame]:
    """The edes views of the real training subjects, and the cohort; the split is saved with the
    run (split.csv), as classify saves it."""
    data = CohortDataModule.from_config(cfg, loaders=False)
    data.prepare()
    save_split(data.split, data.cohort, folder)
    train = data.datasets["train"].table
    train = train[train.origin == "real"].reset_index(drop=True)
    return CachedViewDataset(data.cache, train), data.cohort


class TrainingData(L.LightningDataModule):
    """Batches of diffusion.batch_size drawn by inverse prompt frequency (diffusion.max_weight_ratio).
    The loader is built where it is used: a spawned DDP worker cannot receive its torch.Generator."""

    def __init__(self, dataset: PromptedViews, prompts: list[str], diffusion, seed: int, num_workers: int):
        super().__init__()
        self.dataset, self.seed, self.num_workers = dataset, seed, num_workers
        self.weights = prompt_weights(prompts, float(diffusion.max_weight_ratio))
        self.batch_size = int(diffusion.batch_size)

    def train_dataloader(self) -> DataLoader:
        sampler = WeightedRandomSampler(
            torch.as_tensor(self.weights, dtype=torch.double),
            len(self.dataset),
            replacement=True,
            generator=torch.Generator().manual_seed(self.seed),
        )
        per_process = math.ceil(len(self.dataset) / self.trainer.world_size)  # DDP: each rank draws its share
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=per_process > self.batch_size,
            num_workers=self.num_workers,
        )
