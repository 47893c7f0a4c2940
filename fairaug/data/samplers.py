"""Training samplers: plain shuffling, or weights that balance labels or subgroups."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler

from fairaug.data.cohort import ATTRIBUTES, is_recorded
from fairaug.errors import ConfigError

log = logging.getLogger(__name__)


def check_sampler(cfg) -> None:
    """The sampler's attributes, checked before any data is prepared."""
    unknown = [a for a in cfg.attributes if a not in ATTRIBUTES]
    if unknown:
        raise ConfigError(f"sampler.attributes has unknown attribute(s) {unknown}; known: {ATTRIBUTES}")


def group_weights(table: pd.DataFrame, attributes) -> np.ndarray:
    """1 / size of each sample's (label x attributes) group: every group is drawn equally often.
    Attributes the data records for no subject (ACDC has no sex) are left out, with a warning."""
    absent = [a for a in attributes if not is_recorded(table[a])]
    if absent:
        log.warning(
            "sampler.attributes %s are not recorded for any training subject: balancing over %s",
            absent,
            ["label", *(a for a in attributes if a not in absent)],
        )
    keys = ["label", *(a for a in attributes if a not in absent)]
    sizes = table.groupby(keys, observed=True)["label"].transform("size")
    return 1.0 / sizes.to_numpy(dtype=float)


def build_sampler(cfg, train: pd.DataFrame, seed: int) -> Sampler:
    check_sampler(cfg)
    generator = torch.Generator().manual_seed(seed)
    if cfg.name == "random":
        return RandomSampler(range(len(train)), generator=generator)
    attributes = list(cfg.attributes) if cfg.name == "group_balanced" else []
    weights = torch.as_tensor(group_weights(train, attributes), dtype=torch.double)
    return WeightedRandomSampler(weights, num_samples=len(train), replacement=True, generator=generator)
