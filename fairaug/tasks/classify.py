"""task=classify: train on the training split, keep the best validation checkpoint, test it.

Writes into the run directory: predictions.csv (one row per test subject with its
attributes), metrics.json, split.csv/split.json, config.yaml (resolved), skipped.csv
when subjects were left out, checkpoints/best.ckpt (tested) and last.ckpt, and the logger's files.
A rerun into the same folder starts without the earlier checkpoints, unless it continues one
(`ckpt_path=<run>/checkpoints/last.ckpt`, the same split); metrics.json records the tested one
(path relative to the run, and its hash) for every later task to load.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import lightning as L
import pandas as pd
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import OmegaConf

from fairaug.data.cohort import ATTRIBUTES
from fairaug.data.datamodule import CohortDataModule
from fairaug.data.splits import checkpoint_split, save_split, split_hash
from fairaug.errors import ConfigError
from fairaug.fairness.report import check_attributes, evaluate, write_report
from fairaug.io import write_csv, write_json, write_text
from fairaug.loggers import log_config, log_fairness, log_final_metrics, run_logger
from fairaug.models.callbacks import DataWaitMonitor, progress_bars
from fairaug.models.classifier import HeartFailureClassifier
from fairaug.models.predictions import predictions_table
from fairaug.models.trainer import trainer_arguments
from fairaug.run_folder import file_sha256

log = logging.getLogger(__name__)

MONITOR = "val/balanced_accuracy"


def run(cfg) -> dict:
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resume, trained_split = _resume_point(cfg)
    if not resume and (output_dir / "checkpoints").exists():
        shutil.rmtree(output_dir / "checkpoints")  # a rerun: Lightning would save best-v1.ckpt beside the stale one
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    check_attributes(cfg.fairness)

    data = CohortDataModule(cfg)
    data.prepare()
    made = split_hash(data.split)
    if trained_split not in (None, made):
        raise ConfigError(f"ckpt_path={resume}: its run trained on split {trained_split} (split.json beside its "
                          f"checkpoints/), this config makes split {made} (seed={cfg.seed}, "
                          f"fold={cfg.fold}): resume with the run's seed, fold and split settings")
    write_text(OmegaConf.to_yaml(cfg, resolve=True), output_dir / "config.yaml")
    split_id = save_split(data.split, data.cohort, output_dir)
    if len(data.synthetic):
        write_csv(data.synthetic[["subject_id", "label", *ATTRIBUTES, "image_file"]],
                  output_dir / "synthetic.csv")
    if data.skipped:
        write_csv(pd.DataFrame(data.skipped, columns=["subject_id", "reason"]), output_dir / "skipped.csv")

    module = HeartFailureClassifier(cfg.model, data.input_shape, float(cfg.model.lr),
                                    float(cfg.model.weight_decay))
    with run_logger(cfg.logger, output_dir, continued=resume is not None) as logger:
        return _train_and_test(cfg, data, module, logger, output_dir, split_id, resume)


def _resume_point(cfg) -> tuple[Path | None, str | None]:
    """ckpt_path, checked, and the split its run trained on (None where that run left no split.json)."""
    if not cfg.get("ckpt_path"):
        return None, None
    resume = Path(cfg.ckpt_path)
    if not resume.is_file():
        raise ConfigError(f"ckpt_path={resume}: no such checkpoint")
    return resume, checkpoint_split(resume)


def _train_and_test(cfg, data, module, logger, output_dir: Path, split_id: str, resume: Path | None) -> dict:
    log_config(logger, cfg)
    # best.ckpt is what gets tested; last.ckpt is where a killed run continues from (ckpt_path=)
    checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor=MONITOR, mode="max",
                                 save_last=True)
    data_wait = DataWaitMonitor()
    arguments = trainer_arguments(cfg)
    trainer = L.Trainer(**arguments, logger=logger, callbacks=[checkpoint, data_wait, *progress_bars(arguments)],
                        default_root_dir=str(output_dir))
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    best = checkpoint.best_model_path or None
    if best is None:
        log.warning("No checkpoint was saved (no validation ran); testing the final weights")
    trainer.test(module, datamodule=data, ckpt_path=best, weights_only=True)

    predictions = predictions_table(module, data.datasets["test"].table)
    metrics = {name.removeprefix("test/"): float(value) for name, value in trainer.callback_metrics.items()
               if name.startswith("test/")}
    metrics.update({"n_test": len(predictions), "split_hash": split_id,
                    "best_checkpoint": str(Path(best).relative_to(output_dir.resolve())) if best else None,
                    "best_checkpoint_sha256": file_sha256(best) if best else None,
                    "train_data_wait_fraction": data_wait.fraction,
                    "best_val_balanced_accuracy": float(checkpoint.best_model_score)
                    if checkpoint.best_model_score is not None else None})
    write_csv(predictions, output_dir / "predictions.csv")
    report = evaluate(predictions, cfg.fairness, int(cfg.seed))
    plots = write_report(report, output_dir, title=f"Fairness report: {output_dir}")
    log_fairness(logger, cfg.logger, report, plots, predictions)
    write_json(metrics, output_dir / "metrics.json")
    log_final_metrics(logger, cfg, metrics)
    log.info("Test metrics: %s", {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
    for attribute, summary in report.attributes.items():
        log.info("%s: worst group %s, balanced accuracy gap %s", attribute, summary["worst_group"],
                 None if summary["balanced_accuracy_gap"] is None else round(summary["balanced_accuracy_gap"], 3))
    log.info("Run directory: %s", output_dir)
    return metrics
