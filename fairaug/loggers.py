"""Experiment loggers (`logger=csv | tensorboard | wandb`) and what every run logs to them.

Every logger gets the resolved config as hyperparameters, the training curves, and at the
end the fairness report: per-group metrics and criteria as scalars (TensorBoard: the final
metrics in its HParams tab), and for TensorBoard and
W&B the report's plots (W&B also the per-group table). Jobs of one sweep share a W&B group
(the sweep folder), each run named by its job's overrides; local paths are not sent unless
`logger.log_paths=true`, subject ids never unless `logger.log_subject_ids=true`. A run that
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


LOCAL_PATH = "<local path>"
NOT_A_NAME = ("hydra.", "paths.", "task=")  # overrides that say where (or the job type): not in run names


def run_name(overrides: list[str], output_dir: Path) -> str:
    """A W&B run's name: its job's overrides (`input=edes seed=3`), or the run folder's name."""
    named = [o for o in overrides if not o.startswith(NOT_A_NAME)]
    return " ".join(named) or output_dir.name


def _job_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def without_local_paths(value):
    """`value` with every string that is a local path (absolute or ~) replaced by LOCAL_PATH."""
    if isinstance(value, dict):
        return {key: without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_local_paths(item) for item in value]
    if isinstance(value, str) and (value.startswith(("/", "~")) or Path(value).is_absolute()):
        return LOCAL_PATH
    return value


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
        return WandbLogger(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group or sweep,
            name=run_name(_job_overrides(), output_dir),
            save_dir=str(output_dir),
            mode=cfg.mode,
            job_type="classify",
        )
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
        writer.metrics_keys = _columns(aside)
        os.replace(aside, earlier)


def _columns(written: Path) -> list[str]:
    """The header of a metrics.csv, as Lightning's CSV writer keeps its keys."""
    with written.open(newline="") as file:
        return sorted(next(csv.reader(file), []))


def adopt_written_metrics(logger) -> None:
    """A CSV logger that another process wrote through (a spawned DDP worker) learns the columns
    its metrics.csv already has, so later rows extend that file instead of failing on it."""
    if isinstance(logger, CSVLogger):
        written = Path(logger.log_dir) / "metrics.csv"
        if written.is_file():
            logger.experiment.metrics_keys = _columns(written)


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
    params = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(logger, WandbLogger) and not cfg.logger.get("log_paths", False):
        params = without_local_paths(params)  # W&B is a third party: where the data lies stays here
    logger.log_hyperparams(params)


def log_final_metrics(logger: Logger, cfg, metrics: dict[str, float]) -> None:
    """TensorBoard's HParams tab: this run's settings beside its final (test) metrics."""
    if isinstance(logger, TensorBoardLogger):
        final = {f"hparams/{name}": value for name, value in metrics.items() if isinstance(value, float)}
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True), metrics=final)


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
            logger.experiment.add_image(
                f"fairness/{path.stem}", matplotlib.image.imread(path)[..., :3], dataformats="HWC"
            )
    if isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log(
            {
                "fairness/by_group": wandb.Table(dataframe=report.by_group),
                **{f"fairness/{p.stem}": wandb.Image(str(p)) for p in plots},
            }
        )
        if cfg.log_predictions:
            shared = predictions if cfg.log_subject_ids else predictions.drop(columns=["subject_id"])
            logger.experiment.log({"predictions": wandb.Table(dataframe=shared)})
    logger.save()


def log_sweep_summary(cfg, sweep_dir: Path, summary: dict) -> None:
    """The finished sweep's summary as its own W&B run in the sweep's group: the per-job table,
    the summary plot and every mean ± std as summary values; the artifact adds the long
    results table."""
    import wandb

    group = cfg.group or _sweep_group() or f"{sweep_dir.parent.name}/{sweep_dir.name}"
    tables = {
        name: pd.read_csv(sweep_dir / name, keep_default_na=False, na_values=[""])
        for name in ("summary.csv", "results.csv")
    }
    if not cfg.get("log_paths", False):
        for table in tables.values():
            table["overrides"] = table.overrides.astype(str).str.replace(r"=[/~]\S*", f"={LOCAL_PATH}", regex=True)
    run = wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        group=group,
        job_type="sweep_summary",
        name="sweep summary",
        dir=str(sweep_dir),
        mode=cfg.mode,
    )
    try:
        artifact = wandb.Artifact(
            "sweep-summary",
            type="sweep_summary",
            description=f"{summary['completed']} of {summary['jobs']} jobs completed",
        )
        for name, table in tables.items():
            with artifact.new_file(name) as file:  # the tables as logged: local paths left out
                table.to_csv(file, index=False)
        logged = {"sweep/jobs": wandb.Table(dataframe=tables["summary.csv"])}
        plot = sweep_dir / "summary_balanced_accuracy.png"
        if plot.exists():
            logged["sweep/balanced_accuracy_by_subgroup"] = wandb.Image(str(plot))
            artifact.add_file(str(plot))
        run.log(logged)
        values = {
            f"sweep/{name}/{stat}": value
            for name, stats in summary["metrics"].items()
            for stat, value in stats.items()
            if value is not None
        }
        values.update(
            {
                f"sweep/{g['metric']}[{g['attribute']}={g['group']}]/{stat}": g[stat]
                for g in summary["by_group"]
                for stat in ("mean", "std")
                if g[stat] is not None
            }
        )
        run.summary.update({**values, "sweep/completed": summary["completed"], "sweep/jobs": summary["jobs"]})
        run.log_artifact(artifact)
    finally:
        run.finish()


def finish(logger: Logger, exit_code: int = 0) -> None:
    """Flush and close the logger: what a task logs after Lightning's own finalize (the fairness
    report, TensorBoard's final hparams) reaches disk too. End the W&B run so that the next job
    of a sweep in this process starts its own; a non-zero exit code marks it failed."""
    logger.finalize("success" if exit_code == 0 else "failed")
    if isinstance(logger, WandbLogger):
        import wandb

        wandb.finish(exit_code=exit_code)
