"""The jobs of a sweep and what each measured, as one long table (the sweep's results.csv).

One row per job × attribute × group × metric, beside the job's name, status, overrides, seed
and fold: overall metrics under attribute `overall`, group `all`; an attribute's fairness
criteria under group `all`; a job that measured nothing (failed, incomplete, not started) as
one row without a metric. A summary is a groupby of it, a comparison of arms a pivot.

Every job the sweep launches is listed, expanded from multirun.yaml as Hydra's basic sweeper
does, with its status: completed, failed (with its error), incomplete (started, never
finished) or not started.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from fairaug.errors import DataError
from fairaug.fairness.report import CRITERIA as REPORT_CRITERIA
from fairaug.runtime import RunDir

log = logging.getLogger(__name__)

OVERALL, ALL = "overall", "all"  # the attribute of overall metrics; the group of overall metrics and criteria
OVERALL_METRICS = ("balanced_accuracy", "auroc", "accuracy", "f1", "precision", "recall", "specificity")
OVERALL_RATES = ("tpr", "fpr", "fnr", "selection_rate")  # from the run's fairness.json
GROUP_COLUMNS = ("balanced_accuracy", "tpr", "fpr", "selection_rate", "count", "positives")  # of by_group.csv
CRITERIA = ("balanced_accuracy_gap", *REPORT_CRITERIA)
JOB_COLUMNS = ["job", "status", "overrides", "seed", "fold"]
COLUMNS = [*JOB_COLUMNS, "attribute", "group", "metric", "value"]


@dataclass
class Job:
    name: str
    folder: Path
    status: str  # completed | failed | incomplete (started, never finished) | not started
    overrides: list[str]
    seed: int | None
    fold: int | None
    error: str = ""


def _job_order(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def launched_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """Each job's overrides, in job-number order, as Hydra's basic sweeper expands the sweep
    that multirun.yaml records; None when there is no multirun.yaml or another sweeper ran."""
    record = Path(sweep_dir) / "multirun.yaml"
    if not record.is_file():
        return None
    hydra = (yaml.safe_load(record.read_text()) or {}).get("hydra", {})
    sweeper = hydra.get("sweeper", {})
    if sweeper.get("_target_") != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
        return None
    arguments = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()] + hydra["overrides"]["task"]
    # glob() sweeps list config groups: only a running Hydra app has the loader that can
    loader = GlobalHydra.instance().hydra.config_loader if GlobalHydra.instance().is_initialized() else None
    try:
        batches = BasicSweeper.split_arguments(OverridesParser.create(loader).parse_overrides(arguments), None)
    except HydraException as error:
        log.warning("The jobs of %s could not be listed (%s): summarising its job folders only", sweep_dir, error)
        return None
    return [job for batch in batches for job in batch]


def _job(folder: Path) -> Job | None:
    """The job in `folder`; None while Hydra is still writing its records (a job that a
    parallel launcher is starting right now counts as not started yet)."""
    files = RunDir(folder)
    try:
        overrides, config = (yaml.safe_load(f.read_text()) for f in (files.hydra_overrides, files.hydra_config))
    except (FileNotFoundError, yaml.YAMLError):
        return None
    if overrides is None or config is None:  # created, not yet written
        return None
    status = json.loads(files.job_status.read_text()) if files.job_status.exists() else {}
    # without a status file (folders assembled by hand) results alone count; "started" results
    # are an earlier run's, left in a folder whose rerun never finished
    if files.metrics.exists() and status.get("status", "completed") == "completed":
        state = "completed"
    else:
        state = "failed" if status.get("status") == "failed" else "incomplete"
    return Job(folder.name, folder, state, overrides, config.get("seed"), config.get("fold"), status.get("error", ""))


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every launched job (job folders alone where the launched list is unknown)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"sweep directory not found: {sweep_dir}")
    folders = sorted((p for p in sweep_dir.iterdir() if RunDir(p).hydra.is_dir()), key=_job_order)
    jobs = [job for job in map(_job, folders) if job is not None]
    launched = launched_jobs(sweep_dir)
    if launched is not None:
        started = {job.name: job for job in jobs}
        # a folder whose overrides differ holds another sweep's job (the folder was reused)
        jobs = [
            started[str(num)]
            if str(num) in started and started[str(num)].overrides == overrides
            else Job(str(num), sweep_dir / str(num), "not started", overrides, None, None)
            for num, overrides in enumerate(launched)
        ]
    if not jobs:
        raise DataError(f"{sweep_dir} holds no Hydra job folders (sub-folders with .hydra/)")
    return jobs


def _measurements(folder: Path) -> list[tuple]:
    """(attribute, group, metric, value) of everything a completed job measured: overall first,
    then group by group as its by_group.csv lists them, then each attribute's criteria."""
    files = RunDir(folder)
    metrics = json.loads(files.metrics.read_text())
    rows = [(OVERALL, ALL, name, metrics.get(name)) for name in OVERALL_METRICS]
    report = json.loads(files.fairness.read_text()) if files.fairness.exists() else None
    if report is not None:
        rows += [(OVERALL, ALL, name, report["overall"].get(name)) for name in OVERALL_RATES]
    if files.by_group.exists():
        by_group = pd.read_csv(files.by_group, keep_default_na=False, na_values=[""])  # a group named "NA" stays
        rows += [
            (r.attribute, r.group, name, getattr(r, name)) for r in by_group.itertuples() for name in GROUP_COLUMNS
        ]
    if report is not None:
        rows += [
            (attribute, ALL, name, criteria.get(name))
            for attribute, criteria in report["attributes"].items()
            for name in CRITERIA
        ]
    return rows


def results_table(jobs: list[Job]) -> pd.DataFrame:
    """The long table of `jobs`, in job order (see the module's docstring)."""
    rows = []
    for job in jobs:
        about = (job.name, job.status, " ".join(job.overrides), job.seed, job.fold)
        measured = _measurements(job.folder) if job.status == "completed" else []
        rows += [(*about, *m) for m in measured] or [(*about, None, None, None, None)]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"seed": "Int64", "fold": "Int64", "value": float})
