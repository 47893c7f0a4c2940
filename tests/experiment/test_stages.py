"""Stage reuse: a stage finished with the same config is reused; one whose task refuses to redo it
in place under another config keeps its earlier result, so the earlier command still reuses it."""

import json

import pytest

from fairaug.errors import ConfigError, OutputExists
from fairaug.experiment.stages import DONE, Stages

RUN_TASK = "fairaug.tasks.registry.run_task"


def test_a_stage_its_task_will_not_redo_keeps_its_earlier_result(tmp_path, fairaug_home, monkeypatch):
    stages, folder = Stages([f"paths.home={fairaug_home}"]), tmp_path / "controlnet"
    monkeypatch.setattr(RUN_TASK, lambda cfg: {"steps": int(cfg.trainer.max_epochs)})
    assert stages.run(folder, ["task=classify", "trainer.max_epochs=2"]) == {"steps": 2}
    record = (folder / DONE).read_text()

    def refuse(cfg):
        raise OutputExists(f"{folder} already holds a run")

    monkeypatch.setattr(RUN_TASK, refuse)
    with pytest.raises(ConfigError, match=r"finished earlier with other overrides.*already holds a run.*rerun"):
        stages.run(folder, ["task=classify", "trainer.max_epochs=3"])
    assert (folder / DONE).read_text() == record

    monkeypatch.setattr(RUN_TASK, lambda cfg: pytest.fail("ran again"))
    assert stages.run(folder, ["task=classify", "trainer.max_epochs=2"]) == {"steps": 2}


def test_a_stage_run_again_under_another_config_replaces_its_result(tmp_path, fairaug_home, monkeypatch, caplog):
    stages, folder = Stages([f"paths.home={fairaug_home}"]), tmp_path / "classify"
    monkeypatch.setattr(RUN_TASK, lambda cfg: {"epochs": int(cfg.trainer.max_epochs)})
    stages.run(folder, ["task=classify", "trainer.max_epochs=2"])
    assert stages.run(folder, ["task=classify", "trainer.max_epochs=3"]) == {"epochs": 3}
    assert "finished earlier with another config" in caplog.text
    assert json.loads((folder / DONE).read_text())["result"] == {"epochs": 3}

    def fail(cfg):
        raise RuntimeError("killed mid-run")

    monkeypatch.setattr(RUN_TASK, fail)  # a run that may have written part of its outputs leaves no record
    with pytest.raises(RuntimeError):
        stages.run(folder, ["task=classify", "trainer.max_epochs=4"])
    assert not (folder / DONE).exists()
