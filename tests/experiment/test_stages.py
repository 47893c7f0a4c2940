"""Stage reuse: a stage finished with the same inputs is reused (its config, less what its task
never reads, and the records of the stages it reads). Rerun under another config it
runs again; if that run fails before writing anything (its task refuses to redo the stage in
place, or any earlier error), the earlier record stays, so the earlier command still reuses it;
if it fails after writing, no record is left over its outputs."""

import json

import pytest

from fairaug.errors import ConfigError, OutputExists
from fairaug.experiment.stages import DONE, Stages, config_hash, whole_config_hash
from fairaug.runtime import RunDir

RUN_TASK = "fairaug.tasks.registry.run_task"


@pytest.fixture
def finished(tmp_path, fairaug_home, monkeypatch):
    """A stage finished with trainer.max_epochs=2: (stages, folder, its record)."""
    stages, folder = Stages([f"paths.home={fairaug_home}"]), tmp_path / "stage"
    monkeypatch.setattr(RUN_TASK, lambda cfg: {"epochs": int(cfg.trainer.max_epochs)})
    assert stages.run(folder, ["task=classify", "trainer.max_epochs=2"]) == {"epochs": 2}
    return stages, folder, (folder / DONE).read_text()


def test_a_stage_its_task_will_not_redo_keeps_its_record(finished, monkeypatch):
    stages, folder, record = finished

    def refuse(cfg):
        raise OutputExists(f"{folder} already holds a run")

    monkeypatch.setattr(RUN_TASK, refuse)
    with pytest.raises(ConfigError, match=r"finished earlier under another config .*rerun as it was made"):
        stages.run(folder, ["task=classify", "trainer.max_epochs=3"])
    assert (folder / DONE).read_text() == record
    monkeypatch.setattr(RUN_TASK, lambda cfg: pytest.fail("ran again"))
    assert stages.run(folder, ["task=classify", "trainer.max_epochs=2"]) == {"epochs": 2}


def test_a_rerun_that_fails_before_writing_keeps_the_record(finished, monkeypatch):
    stages, folder, record = finished

    def invalid(cfg):
        raise ConfigError("trainer.precision=bf16-true cannot work")  # e.g. a check before the refusal

    monkeypatch.setattr(RUN_TASK, invalid)
    with pytest.raises(ConfigError, match="bf16-true"):
        stages.run(folder, ["task=classify", "trainer.max_epochs=3"])
    assert (folder / DONE).read_text() == record


def test_a_rerun_under_another_config_replaces_the_record_or_leaves_none(finished, monkeypatch, caplog):
    stages, folder, _ = finished
    assert stages.run(folder, ["task=classify", "trainer.max_epochs=3"]) == {"epochs": 3}
    assert "finished earlier with another config or from other stages" in caplog.text
    assert json.loads((folder / DONE).read_text())["result"] == {"epochs": 3}

    def fail_part_way(cfg):
        (folder / "checkpoint.ckpt").write_text("half")
        raise RuntimeError("killed mid-run")

    monkeypatch.setattr(RUN_TASK, fail_part_way)
    with pytest.raises(RuntimeError):
        stages.run(folder, ["task=classify", "trainer.max_epochs=4"])
    assert not (folder / DONE).exists()


def test_an_interrupted_run_is_known_by_the_config_it_saved(tmp_path, fairaug_home):
    stages, folder = Stages([f"paths.home={fairaug_home}"]), tmp_path / "controlnet"
    stage, resume = ["task=controlnet_train", "diffusion.steps=40"], [f"diffusion.resume={folder}"]
    RunDir(folder).write_config(stages.config(folder, stage))  # as its first session saved it
    assert stages.started_with(folder, stage, resume)
    assert not stages.started_with(folder, ["task=controlnet_train", "diffusion.steps=50"], resume)
    RunDir(folder).write_config(stages.config(folder, [*stage, *resume]))  # as a resumed session saved it
    assert stages.started_with(folder, stage, resume)
    assert not stages.started_with(folder, [*stage, "diffusion.lr=0.002"], resume)
    assert stages.started_with(folder, [*stage, "model.lr=0.01"], resume)  # the classifier's: not the ControlNet's
    assert stages.started_with(tmp_path / "nothing_saved", stage, resume)


STAGE_TASKS = ("controlnet_train", "synth_generate", "classify", "synth_quality")


@pytest.mark.parametrize(
    ("change", "reruns"),
    [
        ("model=resnet18", {"classify", "synth_quality"}),
        ("model.lr=0.01", {"classify", "synth_quality"}),
        ("sampler=random", {"classify", "synth_quality"}),
        ("trainer.max_epochs=9", {"classify", "synth_quality"}),
        ("loader.batch_size=3", {"classify", "synth_quality"}),
        ("quality.kid_subset_size=7", {"synth_quality"}),
        ("diffusion.lr=0.002", {"controlnet_train", "synth_generate", "synth_quality"}),
        ("generation.guidance_scale=3", {"controlnet_train", "synth_generate", "synth_quality"}),
        ("fairness.n_boot=7", {"classify", "synth_quality"}),
        ("app.port=9999", {"synth_quality"}),
        ("loader.num_workers=1", set(STAGE_TASKS)),  # no task declares these unread
        ("trainer.max_steps=5", set(STAGE_TASKS)),
    ],
)
def test_a_stage_runs_again_only_when_a_setting_its_task_does_not_declare_unread_changed(
    tmp_path, fairaug_home, monkeypatch, change, reruns
):
    stages, ran = Stages([f"paths.home={fairaug_home}"]), []
    monkeypatch.setattr(RUN_TASK, lambda cfg: ran.append(cfg.task.name) or {})
    for task in STAGE_TASKS:
        stages.run(tmp_path / task, [f"task={task}"])
    ran.clear()
    changed = Stages([*stages.base, change])
    for task in STAGE_TASKS:
        changed.run(tmp_path / task, [f"task={task}"])
    assert set(ran) == reruns


def test_what_only_changes_the_display_keeps_every_stage(finished, monkeypatch):
    stages, folder, _ = finished
    monkeypatch.setattr(RUN_TASK, lambda cfg: pytest.fail("ran again"))
    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    assert Stages([*stages.base, *quiet]).run(folder, ["task=classify", "trainer.max_epochs=2"]) == {"epochs": 2}


def test_a_stage_runs_again_when_a_stage_it_reads_was_redone(tmp_path, fairaug_home, monkeypatch):
    stages, ran = Stages([f"paths.home={fairaug_home}"]), []
    monkeypatch.setattr(RUN_TASK, lambda cfg: ran.append(int(cfg.trainer.max_epochs)) or {})
    upstream, downstream = tmp_path / "generated", tmp_path / "classifier"
    stages.run(upstream, ["task=classify", "trainer.max_epochs=2"])
    stages.run(downstream, ["task=classify", "trainer.max_epochs=5"], reads=[upstream])
    stages.run(downstream, ["task=classify", "trainer.max_epochs=5"], reads=[upstream])
    assert ran == [2, 5]
    stages.run(upstream, ["task=classify", "trainer.max_epochs=3"])  # redone under another config
    stages.run(downstream, ["task=classify", "trainer.max_epochs=5"], reads=[upstream])
    assert ran == [2, 5, 3, 5]
    (upstream / DONE).unlink()  # e.g. deleted by hand: redone under the same config, with the same result
    stages.run(upstream, ["task=classify", "trainer.max_epochs=3"])
    stages.run(downstream, ["task=classify", "trainer.max_epochs=5"], reads=[upstream])
    assert ran == [2, 5, 3, 5, 3, 5]


def test_a_record_named_by_the_whole_config_is_reused_and_renamed_by_its_inputs(tmp_path, fairaug_home, monkeypatch):
    """Experiments written before stages were named by their inputs continue where they stopped."""
    stages, folder = Stages([f"paths.home={fairaug_home}"]), tmp_path / "controlnet"
    stage = ["task=controlnet_train", "diffusion.steps=40"]
    folder.mkdir()
    older = {"config": whole_config_hash(stages.config(folder, stage)), "result": {"steps": 40}}
    (folder / DONE).write_text(json.dumps(older))
    monkeypatch.setattr(RUN_TASK, lambda cfg: pytest.fail("ran again"))
    assert stages.run(folder, stage) == {"steps": 40}
    assert json.loads((folder / DONE).read_text()) == {**older, "config": config_hash(stages.config(folder, stage))}
    assert stages.run(folder, stage) == {"steps": 40}
    monkeypatch.setattr(RUN_TASK, lambda cfg: {"steps": 50})
    (folder / DONE).write_text(json.dumps(older))
    assert stages.run(folder, ["task=controlnet_train", "diffusion.steps=50"]) == {"steps": 50}  # another config


def test_an_older_record_is_not_reused_once_a_stage_it_reads_was_redone(tmp_path, fairaug_home, monkeypatch):
    stages, ran = Stages([f"paths.home={fairaug_home}"]), []
    monkeypatch.setattr(RUN_TASK, lambda cfg: ran.append(cfg.task.name) or {})
    upstream, downstream = tmp_path / "generated", tmp_path / "classifier"
    for folder, task in ((upstream, "synth_generate"), (downstream, "classify")):
        folder.mkdir()
        older = {"config": whole_config_hash(stages.config(folder, [f"task={task}"])), "result": {}}
        (folder / DONE).write_text(json.dumps(older))
    stages.run(upstream, ["task=synth_generate"])
    stages.run(downstream, ["task=classify"], reads=[upstream])
    assert ran == []  # both as the older experiment left them
    (upstream / DONE).unlink()
    stages.run(upstream, ["task=synth_generate"])  # redone since
    (downstream / DONE).write_text(json.dumps(older))
    stages.run(downstream, ["task=classify"], reads=[upstream])
    assert ran == ["synth_generate", "classify"]
