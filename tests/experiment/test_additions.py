"""The oracle's and the classical control's additions (unit level, tiny phantom)."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fairaug.data.datamodule import CohortDataModule
from fairaug.data.sources.synthetic import read_synthetic
from fairaug.diffusion.planning import CELL, balance_counts, scaled_counts
from fairaug.experiment import additions
from fairaug.experiment.additions import augment_real_subjects, draw_real_subjects

EXTERNAL = ["input=edes", "split=external", "split.val={seed:101,n_subjects:24}", "split.test={seed:102,n_subjects:30}"]


@pytest.fixture
def prepared(make_cfg):
    data = CohortDataModule.from_config(make_cfg(*EXTERNAL))
    data.prepare()
    return data


def cell_counts(table: pd.DataFrame) -> pd.Series:
    return table.groupby(CELL).size()


def digests(dataset) -> set[str]:
    return {hashlib.sha256(dataset[i]["image"].numpy().tobytes()).hexdigest() for i in range(len(dataset))}


def test_scaled_counts_keep_cells_and_round_the_total():
    counts = pd.DataFrame({"label": [1, 1, 0], "generate": [3, 1, 0]})
    assert scaled_counts(counts, 0.5).generate.tolist() == [2, 0, 0]
    assert scaled_counts(counts, 2).generate.tolist() == [6, 2, 0]
    assert scaled_counts(counts, 2.5).generate.sum() == 10


def test_the_oracle_draws_exactly_the_planned_cells_and_none_of_the_held_out_subjects(prepared, tmp_path):
    training = prepared.datasets["train"]
    counts = balance_counts(training.table, 30)
    planned = counts[counts.generate > 0].set_index(CELL).generate
    assert planned.sum() == 30
    phantom_root = Path(prepared.data_cfg.root)
    cohorts_before = set(phantom_root.iterdir())
    folder = draw_real_subjects(tmp_path / "oracle", prepared.data_cfg, prepared.view_cfg, seed=777, counts=counts)
    # the drawn cohort and its views were temporary: only the PNG dataset stays on disk
    assert set(phantom_root.iterdir()) == cohorts_before
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == ["oracle"]
    added, problems = read_synthetic(folder, None, 0, "raise")
    assert not problems
    drawn = cell_counts(added)
    assert drawn.sort_index().equals(planned.sort_index().rename(None).astype(drawn.dtype))
    # new subjects: not the training cohort's, and none of the fixed validation or test subjects
    oracle = CohortDataModule.from_config(prepared_cfg_with(prepared, folder))
    oracle.prepare()
    new = digests(oracle.datasets["train"]) - digests(training)
    assert len(new) == 30
    for name in ("val", "test"):
        assert not new & digests(prepared.datasets[name])


def prepared_cfg_with(prepared, folder):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "data": prepared.data_cfg,
            "input": prepared.view_cfg,
            "split": prepared.split_cfg,
            "sampler": prepared.sampler_cfg,
            "loader": prepared.loader_cfg,
            "seed": prepared.seed,
            "fold": None,
            "paths": {"cache_dir": str(prepared.cache_dir.parent)},
        }
    )
    cfg.data.synthetic.path = str(folder)
    return cfg


def test_a_failed_draw_leaves_neither_its_cohort_nor_a_half_written_dataset(prepared, tmp_path, monkeypatch):
    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(additions, "_write", fail)
    with pytest.raises(OSError, match="disk full"):
        draw_real_subjects(tmp_path / "control", prepared.data_cfg, prepared.view_cfg, seed=779, n=4)
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == []


def test_the_oracle_control_draws_as_many_from_the_population(prepared, tmp_path):
    folder = draw_real_subjects(tmp_path / "control", prepared.data_cfg, prepared.view_cfg, seed=778, n=12)
    added, _ = read_synthetic(folder, None, 0, "raise")
    assert len(added) == 12 and added.sex.nunique() == 2


def test_classical_augmentation_fills_the_planned_cells_from_their_own_real_subjects(prepared, tmp_path):
    training = prepared.datasets["train"]
    counts = balance_counts(training.table, 20)
    calls = []

    def augment(images, masks, seeds):
        calls.append(len(seeds))
        return torch.flip(images, dims=[-1]), torch.flip(masks, dims=[-1])

    folder = augment_real_subjects(tmp_path / "classical", training, counts, seed=5, augment=augment)
    added, _ = read_synthetic(folder, None, 0, "raise")
    planned = counts[counts.generate > 0].set_index(CELL).generate
    assert cell_counts(added).to_dict() == planned.to_dict() and sum(calls) == 20
    sources = training.table.set_index("subject_id").loc[added.source_subject]
    assert (sources[CELL].to_numpy() == added[CELL].to_numpy()).all()  # each from a real subject of its cell
    again = augment_real_subjects(tmp_path / "classical", training, counts, seed=5, augment=augment)
    assert again == folder and sum(calls) == 20  # complete: not built twice
    assert np.isin(added.subject_id, [f"A{i:06d}" for i in range(20)]).all()
