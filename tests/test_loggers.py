from pathlib import Path

import pandas as pd
import pytest

from fairaug.loggers import build_logger
from fairaug.tasks import classify


def test_csv_logger_gets_config_and_fairness_scalars(make_cfg):
    cfg = make_cfg("input=slice")
    classify.run(cfg)
    out = Path(cfg.paths.output_dir)
    logged = pd.read_csv(out / "logs" / "metrics.csv")
    by_group = pd.read_csv(out / "by_group.csv").dropna(subset=["balanced_accuracy"])
    assert len(by_group) > 0
    for row in by_group.itertuples():
        column = f"fairness/{row.attribute}={row.group}/balanced_accuracy"
        assert logged[column].dropna().iloc[-1] == pytest.approx(row.balanced_accuracy)
    assert "train/data_wait_fraction" in logged
    assert "max_epochs" in (out / "logs" / "hparams.yaml").read_text()
    assert (out / "by_group.csv").exists() and (out / "fairness.json").exists() and (out / "report.md").exists()
    assert (out / "balanced_accuracy_by_sex.png").exists()


def test_tensorboard_logger_fills_the_hparams_tab_with_the_final_metrics(make_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    cfg = make_cfg("input=slice", "logger=tensorboard")
    metrics = classify.run(cfg)
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {"hparams/balanced_accuracy", "hparams/auroc"}
    session = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert session.hparams["trainer/max_epochs"].number_value == 1 and "model/name" in session.hparams
    final = events.Scalars("hparams/balanced_accuracy")[-1].value
    assert final == pytest.approx(metrics["balanced_accuracy"])


def test_wandb_run_names_come_from_the_job_overrides():
    from fairaug.loggers import run_name

    assert run_name(["task=classify", "input=edes", "seed=3"], Path("/x/runs/3")) == "input=edes seed=3"
    assert run_name(["paths.home=/data/me", "hydra.sweep.dir=/tmp/s", "seed=1"], Path("/x/1")) == "seed=1"
    assert run_name([], Path("/x/runs/2026-11-29_07-00-00_000001")) == "2026-11-29_07-00-00_000001"


def test_local_paths_stay_out_of_what_wandb_is_sent():
    from fairaug.loggers import without_local_paths

    config = {
        "paths": {"home": "/home/me/.fairaug", "output_dir": "/home/me/runs/1"},
        "seed": 3,
        "data": {"root": "~/data/ukbb", "name": "ukbb", "synthetic": {"path": None}},
        "fairness": {"attributes": ["sex", "/odd"]},
    }
    shared = without_local_paths(config)
    assert shared == {
        "paths": {"home": "<local path>", "output_dir": "<local path>"},
        "seed": 3,
        "data": {"root": "<local path>", "name": "ukbb", "synthetic": {"path": None}},
        "fairness": {"attributes": ["sex", "<local path>"]},
    }


@pytest.fixture
def wandb_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))


def run_records(out: Path) -> list[bytes]:
    return [p.read_bytes() for p in (out / "wandb").glob("offline-run-*/run-*.wandb")]


def test_wandb_offline_one_run_per_job_grouped_without_subject_ids(make_cfg, wandb_offline, tmp_path, monkeypatch):
    import json

    from lightning.pytorch.loggers import WandbLogger

    sent, send = [], WandbLogger.log_hyperparams
    monkeypatch.setattr(
        WandbLogger, "log_hyperparams", lambda self, params, *a, **k: sent.append(params) or send(self, params, *a, **k)
    )
    outputs = []
    for job in ("a", "b"):  # two jobs in one process, as a sweep runs them
        cfg = make_cfg(
            "input=slice",
            "logger=wandb",
            "logger.group=sweep-42",
            "logger.log_predictions=true",
            f"paths.output_dir={tmp_path / job}",
        )
        classify.run(cfg)
        outputs.append(Path(cfg.paths.output_dir))
    records = [run_records(out) for out in outputs]
    assert [len(r) for r in records] == [1, 1]  # wandb.finish() after each job: separate runs
    record = records[0][0]
    assert b"sweep-42" in record and b"max_epochs" in record  # group and resolved config
    assert sent and str(tmp_path) not in json.dumps(sent)  # no local paths unless logger.log_paths=true
    tables = list((outputs[0] / "wandb").glob("offline-run-*/files/media/table/**/*.table.json"))
    assert {p.name.split("_")[0] for p in tables} >= {"by", "predictions"}
    predictions = pd.read_csv(outputs[0] / "predictions.csv")
    for path in tables:
        text = path.read_text()
        assert not any(subject in text for subject in predictions.subject_id)
    assert list((outputs[0] / "wandb").glob("offline-run-*/files/media/images/fairness/*.png"))


def test_wandb_run_of_a_failed_job_ends_failed(make_cfg, wandb_offline, monkeypatch):
    import wandb

    exit_codes, real_finish = [], wandb.finish

    def finish(exit_code=None, **kwargs):
        exit_codes.append(exit_code)
        real_finish(exit_code=exit_code, **kwargs)

    def fail(*args):
        raise RuntimeError("boom after training")

    monkeypatch.setattr(wandb, "finish", finish)
    monkeypatch.setattr(classify, "predictions_table", fail)
    with pytest.raises(RuntimeError, match="boom"):
        classify.run(make_cfg("input=slice", "logger=wandb"))
    assert exit_codes == [1]
    assert wandb.run is None  # finished: the next job of the sweep gets its own run


def test_csv_log_continued_in_place_keeps_the_earlier_rows(make_cfg, tmp_path):
    cfg = make_cfg().logger
    first = build_logger(cfg, tmp_path)
    first.log_metrics({"train/loss": 0.9}, step=4)
    first.save()
    second = build_logger(cfg, tmp_path, continued=True)
    second.log_metrics({"train/loss": 0.5, "lr": 0.1}, step=8)  # a new column as well
    second.save()
    logged = pd.read_csv(tmp_path / "logs" / "metrics.csv")
    assert list(logged.step) == [4, 8] and list(logged["train/loss"]) == [0.9, 0.5]


def test_a_finished_sweep_logs_its_summary_to_the_sweeps_wandb_group(make_cfg, wandb_offline, tmp_path):
    from fairaug.fairness.sweep import finished, summarise
    from fairaug.loggers import log_sweep_summary
    from tests.fairness.test_sweep import fake_sweep

    sweep = tmp_path / "sweep"
    fake_sweep(sweep, 0.2, seeds=range(3), failing=1)
    cfg = make_cfg("logger=wandb", "logger.group=sweep-7")
    summary = summarise(sweep, cfg.fairness)
    assert finished(summary) and not finished({**summary, "completed": summary["completed"] - 1})
    log_sweep_summary(cfg.logger, sweep, summary)
    record = run_records(sweep)[0]
    assert b"sweep-7" in record and b"sweep_summary" in record and b"sweep/balanced_accuracy/mean" in record
    assert list((sweep / "wandb").glob("offline-run-*/files/media/table/sweep/jobs*.table.json"))
    assert list((sweep / "wandb").glob("offline-run-*/files/media/images/sweep/*.png"))
    assert b"sweep-summary" in record  # the artifact: summary.csv, results.csv and the plot
    assert b"summary.csv" in record and b"results.csv" in record
