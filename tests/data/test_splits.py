import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from fairaug.data.splits import make_split, save_split
from fairaug.errors import ConfigError
from fairaug.runtime import RunDir
from fairaug.schemas import SplitConfig


@pytest.fixture
def cohort():
    rng = np.random.default_rng(0)
    labels = (rng.uniform(size=300) < 0.3).astype(int)
    return pd.DataFrame({"subject_id": [f"S{i:03d}" for i in range(300)], "label": labels})


def split_cfg(**changes):
    return OmegaConf.structured(SplitConfig(**changes))


@pytest.mark.parametrize("seed", range(6))
def test_disjoint_complete_and_stratified(cohort, seed):
    split = make_split(cohort, split_cfg(), seed=seed, fold=None)
    assert split.subject_id.is_unique and set(split.subject_id) == set(cohort.subject_id)
    sizes = split.split.value_counts()
    assert sizes["test"] == 75 and sizes["val"] == 30
    positives = split.merge(cohort).groupby("split").label.sum()
    expected = sizes * cohort.label.mean()
    assert ((positives - expected).abs() <= 1).all(), (positives, expected)


def test_seed_decides_the_split(cohort):
    a, b = make_split(cohort, split_cfg(), 0, None), make_split(cohort, split_cfg(), 0, None)
    pd.testing.assert_frame_equal(a, b)
    assert not make_split(cohort, split_cfg(), 1, None).equals(a)


def test_k_fold_test_sets_partition_the_cohort(cohort):
    tests = [
        set(make_split(cohort, split_cfg(n_splits=5), 0, fold).query("split == 'test'").subject_id) for fold in range(5)
    ]
    assert sum(len(t) for t in tests) == 300 and len(set.union(*tests)) == 300
    with pytest.raises(ConfigError, match="fold=5"):
        make_split(cohort, split_cfg(n_splits=5), 0, 5)
    validation = make_split(cohort, split_cfg(n_splits=5), 0, 1)
    assert (validation.split == "val").sum() == 30  # split.val_size of the cohort, from the other folds
    with pytest.raises(ConfigError, match="split.n_splits=1"):
        make_split(cohort, split_cfg(n_splits=1), 0, 0)


def test_prevalence_per_split(cohort):
    cfg = split_cfg(prevalence={"train": None, "val": None, "test": 0.5})
    split = make_split(cohort, cfg, 0, None).merge(cohort)
    assert split[split.split == "test"].label.mean() == pytest.approx(0.5, abs=0.02)
    assert split.subject_id.is_unique


def test_saved_ids_and_hash(cohort, tmp_path):
    split = make_split(cohort, split_cfg(), 0, None)
    digest = save_split(split, cohort, RunDir(tmp_path))
    summary = json.loads((tmp_path / "split.json").read_text())
    assert summary["hash"] == digest and summary["splits"]["test"]["n"] == 75
    assert pd.read_csv(tmp_path / "split.csv").shape == (300, 3)
    assert save_split(make_split(cohort, split_cfg(), 1, None), cohort, RunDir(tmp_path)) != digest
