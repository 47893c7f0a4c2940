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


def _weights(cfg, table: pd.DataFrame) -> np.ndarray:
    if cfg.name == "random":
        return np.ones(len(table))
    return group_weights(table, list(cfg.attributes) if cfg.name == "group_balanced" else [])


def _mixed_weights(cfg, train: pd.DataFrame) -> np.ndarray:
    """Real and added subjects weighted within their own part (so added subjects in a scarce cell
    do not dilute that cell's real subjects), the added part drawn `added_fraction` of the time."""
    added = (train.origin != "real").to_numpy()
    weights = np.zeros(len(train))
    for rows, share in ((~added, 1.0 - float(cfg.added_fraction)), (added, float(cfg.added_fraction))):
        part_weights = _weights(cfg, train[rows])
        weights[rows] = share * part_weights / part_weights.sum()
    return weights


def build_sampler(cfg, train: pd.DataFrame, seed: int) -> Sampler:
    """`samples_per_epoch` draws per epoch (one per training subject when null: then an arm with
    added subjects trains more steps than one without)."""
    check_sampler(cfg)
    generator = torch.Generator().manual_seed(seed)
    samples = int(cfg.get("samples_per_epoch") or len(train))
    mixed = "origin" in train and 0 < (train.origin != "real").sum() < len(train)
    if mixed and cfg.get("added_fraction") is not None:
        weights = _mixed_weights(cfg, train)
    elif cfg.name == "random":
        return RandomSampler(range(len(train)), num_samples=samples, generator=generator)
    else:
        weights = _weights(cfg, train)
    weights = torch.as_tensor(weights, dtype=torch.double)
    return WeightedRandomSampler(weights, num_samples=samples, replacement=True, generator=generator)
