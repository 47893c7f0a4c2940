"""Sweep summaries: every job of a Hydra multirun as mean ± std, plus pooled predictions.

Hydra skips its end-of-multirun callback when any job raised, so the summary is rebuilt
when every job starts and ends instead (`SweepSummaryCallback`): whatever happens to the
sweep, even a kill, its folder holds a summary that lists every job the sweep launches
(expanded from multirun.yaml as Hydra's basic sweeper does) with its status: completed,
failed (with its error), incomplete (started, never finished) or not started.
`python -m fairaug task=evaluate sweep_dir=<dir>` rebuilds it at any time.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import OmegaConf

from fairaug.errors import DataError
from fairaug.fairness.markdown import format_mean_std, format_value, markdown_table
from fairaug.fairness.report import CRITERIA as REPORT_CRITERIA
from fairaug.fairness.report import evaluate, write_report
from fairaug.io import write_csv, write_json, write_text

log = logging.getLogger(__name__)

STATUS_FILE = "job_status.json"
LOCK_FILE = ".summary.lock"
OVERALL_METRICS = ("balanced_accuracy", "auroc", "accuracy", "f1", "precision", "recall", "specificity")
OVERALL_RATES = ("tpr", "fpr", "fnr", "selection_rate")  # from the run's fairness.json
GROUP_COLUMNS = ("balanced_accuracy", "tpr", "fpr", "selection_rate", "count", "positives")
CRITERIA = ("balanced_accuracy_gap", *REPORT_CRITERIA)


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


def _job(folder: Path) -> Job:
    overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
    config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text()) or {}
    status_file = folder / STATUS_FILE
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    # without a status file (folders assembled by hand) results alone count; "started" results
    # are an earlier run's, left in a folder whose rerun never finished
    if (folder / "metrics.json").exists() and status.get("status", "completed") == "completed":
        state = "completed"
    else:
        state = "failed" if status.get("status") == "failed" else "incomplete"
    return Job(folder.name, folder, state, overrides, config.get("seed"), config.get("fold"), status.get("error", ""))


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every launched job (job folders alone where the launched list is unknown)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"sweep directory not found: {sweep_dir}")
    folders = sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=_job_order)
    jobs = [_job(folder) for folder in folders]
    launched = launched_jobs(sweep_dir)
    if launched is not None:
        started = {job.name: job for job in jobs}
        # a folder whose overrides differ holds another sweep's job (the folder was reused)
        jobs = [started[str(num)] if str(num) in started and started[str(num)].overrides == overrides
                else Job(str(num), sweep_dir / str(num), "not started", overrides, None, None)
                for num, overrides in enumerate(launched)]
    if not jobs:
        raise DataError(f"{sweep_dir} holds no Hydra job folders (sub-folders with .hydra/)")
    return jobs


def job_row(job: Job) -> dict:
    """One row of summary.csv: the job, its overrides and every metric it measured."""
    row = {"job": job.name, "status": job.status, "overrides": " ".join(job.overrides), "seed": job.seed,
           "fold": job.fold}
    if job.status != "completed":
        return row
    metrics = json.loads((job.folder / "metrics.json").read_text())
    row.update({name: metrics.get(name) for name in OVERALL_METRICS})
    by_group = job.folder / "by_group.csv"
    if by_group.exists():
        for r in pd.read_csv(by_group, keep_default_na=False, na_values=[""]).itertuples():
            for column in GROUP_COLUMNS:
                row[f"{column}[{r.attribute}={r.group}]"] = getattr(r, column)
    fairness = job.folder / "fairness.json"
    if fairness.exists():
        report = json.loads(fairness.read_text())
        for name in OVERALL_RATES:
            row[name] = report["overall"].get(name)
        for attribute, summary in report["attributes"].items():
            for criterion in CRITERIA:
                row[f"{criterion}[{attribute}]"] = summary.get(criterion)
    return row


def _mean_std(values: pd.Series) -> dict:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return {"mean": float(values.mean()) if len(values) else None,
            "std": float(values.std(ddof=1)) if len(values) > 1 else None, "n": int(len(values))}


def _fmt(stats: dict) -> str:
    return format_mean_std(stats["mean"], stats["std"])


GROUP_KEY = re.compile(r"^(?P<metric>\w+)\[(?P<attribute>[^=\]]+)=(?P<group>[^\]]*)\]$")
CRITERION_KEY = re.compile(r"^(?P<metric>\w+)\[(?P<attribute>[^=\]]+)\]$")


def pooled_predictions(jobs: list[Job]) -> pd.DataFrame:
    frames = [pd.read_csv(j.folder / "predictions.csv").assign(job=j.name)
              for j in jobs if j.status == "completed" and (j.folder / "predictions.csv").exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@contextmanager
def _locked(sweep_dir: Path):
    """One summary writer at a time (jobs of a parallel launcher can end together)."""
    with open(sweep_dir / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def summarise(sweep_dir: Path, fairness_cfg) -> dict:
    """Write summary.csv, summary.json, summary.md and pooled/ into the sweep folder."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"sweep directory not found: {sweep_dir}")
    with _locked(sweep_dir):
        return _summarise(sweep_dir, fairness_cfg)


def _summarise(sweep_dir: Path, fairness_cfg) -> dict:
    jobs = find_jobs(sweep_dir)
    table = pd.DataFrame([job_row(j) for j in jobs])
    completed = table[table.status == "completed"]
    metrics = {m: _mean_std(completed[m]) for m in (*OVERALL_METRICS, *OVERALL_RATES) if m in completed}
    by_group, criteria = [], {}
    for column in table.columns:
        if match := GROUP_KEY.match(column):
            by_group.append({**match.groupdict(), **_mean_std(completed[column])})
        elif match := CRITERION_KEY.match(column):
            criteria.setdefault(match["attribute"], {})[match["metric"]] = _mean_std(completed[column])
    summary = {
        "sweep_dir": str(sweep_dir), "jobs": len(jobs), "completed": int(len(completed)),
        "failed": [{"job": j.name, "overrides": " ".join(j.overrides), "error": j.error}
                   for j in jobs if j.status == "failed"],
        "incomplete": [j.name for j in jobs if j.status == "incomplete"],
        "not_started": [j.name for j in jobs if j.status == "not started"],
        "metrics": metrics, "by_group": by_group, "fairness": criteria,
    }
    pooled = pooled_predictions(jobs)
    if not pooled.empty:
        pooled_cfg = OmegaConf.merge(fairness_cfg, {"n_boot": 0})  # runs are not independent samples
        report = evaluate(pooled, pooled_cfg)
        write_report(report, sweep_dir / "pooled", title=f"Pooled predictions of {len(completed)} runs")
        summary["pooled"] = {"n": len(pooled), "overall": report.overall, "attributes": report.attributes}
    write_csv(table, sweep_dir / "summary.csv")
    write_json(summary, sweep_dir / "summary.json")
    write_text(summary_markdown(summary), sweep_dir / "summary.md")
    if any(g["metric"] == "balanced_accuracy" for g in by_group):
        from fairaug.fairness.plots import plot_sweep  # matplotlib only when there is something to plot

        plot_sweep(by_group, int(len(completed)), sweep_dir)
    return summary


def status_line(summary: dict) -> str:
    """E.g. "2 of 4 jobs completed; job 2 incomplete, job 3 not started"."""
    others = [(state, names) for state, names in (("failed", [f["job"] for f in summary["failed"]]),
                                                  ("incomplete", summary["incomplete"]),
                                                  ("not started", summary.get("not_started", []))) if names]
    details = ", ".join(f"job{'s' if len(names) > 1 else ''} {', '.join(names)} {state}" for state, names in others)
    return f"{summary['completed']} of {summary['jobs']} jobs completed" + (f"; {details}" if details else "")


def summary_markdown(summary: dict) -> str:
    lines = [f"# Sweep summary: {status_line(summary)}", "",
             f"`{summary['sweep_dir']}`; mean ± std over the completed runs.", ""]
    if summary["failed"]:
        lines += ["## Failed jobs", ""]
        lines += markdown_table(["job", "overrides", "error"],
                                [[f["job"], f["overrides"], f["error"].splitlines()[-1] if f["error"] else ""]
                                 for f in summary["failed"]])
        lines.append("")
    lines += ["## Overall", ""]
    lines += markdown_table(["metric", "mean ± std", "runs"],
                            [[m, _fmt(s), s["n"]] for m, s in summary["metrics"].items()])
    groups = pd.DataFrame(summary["by_group"])
    for attribute in dict.fromkeys(groups.attribute) if not groups.empty else []:
        part = groups[groups.attribute == attribute]
        lines += ["", f"## {attribute}", ""]
        rows = []
        for group in dict.fromkeys(part.group):
            cells = {r.metric: {"mean": r.mean, "std": r.std, "n": r.n}
                     for r in part[part.group == group].itertuples()}
            rows.append([group, _fmt(cells["balanced_accuracy"]), cells["balanced_accuracy"]["n"],
                         _fmt(cells["tpr"]), _fmt(cells["fpr"]), _fmt(cells["count"]), _fmt(cells["positives"])])
        lines += markdown_table(["group", "balanced accuracy", "runs defined", "TPR", "FPR", "n", "heart failure"],
                                rows)
        criteria = summary["fairness"].get(attribute, {})
        if criteria:
            lines += [""] + markdown_table(["criterion", "mean ± std"], [[c, _fmt(s)] for c, s in criteria.items()])
    if "pooled" in summary:
        pooled = summary["pooled"]
        lines += ["", f"## Pooled predictions ({pooled['n']} test predictions of all runs)", ""]
        lines += markdown_table(["attribute", "worst group", "balanced accuracy gap", "equalized odds difference"],
                                [[a, s["worst_group"], format_value(s["balanced_accuracy_gap"]),
                                  format_value(s["equalized_odds_difference"])]
                                 for a, s in pooled["attributes"].items()])
        lines += ["", "Per-group tables of the pooled predictions: `pooled/report.md`."]
    return "\n".join(lines) + "\n"


class SweepSummaryCallback(Callback):
    """Records each job's start and outcome, refreshing the sweep summary at both."""

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
        write_json(status, Path(HydraConfig.get().runtime.output_dir) / STATUS_FILE)
        try:
            return summarise(Path(HydraConfig.get().sweep.dir), config.fairness)
        except Exception:  # the summary must never take a job down with it
            log.exception("Could not refresh the sweep summary")
            return None


def finished(summary: dict) -> bool:
    """Every job of the sweep has ended (completed or failed)."""
    return summary["completed"] + len(summary["failed"]) == summary["jobs"]
