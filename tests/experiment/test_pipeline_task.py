"""task=pipeline in this process on real data (the tiny phantom read as UK Biobank data): every
arm but the oracle's, said so in the report, and a rerun that reuses every finished stage; parts
of the design run apart, then the whole reuses them. The whole design with the ControlNet and the
oracle runs in the slow tier (tests/test_pipeline.py)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from fairaug.errors import ConfigError
from fairaug.experiment.arms import chosen_arms
from fairaug.experiment.stages import DONE, Stages
from fairaug.runtime import RunDir
from fairaug.tasks import pipeline
from tests.conftest import TINY_PHANTOM, TINY_RUN


def test_real_data_runs_every_arm_but_the_oracle_and_a_rerun_reuses_every_stage(
    make_cfg, tiny_cohort_as_ukbb, fairaug_home, monkeypatch
):
    data = [*tiny_cohort_as_ukbb, "trainer.max_epochs=2"]
    design = ["task.arms=[real_only,reweight,oracle]", "task.training_sets=2", "task.seeds=1", "task.doses=[]"]
    cfg = make_cfg(*data, "task=pipeline", *design, "task.n_boot=50")
    stages = [*TINY_RUN, f"paths.home={fairaug_home}", *data]
    pipeline.run(cfg, stages)

    out = Path(cfg.paths.output_dir)
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(set(runs.arm)) == ["real_only", "reweight"] and sorted(set(runs.training_set)) == [0, 1]
    report = (out / "report.md").read_text()
    assert "Left out: oracle" in report and "no generator of real subjects" in report
    assert "| reweight | balanced accuracy (sex=female) |" in report
    predictions = pd.read_csv(out / "predictions.csv")
    by_set = predictions.groupby("training_set").subject_id.apply(frozenset)
    assert by_set[0] != by_set[1]  # real data: each training set is another split, with its own test subjects
    for run in runs.run:  # equal compute: every arm drew as many samples per epoch
        assert (
            json.loads((Path(run) / "metrics.json").read_text())["selected_by"] == "val/worst_group_balanced_accuracy"
        )
    steps = {arm: pd.read_csv(Path(r) / "logs" / "metrics.csv").step.max() for arm, r in zip(runs.arm, runs.run)}
    assert len(set(steps.values())) == 1
    finished = {p: p.stat().st_mtime_ns for p in out.rglob(DONE)}
    assert len(finished) == 4

    monkeypatch.setattr("fairaug.tasks.registry.run_task", lambda cfg: pytest.fail(f"{cfg.task.name} ran again"))
    pipeline.run(cfg, stages)
    assert {p: p.stat().st_mtime_ns for p in out.rglob(DONE)} == finished


def test_parts_of_one_experiment_run_apart_and_the_whole_reuses_them(
    make_cfg, tiny_cohort_as_ukbb, fairaug_home, monkeypatch, tmp_path
):
    data = [*tiny_cohort_as_ukbb, "trainer.max_epochs=2"]
    design = ["task.arms=[real_only,reweight]", "task.training_sets=2", "task.seeds=1", "task.doses=[]"]
    design.append("task.n_boot=50")
    stages = [*TINY_RUN, f"paths.home={fairaug_home}", *data]
    experiment = tmp_path / "experiment"
    monkeypatch.chdir(tmp_path)  # a relative experiment_dir names the same stages as the absolute run folder
    for part, named in ((1, "1"), (0, "[0]")):  # e.g. two jobs of a sweep, each in its own run folder
        cfg = make_cfg(
            *data,
            "task=pipeline",
            *design,
            f"task.only_training_sets={named}",
            "task.experiment_dir=experiment",
            f"paths.output_dir={tmp_path / f'part{part}'}",
        )
        assert pipeline.run(cfg, stages) == {}
        assert not (tmp_path / f"part{part}" / "report.md").exists() and not (experiment / "report.md").exists()
    finished = {p: p.stat().st_mtime_ns for p in experiment.rglob(DONE)}
    assert sorted(p.relative_to(experiment).parts[1] for p in finished) == ["train0"] * 2 + ["train1"] * 2

    monkeypatch.setattr("fairaug.tasks.registry.run_task", lambda cfg: pytest.fail(f"{cfg.task.name} ran again"))
    whole = make_cfg(*data, "task=pipeline", *design, f"paths.output_dir={experiment}")
    pipeline.run(whole, stages)
    assert {p: p.stat().st_mtime_ns for p in experiment.rglob(DONE)} == finished
    assert sorted(set(pd.read_csv(experiment / "runs.csv").training_set)) == [0, 1]
    assert (experiment / "report.md").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.only_training_sets=[2]", r"task.only_training_sets: \[2\] not among the 2 training sets \(0 to 1\)"),
        ("task.only_training_sets=-1", r"\[-1\] not among the 2 training sets"),
        ("task.only_training_sets=[]", "task.only_training_sets is empty"),
        ("task.only_training_sets=[first]", r"\['first'\] are not all training set indices \(0 to 1\)"),
    ],
)
def test_parts_outside_the_design_are_refused_before_anything_is_written(make_cfg, override, message):
    cfg = make_cfg("task=pipeline", "task.training_sets=2", override)
    with pytest.raises(ConfigError, match=message):
        pipeline.run(cfg, [])
    assert not Path(cfg.paths.output_dir).exists()


def test_real_data_with_an_external_split_is_refused_before_anything_is_written(make_cfg, tiny_cohort_as_ukbb):
    """Its training sets are splits of one cohort by split.seed, which split=external ignores."""
    cfg = make_cfg(*tiny_cohort_as_ukbb, "task=pipeline", "split=external_cohorts", "+split.test.metadata=other.csv")
    with pytest.raises(ConfigError, match="every training set would be the same whole cohort"):
        pipeline.run(cfg, [])
    assert not Path(cfg.paths.output_dir).exists()


def test_an_interrupted_controlnet_continues_only_under_the_config_it_started_with(
    make_cfg, fairaug_home, tmp_path, monkeypatch
):
    cfg = make_cfg("task=pipeline")
    stages = Stages([f"paths.home={fairaug_home}"])
    training_set = pipeline.TrainingSet(stages, tmp_path / "default" / "train0", 0, True, [], cfg)
    folder = RunDir(training_set.path / "controlnet")
    folder.write_config(stages.config(folder.path, ["task=controlnet_train", *training_set.data, "seed=0"]))
    folder.last_checkpoint.parent.mkdir(parents=True)
    folder.last_checkpoint.write_bytes(b"")  # a session that stopped before the model was saved
    resumed = []
    monkeypatch.setattr("fairaug.tasks.registry.run_task", lambda c: resumed.append(c.diffusion.resume) or {})
    assert training_set.controlnet() == folder.path and resumed == [str(folder.path)]

    changed = pipeline.TrainingSet(Stages([*stages.base, "diffusion.steps=7"]), training_set.path, 0, True, [], cfg)
    with pytest.raises(ConfigError, match="interrupted ControlNet training started under another config"):
        changed.controlnet()
    assert len(resumed) == 1


class RecordingStages(Stages):
    """Runs no stage: records which stage folders each one reads (a generation writes the
    one-subject manifest its arm counts)."""

    def __init__(self, base: list[str]):
        super().__init__(base)
        self.reads, self.overrides = {}, {}

    def run(self, folder, overrides, resume=(), reads=()):
        self.reads[Path(folder)] = [Path(read) for read in reads]
        self.overrides[Path(folder)] = overrides
        if "task=synth_generate" in overrides:
            Path(folder).mkdir(parents=True)
            pd.DataFrame({"subject_id": ["S1"]}).to_csv(Path(folder) / "manifest.csv", index=False)
        return {}


def test_each_stage_reads_the_stages_whose_outputs_it_uses(make_cfg, fairaug_home, tmp_path):
    """So a redone ControlNet makes its synthetic data, and the arms and quality fed by it, run again."""
    cfg = make_cfg("task=pipeline", "task.arms=[real_only,balance]", "task.doses=[]", "task.seeds=1")
    base = [*TINY_PHANTOM, *TINY_RUN, f"paths.home={fairaug_home}", "++split.val.n_subjects=30"]
    stages = RecordingStages([*base, "++split.test.n_subjects=40"])
    train0 = tmp_path / "default" / "train0"
    arms, _ = chosen_arms(["real_only", "balance"], [], True)
    pipeline.TrainingSet(stages, train0, 0, True, [], cfg).run(arms, "default")
    assert {folder.relative_to(train0).as_posix(): reads for folder, reads in stages.reads.items()} == {
        "controlnet": [],
        "added/balance": [train0 / "controlnet"],
        "arms/real_only/seed0": [],
        "arms/balance/seed0": [train0 / "added" / "balance"],
        "quality/balance": [train0 / "added" / "balance", train0 / "arms" / "real_only" / "seed0"],
    }
    balance = train0 / "added" / "balance"  # what they read is what they name
    assert f"generation.model={train0 / 'controlnet'}" in stages.overrides[balance]
    assert f"data.synthetic.path={balance}" in stages.overrides[train0 / "arms" / "balance" / "seed0"]
    quality = stages.overrides[train0 / "quality" / "balance"]
    assert f"quality.synthetic={balance}" in quality
    assert f"quality.classifier={train0 / 'arms' / 'real_only' / 'seed0'}" in quality
