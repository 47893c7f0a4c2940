"""Hydra callbacks (conf/hydra/default.yaml): what the entry point does around every run.

Hydra turns a callback's exceptions into warnings and skips its end-of-multirun callback when
a job raised, so each callback here decides for itself what may fail and how.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from fairaug.errors import ConfigError
from fairaug.fairness.sweep import finished, summarise
from fairaug.io import write_json
from fairaug.run_folder import claim, release
from fairaug.runtime import RunDir

log = logging.getLogger(__name__)


class RunFolderCallback(Callback):
    """Claims the run or sweep folder before Hydra writes .hydra/, its log or multirun.yaml
    into it. A refusal exits: as a warning it would let the second run write anyway."""

    def on_run_start(self, config, **kwargs) -> None:
        self._claim(config.hydra.run.dir)

    def on_run_end(self, config, **kwargs) -> None:
        release(config.hydra.run.dir)

    def on_multirun_start(self, config, **kwargs) -> None:
        self._claim(config.hydra.sweep.dir)

    def on_multirun_end(self, config, **kwargs) -> None:
        release(config.hydra.sweep.dir)

    @staticmethod
    def _claim(folder) -> None:
        try:
            claim(folder)
        except ConfigError as error:
            raise SystemExit(f"Error: {error}") from error


class SweepSummaryCallback(Callback):
    """Records each job's start and outcome, refreshing the sweep summary of a task=classify sweep
    at both: a sweep that fails or is killed still has a summary listing every job."""

    def on_job_start(self, config, **kwargs) -> None:
        self._record(config, {"status": "started"})

    def on_job_end(self, config, job_return, **kwargs) -> None:
        status = {"status": "completed" if job_return.status.name == "COMPLETED" else "failed"}
        if status["status"] == "failed":
            try:
                job_return.return_value  # re-raises the job's exception
            except BaseException as error:  # noqa: BLE001 - recorded, not handled
                status["error"] = "".join(traceback.format_exception(error))
        summary = self._record(config, status)
        if summary and finished(summary) and config.logger.name == "wandb":
            try:
                from fairaug.loggers import log_sweep_summary

                log_sweep_summary(config.logger, Path(summary["sweep_dir"]), summary)
            except Exception:  # nor may its upload
                log.exception("Could not log the sweep summary to W&B")

    @staticmethod
    def _record(config, status: dict) -> dict | None:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
        write_json(status, RunDir(HydraConfig.get().runtime.output_dir).job_status)
        if config.task.name != "classify":  # the summary pools classifier results; other sweeps have none
            return None
        try:
            return summarise(Path(HydraConfig.get().sweep.dir), config.fairness)
        except Exception:  # the summary must never take a job down with it
            log.exception("Could not refresh the sweep summary")
            return None
