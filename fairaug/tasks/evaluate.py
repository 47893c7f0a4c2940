"""task=evaluate: a fairness report, a sweep summary, or a comparison of arms."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fairaug.errors import ConfigError, DataError
from fairaug.fairness.compare import compare
from fairaug.fairness.report import evaluate, write_report
from fairaug.fairness.sweep import summarise
from fairaug.runtime import RunDir

log = logging.getLogger(__name__)


def _predictions_file(path: str) -> Path:
    path = Path(path)
    path = RunDir(path).predictions if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"predictions not found: {path}")
    return path


def run(cfg) -> dict:
    chosen = [key for key in ("predictions", "sweep_dir", "compare") if cfg.get(key)]
    if len(chosen) != 1:
        raise ConfigError(
            "task=evaluate needs exactly one of predictions=<run dir>, sweep_dir=<dir>, "
            f"compare=[<dir>,<dir>]; got {chosen or 'none'}"
        )
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("sweep_dir"):
        summary = summarise(Path(cfg.sweep_dir), cfg.fairness)
        log.info("Summary of %d/%d jobs written to %s", summary["completed"], summary["jobs"], cfg.sweep_dir)
        return summary
    if cfg.get("compare"):
        table = compare(list(cfg.compare), cfg.get("compare_names"), output_dir, cfg.task.metric)
        log.info("Comparison written to %s", output_dir / "comparison.md")
        return {"comparison": table}
    source = _predictions_file(cfg.predictions)
    report = evaluate(pd.read_csv(source), cfg.fairness, int(cfg.seed))
    write_report(report, output_dir, title=f"Fairness report of {source}")
    log.info("Fairness report written to %s", RunDir(output_dir).report)
    return {"overall": report.overall, "attributes": report.attributes}
