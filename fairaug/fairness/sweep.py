"""Sweep summaries: every job of a Hydra multirun as mean ± std, plus pooled predictions.

Everything is derived from the sweep's long results table (`runs.results_table`, written as
results.csv): the summary is a groupby of it over the completed jobs, summary.csv its pivot to
one row per job. Hydra skips its end-of-multirun callback when any job raised, so the summary
is rebuilt when every job starts and ends instead (`fairaug.hydra_callbacks`): whatever
happens to the sweep, even a kill, its folder holds a summary that lists every job the sweep
launches with its status. `python -m fairaug task=evaluate sweep_dir=<dir>` rebuilds it at
any time.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from fairaug.errors import DataError
from fairaug.fairness.report import evaluate, write_report
from fairaug.fairness.runs import CRITERIA, JOB_COLUMNS, OVERALL, Job, find_jobs, results_table
from fairaug.io import write_csv, write_json, write_text
from fairaug.markdown import format_mean_std, format_value, markdown_table
from fairaug.runtime import RunDir

LOCK_FILE = ".summary.lock"


def per_job_table(results: pd.DataFrame) -> pd.DataFrame:
    """summary.csv: the long table pivoted to a row per job and a column per measurement
    (`metric`, `metric[attribute=group]`, `criterion[attribute]`), to read a job at a glance."""
    measured = results.dropna(subset=["metric"])
    names = [
        metric
        if attribute == OVERALL
        else f"{metric}[{attribute}]"
        if metric in CRITERIA
        else f"{metric}[{attribute}={group}]"
        for attribute, group, metric in zip(measured.attribute, measured.group, measured.metric)
    ]
    wide = measured.assign(column=names).pivot(index="job", columns="column", values="value")
    return results.drop_duplicates("job")[JOB_COLUMNS].join(wide[list(dict.fromkeys(names))], on="job")


def _stats(mean: float, std: float, n: int) -> dict:
    return {"mean": float(mean) if n else None, "std": float(std) if n > 1 else None, "n": int(n)}


def _fmt(stats: dict) -> str:
    return format_mean_std(stats["mean"], stats["std"])


def aggregate(results: pd.DataFrame) -> tuple[dict, list[dict], dict]:
    """Mean ± std over the completed jobs of each measurement: the overall metrics, the
    per-group metrics and each attribute's criteria, in the order the jobs list them."""
    completed = results[results.status == "completed"]
    stats = completed.groupby(["attribute", "group", "metric"], sort=False).value.agg(["mean", "std", "count"])
    metrics, by_group, criteria = {}, [], {}
    for (attribute, group, metric), row in zip(stats.index, stats.itertuples(index=False)):
        cell = _stats(*row)
        if attribute == OVERALL:
            metrics[metric] = cell
        elif metric in CRITERIA:
            criteria.setdefault(attribute, {})[metric] = cell
        else:
            by_group.append({"metric": metric, "attribute": attribute, "group": group, **cell})
    return metrics, by_group, criteria


def pooled_predictions(jobs: list[Job]) -> pd.DataFrame:
    files = [(j.name, RunDir(j.folder).predictions) for j in jobs if j.status == "completed"]
    frames = [pd.read_csv(path).assign(job=name) for name, path in files if path.exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@contextmanager
def _locked(sweep_dir: Path):
    """One summary writer at a time (jobs of a parallel launcher can end together)."""
    with open(sweep_dir / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def summarise(sweep_dir: Path, fairness_cfg) -> dict:
    """Write results.csv, summary.csv, summary.json, summary.md and pooled/ into the sweep folder."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"sweep directory not found: {sweep_dir}")
    with _locked(sweep_dir):
        return _summarise(sweep_dir, fairness_cfg)


def _summarise(sweep_dir: Path, fairness_cfg) -> dict:
    jobs = find_jobs(sweep_dir)
    results = results_table(jobs)
    metrics, by_group, criteria = aggregate(results)
    completed = sum(j.status == "completed" for j in jobs)
    summary = {
        "sweep_dir": str(sweep_dir),
        "jobs": len(jobs),
        "completed": completed,
        "failed": [
            {"job": j.name, "overrides": " ".join(j.overrides), "error": j.error} for j in jobs if j.status == "failed"
        ],
        "incomplete": [j.name for j in jobs if j.status == "incomplete"],
        "not_started": [j.name for j in jobs if j.status == "not started"],
        "metrics": metrics,
        "by_group": by_group,
        "fairness": criteria,
    }
    pooled = pooled_predictions(jobs)
    if not pooled.empty:
        pooled_cfg = OmegaConf.merge(fairness_cfg, {"n_boot": 0})  # runs are not independent samples
        report = evaluate(pooled, pooled_cfg)
        write_report(report, sweep_dir / "pooled", title=f"Pooled predictions of {completed} runs")
        summary["pooled"] = {"n": len(pooled), "overall": report.overall, "attributes": report.attributes}
    write_csv(results, sweep_dir / "results.csv")
    write_csv(per_job_table(results), sweep_dir / "summary.csv")
    write_json(summary, sweep_dir / "summary.json")
    write_text(summary_markdown(summary), sweep_dir / "summary.md")
    if any(g["metric"] == "balanced_accuracy" for g in by_group):
        from fairaug.fairness.plots import plot_sweep  # matplotlib only when there is something to plot

        plot_sweep(by_group, completed, sweep_dir)
    return summary


def status_line(summary: dict) -> str:
    """E.g. "2 of 4 jobs completed; job 2 incomplete, job 3 not started"."""
    others = [
        (state, names)
        for state, names in (
            ("failed", [f["job"] for f in summary["failed"]]),
            ("incomplete", summary["incomplete"]),
            ("not started", summary.get("not_started", [])),
        )
        if names
    ]
    details = ", ".join(f"job{'s' if len(names) > 1 else ''} {', '.join(names)} {state}" for state, names in others)
    return f"{summary['completed']} of {summary['jobs']} jobs completed" + (f"; {details}" if details else "")


def summary_markdown(summary: dict) -> str:
    lines = [
        f"# Sweep summary: {status_line(summary)}",
        "",
        f"`{summary['sweep_dir']}`; mean ± std over the completed runs.",
        "",
    ]
    if summary["failed"]:
        lines += ["## Failed jobs", ""]
        lines += markdown_table(
            ["job", "overrides", "error"],
            [[f["job"], f["overrides"], f["error"].splitlines()[-1] if f["error"] else ""] for f in summary["failed"]],
        )
        lines.append("")
    lines += ["## Overall", ""]
    lines += markdown_table(
        ["metric", "mean ± std", "runs"], [[m, _fmt(s), s["n"]] for m, s in summary["metrics"].items()]
    )
    groups = pd.DataFrame(summary["by_group"])
    for attribute in dict.fromkeys(groups.attribute) if not groups.empty else []:
        part = groups[groups.attribute == attribute]
        lines += ["", f"## {attribute}", ""]
        rows = []
        for group in dict.fromkeys(part.group):
            cells = {r.metric: {"mean": r.mean, "std": r.std, "n": r.n} for r in part[part.group == group].itertuples()}
            rows.append(
                [
                    group,
                    _fmt(cells["balanced_accuracy"]),
                    cells["balanced_accuracy"]["n"],
                    _fmt(cells["tpr"]),
                    _fmt(cells["fpr"]),
                    _fmt(cells["count"]),
                    _fmt(cells["positives"]),
                ]
            )
        lines += markdown_table(
            ["group", "balanced accuracy", "runs defined", "TPR", "FPR", "n", "heart failure"], rows
        )
        criteria = summary["fairness"].get(attribute, {})
        if criteria:
            lines += [""] + markdown_table(["criterion", "mean ± std"], [[c, _fmt(s)] for c, s in criteria.items()])
    if "pooled" in summary:
        pooled = summary["pooled"]
        lines += ["", f"## Pooled predictions ({pooled['n']} test predictions of all runs)", ""]
        lines += markdown_table(
            ["attribute", "worst group", "balanced accuracy gap", "equalized odds difference"],
            [
                [
                    a,
                    s["worst_group"],
                    format_value(s["balanced_accuracy_gap"]),
                    format_value(s["equalized_odds_difference"]),
                ]
                for a, s in pooled["attributes"].items()
            ],
        )
        lines += ["", "Per-group tables of the pooled predictions: `pooled/report.md`."]
    return "\n".join(lines) + "\n"


def finished(summary: dict) -> bool:
    """Every job of the sweep has ended (completed or failed)."""
    return summary["completed"] + len(summary["failed"]) == summary["jobs"]
