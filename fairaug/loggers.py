"""Experiment loggers (`logger=csv | tensorboard | wandb`) and what every run logs to them.

Every logger gets the resolved config as hyperparameters, the training curves, and at the
end the fairness report: per-group metrics and criteria as scalars, and for TensorBoard and
W&B the report's plots (W&B also the per-group table). Jobs of one sweep share a W&B group
(the sweep folder). Subject ids never reach W&B unless `logger.log_subject_ids=true`. A run that
raises ends its W&B run with exit code 1 (failed), and a run continued in its own folder keeps
its earlier logs/metrics.csv rows.
"""

from __future__ import annotations

import csv
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf

from fairaug.errors import ConfigError

LOGGERS = ("csv", "tensorboard", "wandb")


def _sweep_group() -> str | None:
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        sweep = Path(HydraConfig.get().sweep.dir)
        return f"{sweep.parent.name}/{sweep.name}"
    return None


def build_logger(cfg, output_dir: Path, continued: bool = False) -> Logger:
    """continued: this run continues the training of an earlier run in the same folder."""
    if cfg.name == "csv":
        logger = CSVLogger(save_dir=str(output_dir), name="logs", version="")
        if continued:
            _keep_earlier_rows(logger)
        return logger
    if cfg.name == "tensorboard":
        return TensorBoardLogger(save_dir=str(output_dir), name="tensorboard", version="", default_hp_metric=False)
    if cfg.name == "wandb":
        sweep = _sweep_group()
        return WandbLogger(project=cfg.project, entity=cfg.entity, group=cfg.group or sweep,
                           name=f"job-{output_dir.name}" if sweep else output_dir.name,
                           save_dir=str(output_dir), mode=cfg.mode, job_type="classify")
    raise ConfigError(f"unknown logger '{cfg.name}'; known: {list(LOGGERS)}")


@rank_zero_only
def _keep_earlier_rows(logger: CSVLogger) -> None:
    """Lightning's CSV writer deletes an existing metrics.csv when it starts: start it with the
    file set aside, put the file back and let the writer append to it under the same header."""
    earlier = Path(logger.log_dir) / "metrics.csv"
    aside = earlier.with_name("metrics.earlier.csv")  # also what a run killed right here leaves
    if earlier.is_file():
        os.replace(earlier, aside)
    with warnings.catch_warnings():  # "previous log files will be deleted": not this time
        warnings.filterwarnings("ignore", message="Experiment logs directory")
        writer = logger.experiment
    if aside.is_file():
        with aside.open(newline="") as file:
            writer.metrics_keys = sorted(next(csv.reader(file), []))
        os.replace(aside, earlier)


@contextmanager
def run_logger(cfg, output_dir: Path, continued: bool = False):
    """build_logger's logger, finished when the block ends: failed (exit code 1) if it raised."""
    logger = build_logger(cfg, output_dir, continued)
    try:
        yield logger
    except BaseException:
        finish(logger, exit_code=1)
        raise
    finish(logger)


def log_config(logger: Logger, cfg) -> None:
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))


def fairness_scalars(report) -> dict[str, float]:
    """Defined per-group metrics and criteria as flat `fairness/...` scalars."""
    scalars = {}
    for row in report.by_group.itertuples():
        for metric in ("balanced_accuracy", "tpr", "fpr", "selection_rate"):
            value = getattr(row, metric)
            if not np.isnan(value):
                scalars[f"fairness/{row.attribute}={row.group}/{metric}"] = float(value)
    for attribute, summary in report.attributes.items():
        for name, value in summary.items():
            if isinstance(value, float):
                scalars[f"fairness/{attribute}/{name}"] = value
    return scalars


def log_fairness(logger: Logger, cfg, report, plots: list[Path], predictions: pd.DataFrame) -> None:
    logger.log_metrics(fairness_scalars(report))
    if isinstance(logger, TensorBoardLogger):
        import matplotlib.image

        for path in plots:
            logger.experiment.add_image(f"fairness/{path.stem}", matplotlib.image.imread(path)[..., :3],
                                        dataformats="HWC")
    if isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log({"fairness/by_group": wandb.Table(dataframe=report.by_group),
                               **{f"fairness/{p.stem}": wandb.Image(str(p)) for p in plots}})
        if cfg.log_predictions:
            shared = predictions if cfg.log_subject_ids else predictions.drop(columns=["subject_id"])
            logger.experiment.log({"predictions": wandb.Table(dataframe=shared)})
    logger.save()


def finish(logger: Logger, exit_code: int = 0) -> None:
    """End the W&B run so that the next job of a sweep in this process starts its own; a
    non-zero exit code marks it failed."""
    if isinstance(logger, WandbLogger):
        import wandb

        wandb.finish(exit_code=exit_code)
