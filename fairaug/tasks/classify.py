"""task=classify: train on the training split, keep the best validation checkpoint, test it.

Writes into the run directory: predictions.csv (one row per test subject with its
attributes), metrics.json, split.csv/split.json, config.yaml (resolved), skipped.csv
when subjects were left out, checkpoints/best.ckpt (tested) and last.ckpt, and the logger's files.
A rerun into the same folder starts without the earlier checkpoints, unless it continues one
(`ckpt_path=<run>/checkpoints/last.ckpt`, the same split); metrics.json records the tested one
(path relative to the run, and its hash) for every later task to load.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import lightning as L
import pandas as pd
from lightning.pytorch.callbacks import ModelCheckpoint

from fairaug.data.cohort import ATTRIBUTES
from fairaug.data.datamodule import CohortDataModule
from fairaug.data.splits import checkpoint_split, save_split, split_hash
from fairaug.errors import ConfigError
from fairaug.fairness.report import check_attributes, evaluate, write_report
from fairaug.io import load_checkpoint, write_csv, write_json
from fairaug.loggers import adopt_written_metrics, log_config, log_fairness, log_final_metrics, run_logger
from fairaug.models.callbacks import DataWaitMonitor, RandomState, WorstGroupValidation, progress_bars
from fairaug.models.classifier import HeartFailureClassifier
from fairaug.models.predictions import predictions_table
from fairaug.models.trainer import logged_test_metrics, spawns_workers, trainer_arguments
from fairaug.run_folder import file_sha256
from fairaug.runtime import RunDir, start_run

log = logging.getLogger(__name__)
# Never read here (a test trains with them unset): the experiment keeps classifier runs when they change.
UNREAD_SETTINGS = ("diffusion", "generation", "quality", "app")

SELECTION_METRICS = ("balanced_accuracy", "worst_group_balanced_accuracy")


def check_selection(selection) -> None:
    if selection.metric not in SELECTION_METRICS:
        raise ConfigError(f"task.selection.metric must be one of {list(SELECTION_METRICS)}, got '{selection.metric}'")
    unknown = [a for a in selection.attributes if a not in ATTRIBUTES]
    if selection.metric == "worst_group_balanced_accuracy" and (unknown or not selection.attributes):
        raise ConfigError(f"task.selection.attributes must name some of {list(ATTRIBUTES)}, got {unknown or '[]'}")


def run(cfg) -> dict:
    check_attributes(cfg.fairness)
    check_selection(cfg.task.selection)
    earlier = RunDir(cfg.paths.output_dir)
    same_sweep_job = earlier.holds_sweep_job_of(cfg)
    if same_sweep_job and earlier.metrics.exists():
        log.info("%s finished this job with the same config earlier: its results stand", earlier.path)
        return json.loads(earlier.metrics.read_text())
    resume, trained_split = _resume_point(cfg, earlier if same_sweep_job else None)
    folder = start_run(cfg)
    if not resume:  # a fresh start: no earlier record may pass for this run's (a sweep rerun would keep it)
        folder.metrics.unlink(missing_ok=True)
        if folder.checkpoints.exists():
            shutil.rmtree(folder.checkpoints)  # Lightning would save best-v1.ckpt beside the stale one

    data = CohortDataModule.from_config(cfg)
    data.prepare()
    made = split_hash(data.split)
    if trained_split not in (None, made):
        raise ConfigError(
            f"ckpt_path={resume}: its run trained on split {trained_split} (split.json beside its "
            f"checkpoints/), this config makes split {made} (seed={cfg.seed}, "
            f"fold={cfg.fold}): resume with the run's seed, fold and split settings"
        )
    folder.write_config(cfg)
    split_id = save_split(data.split, data.cohort, folder)
    if len(data.added):
        write_csv(data.added[["subject_id", "label", *ATTRIBUTES, "image_path"]], folder.synthetic)
    if data.skipped:
        write_csv(pd.DataFrame(data.skipped, columns=["subject_id", "reason"]), folder.skipped)

    module = HeartFailureClassifier(cfg.model, data.input_shape, float(cfg.model.lr), float(cfg.model.weight_decay))
    with run_logger(cfg.logger, folder.path, continued=resume is not None) as logger:
        return _train_and_test(cfg, data, module, logger, folder, split_id, resume)


def best_score(checkpoint: ModelCheckpoint, best: str | None) -> float | None:
    """The validation score of the tested checkpoint (recorded in it: a spawned DDP run returns
    the best path to this process, not the score)."""
    if checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    if best is None:
        return None
    states = load_checkpoint(Path(best), "the tested checkpoint").get("callbacks", {})
    scores = [s["best_model_score"] for s in states.values() if s.get("monitor") == checkpoint.monitor]
    return float(scores[0]) if scores and scores[0] is not None else None


def _resume_point(cfg, interrupted: RunDir | None) -> tuple[Path | None, str | None]:
    """ckpt_path, checked, and the split its run trained on (None where that run left no split.json).
    A sweep job interrupted earlier with the same config (`interrupted`: killed, preempted)
    continues from its last.ckpt without being told."""
    if cfg.get("ckpt_path"):
        resume = Path(cfg.ckpt_path)
    elif interrupted is not None and interrupted.last_checkpoint.is_file():
        resume = interrupted.last_checkpoint
        log.info("Continuing this sweep job from %s (its earlier run was interrupted)", resume)
    else:
        return None, None
    if not resume.is_file():
        raise ConfigError(f"ckpt_path={resume}: no such checkpoint")
    load_checkpoint(resume, "ckpt_path")  # refused here, before anything is written, if it is unsafe
    return resume, checkpoint_split(resume)


def _selection_scores(selection, data) -> list[L.Callback]:
    """The callback that logs the selection metric, where the module does not log it itself."""
    if selection.metric != "worst_group_balanced_accuracy":
        return []
    validation = data.datasets["val"].table
    try:
        return [WorstGroupValidation(validation, list(selection.attributes))]
    except ValueError as error:
        raise ConfigError(f"task.selection.attributes={list(selection.attributes)}: {error} in validation") from error


def _train_and_test(cfg, data, module, logger, folder: RunDir, split_id: str, resume: Path | None) -> dict:
    log_config(logger, cfg)
    # best.ckpt is what gets tested; last.ckpt, every epoch's, is where a killed run continues from
    # (ckpt_path=). Lightning's own save_last only writes when best.ckpt improves.
    selection = cfg.task.selection
    monitor = f"val/{selection.metric}"
    checkpoint = ModelCheckpoint(dirpath=folder.checkpoints, filename="best", monitor=monitor, mode="max")
    latest = ModelCheckpoint(dirpath=folder.checkpoints, filename="last", save_top_k=1, enable_version_counter=False)
    data_wait = DataWaitMonitor()
    arguments = trainer_arguments(cfg)
    trainer = L.Trainer(
        **arguments,
        logger=logger,
        callbacks=[
            *_selection_scores(selection, data),
            checkpoint,
            latest,
            data_wait,
            RandomState(),
            *progress_bars(arguments),
        ],  # fmt: skip
        default_root_dir=str(folder.path),
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    log.info("Trained in %.1f s (%d process(es))", time.perf_counter() - start, trainer.world_size)
    best = checkpoint.best_model_path or None
    if best is None:
        log.warning("No checkpoint was saved (no validation ran); testing the final weights")
    distributed = spawns_workers(cfg)  # trainer=ddp, even with trainer.devices=1
    if distributed:  # tested once, in this process, so predictions.csv covers each test subject once
        adopt_written_metrics(logger)
        trainer = L.Trainer(**{**arguments, "devices": 1, "strategy": "auto"}, logger=logger,
                            callbacks=progress_bars(arguments), default_root_dir=str(folder.path))  # fmt: skip
    trainer.test(module, datamodule=data, ckpt_path=best, weights_only=True)

    predictions = predictions_table(module, data.datasets["test"].table)
    metrics = logged_test_metrics(trainer)
    metrics.update(
        {
            "n_test": len(predictions),
            "split_hash": split_id,
            "best_checkpoint": str(Path(best).relative_to(folder.path.resolve())) if best else None,
            "best_checkpoint_sha256": file_sha256(best) if best else None,
            "train_data_wait_fraction": None if distributed else data_wait.fraction,  # measured in the workers
            "selected_by": monitor,
            "best_val_score": best_score(checkpoint, best),
        }
    )
    write_csv(predictions, folder.predictions)
    report = evaluate(predictions, cfg.fairness, int(cfg.seed))
    plots = write_report(report, folder.path, title=f"Fairness report: {folder.path}")
    log_fairness(logger, cfg.logger, report, plots, predictions)
    write_json(metrics, folder.metrics)
    log_final_metrics(logger, cfg, metrics)
    log.info("Test metrics: %s", {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
    for attribute, summary in report.attributes.items():
        log.info(
            "%s: worst group %s, balanced accuracy gap %s",
            attribute,
            summary["worst_group"],
            None if summary["balanced_accuracy_gap"] is None else round(summary["balanced_accuracy_gap"], 3),
        )
    log.info("Run directory: %s", folder.path)
    return metrics
