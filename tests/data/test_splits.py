import json

import numpy as np
import pandas as pd
import pytest
import torch
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


EXTERNAL = [
    "split=external",
    "split.val={seed:101,n_subjects:24}",
    "split.test={seed:102,n_subjects:30}",
    "+split.test.composition.p_female=0.8",
]


def test_external_split_trains_on_the_cohort_and_scores_other_cohorts_of_its_source(make_cfg):
    from fairaug.data.datamodule import CohortDataModule

    def prepared(*overrides):
        data = CohortDataModule.from_config(make_cfg("input=edes", *EXTERNAL, *overrides))
        data.prepare()
        return data

    first, second = prepared(), prepared("data.seed=1")
    train = first.datasets["train"].table
    assert len(train) == 40 and not train.subject_id.str.contains("-").any()
    assert len(first.datasets["val"]) == 24 and len(first.datasets["test"]) == 30
    assert first.datasets["test"].table.subject_id.str.startswith("test-").all()
    assert (first.datasets["test"].table.sex == "female").mean() > 0.6  # the test cohort's own composition
    # another training cohort (data.seed), the same validation and test subjects and images
    assert not train.age.equals(second.datasets["train"].table.age)
    for name in ("val", "test"):
        assert first.datasets[name].table.equals(second.datasets[name].table)
        assert torch.equal(first.datasets[name][3]["image"], second.datasets[name][3]["image"])
    split = first.split
    assert (split.split == "test").sum() == 30 and split.subject_id.is_unique


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["split.val=null"], r"split.name=external needs split.val and split.test"),
        (["+split.val.n_subject=3"], r"split.val.*n_subject"),
        (
            [
                "split.val={seed:0,n_subjects:40}",
                "split.val.composition.hf_odds_ratio.sex.female=${data.composition.hf_odds_ratio.sex.female}",
            ],
            r"split.val makes the training cohort itself",
        ),
        (["fold=1"], r"fold=1.*split.name=external"),
    ],
)
def test_external_split_refuses_what_cannot_be_scored_honestly(make_cfg, overrides, message):
    from fairaug.data.datamodule import CohortDataModule

    with pytest.raises(ConfigError, match=message):
        CohortDataModule.from_config(make_cfg("input=edes", *EXTERNAL, *overrides)).prepare()


def test_external_cohorts_of_real_data_are_the_metadata_files_named(make_cfg, tiny_cohort_as_ukbb, tmp_path):
    """Train on one site, validate and test on others: here the tiny cohort's subjects in three files."""
    from fairaug.data.datamodule import CohortDataModule

    metadata = pd.read_csv(dict(o.split("=", 1) for o in tiny_cohort_as_ukbb)["data.metadata"])
    sites = {"a": metadata.iloc[:20], "b": metadata.iloc[20:30], "c": metadata.iloc[30:]}
    for site, rows in sites.items():
        rows.to_csv(tmp_path / f"site_{site}.csv", index=False)
    cohorts = [f"data.metadata={tmp_path / 'site_a.csv'}", "split=external_cohorts"]
    cohorts += [f"+split.val.metadata={tmp_path / 'site_b.csv'}", f"+split.test.metadata={tmp_path / 'site_c.csv'}"]
    data = CohortDataModule.from_config(make_cfg("input=edes", *tiny_cohort_as_ukbb, *cohorts))
    data.prepare()
    for name, site in (("train", "a"), ("val", "b"), ("test", "c")):
        ids = data.datasets[name].table.subject_id.str.removeprefix(f"{name}-")
        assert sorted(ids) == sorted(sites[site].subject_id.astype(str)), name

    with pytest.raises(ConfigError, match="split.test makes the training cohort itself"):
        CohortDataModule.from_config(make_cfg("input=edes", *tiny_cohort_as_ukbb, *cohorts[:3])).prepare()
