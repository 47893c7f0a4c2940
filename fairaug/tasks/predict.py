"""task=predict: score the subjects of any cohort with the classifier a task=classify run tested.

`checkpoint=<run folder>` names the run. Its view (`input`) and network are used whatever the
current config says, since the weights only fit them; `data` and `trainer` (where to run) come
from the current config. Scoring the run's own cohort leaves out the subjects it trained or
validated on, so the run's test split is scored exactly as the run scored it. Writes
predictions.csv (classify's columns), metrics.json, the fairness report, config.yaml (with the
run's input and model) and skipped.csv when subjects were left out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import pandas as pd
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from fairaug.data.cache import build_view_cache
from fairaug.data.datamodule import CachedViewDataset
from fairaug.data.sources import cohort_identity, load_cohort
from fairaug.data.views import check_view_available
from fairaug.errors import ConfigError, DataError
from fairaug.fairness.report import check_attributes, evaluate, write_report
from fairaug.io import write_csv, write_json
from fairaug.models.callbacks import progress_bars
from fairaug.models.predictions import predictions_table
from fairaug.models.tested import classifier_from, run_config
from fairaug.models.trainer import logged_test_metrics, trainer_arguments
from fairaug.run_folder import file_sha256, tested_checkpoint
from fairaug.runtime import RunDir, start_run

log = logging.getLogger(__name__)


def seen_subjects(trained, run_dir: Path, data_cfg) -> set[str]:
    """The subjects the run trained or validated on, if `data_cfg` is the run's own cohort."""
    if cohort_identity(trained.data) != cohort_identity(data_cfg):
        return set()
    split = pd.read_csv(RunDir(run_dir).split)
    return set(split.subject_id[split.split != "test"].astype(str))


def run(cfg) -> dict:
    if not cfg.get("checkpoint"):
        raise ConfigError("task=predict needs checkpoint=<a finished task=classify run folder>")
    run_dir = Path(cfg.checkpoint)
    try:
        trained = run_config(run_dir)
        checkpoint = tested_checkpoint(run_dir)  # before any cohort is generated or cached
    except ConfigError as error:
        raise ConfigError(f"checkpoint={run_dir}: {error}") from error
    check_attributes(cfg.fairness)
    folder = start_run(cfg)
    folder.write_config(OmegaConf.merge(cfg, {"input": trained.input, "model": trained.model}))

    cohort, problems = load_cohort(cfg.data)
    check_view_available(cohort, trained.input, cfg.data.name)
    cache = build_view_cache(cohort, trained.input, Path(cfg.paths.cache_dir) / "views", cfg.data.on_error)
    seen = seen_subjects(trained, run_dir, cfg.data)
    cached = cohort[cohort.subject_id.isin(set(cache.index.subject_id))]
    scored = cached[~cached.subject_id.isin(seen)].reset_index(drop=True)
    if scored.empty:
        raise DataError(
            f"no subject of data={cfg.data.name} is left to score: {len(cohort)} in the cohort, "
            f"{len(cached) - len(scored)} seen by {run_dir} in training or validation"
        )
    skipped = [*problems, *cache.skipped]
    if skipped:
        write_csv(pd.DataFrame(skipped, columns=["subject_id", "reason"]), folder.skipped)
    log.info(
        "Scoring %d subjects of data=%s with %s (input=%s, model=%s; %d seen in its training or validation left out)",
        len(scored),
        cfg.data.name,
        checkpoint,
        trained.input.name,
        trained.model.name,
        len(cached) - len(scored),
    )

    try:
        module = classifier_from(trained, checkpoint, cache.shape)
    except ConfigError as error:
        raise ConfigError(f"checkpoint={run_dir}: {error}") from error
    loader = DataLoader(
        CachedViewDataset(cache, scored), batch_size=int(cfg.loader.batch_size), num_workers=int(cfg.loader.num_workers)
    )
    arguments = trainer_arguments(cfg)
    trainer = L.Trainer(
        **arguments,
        logger=False,
        enable_checkpointing=False,
        callbacks=progress_bars(arguments),
        default_root_dir=str(folder.path),
    )
    trainer.test(module, dataloaders=loader, verbose=False)

    predictions = predictions_table(module, scored)
    metrics = logged_test_metrics(trainer)
    metrics.update(
        {
            "n_scored": len(predictions),
            "n_seen_left_out": len(cached) - len(scored),
            "checkpoint": str(checkpoint.resolve()),
            "checkpoint_sha256": file_sha256(checkpoint),
        }
    )
    write_csv(predictions, folder.predictions)
    report = evaluate(predictions, cfg.fairness, int(cfg.seed))
    write_report(report, folder.path, title=f"Fairness report: {run_dir} scoring data={cfg.data.name}")
    write_json(metrics, folder.metrics)
    log.info(
        "Scored %d subjects: %s", len(predictions), {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
    )
    return metrics
