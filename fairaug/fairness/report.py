"""Fairness report of one set of predictions: per group, per attribute, with intervals.

Built on fairlearn's MetricFrame (per group, `difference()`, `ratio()`, bootstrap intervals
with `n_boot`), with metrics that are NaN where undefined. Fairness criteria follow
fairlearn's definitions: demographic parity compares selection rates, equal opportunity
true-positive rates, equalized odds the worse of the TPR and FPR gaps (difference) or
ratios; each between the groups where the metric exists.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from fairaug.data.cohort import ATTRIBUTES, is_recorded
from fairaug.data.groups import BMI_GROUPS
from fairaug.errors import ConfigError, DataError
from fairaug.fairness.metrics import GROUP_METRICS, undefined_reason
from fairaug.fairness.predictions import SCORED_COLUMNS
from fairaug.io import write_csv, write_json, write_text
from fairaug.markdown import format_value, markdown_table

BY_GROUP_COLUMNS = [
    "attribute",
    "group",
    *GROUP_METRICS,
    "balanced_accuracy_ci_low",
    "balanced_accuracy_ci_high",
    "note",
]
KNOWN_GROUPS = {"sex": ["female", "male"], "bmi_group": list(BMI_GROUPS)}
INTERVAL_METRICS = ("balanced_accuracy", "selection_rate", "tpr")
CRITERIA = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)


@dataclass
class FairnessReport:
    overall: dict
    by_group: pd.DataFrame
    attributes: dict
    settings: dict = field(default_factory=dict)
    not_recorded: list[str] = field(default_factory=list)  # asked for, but unknown for every subject


def check_attributes(cfg) -> None:
    """Fail on an attribute name that no cohort has, before anything is trained."""
    asked = [*cfg.attributes, *(a for combo in cfg.intersections for a in combo)]
    unknown = sorted({a for a in asked if a not in ATTRIBUTES})
    if unknown:
        raise ConfigError(f"fairness.attributes/intersections name unknown attribute(s) {unknown}; known: {ATTRIBUTES}")


def attribute_columns(predictions: pd.DataFrame, cfg) -> tuple[dict[str, pd.Series], list[str]]:
    """Sensitive feature per reported attribute, intersections joined as 'female×obese'; and
    the attributes left out because the data records them for no subject (ACDC has no sex)."""
    columns, not_recorded = {}, []
    for attribute in cfg.attributes:
        if attribute not in predictions:
            raise DataError(f"predictions have no '{attribute}' column (fairness.attributes)")
        if not is_recorded(predictions[attribute]):
            not_recorded.append(attribute)
            continue
        columns[attribute] = predictions[attribute].astype(str)
    for combo in cfg.intersections:
        missing = [a for a in combo if a not in predictions]
        if len(combo) < 2 or missing:
            raise ConfigError(f"fairness.intersections entry {list(combo)} needs two or more known columns")
        absent = [a for a in combo if not is_recorded(predictions[a])]
        if absent:
            not_recorded.append("×".join(combo))
            continue
        columns["×".join(combo)] = predictions[list(combo)].astype(str).agg("×".join, axis=1)
    return columns, not_recorded


def _defined(pick, *values) -> float:
    values = [v for v in values if not np.isnan(v)]
    return pick(values) if values else float("nan")


def _criteria(frame: MetricFrame | None) -> dict:
    """The criteria between groups; undefined (NaN) with fewer than two groups to compare."""
    if frame is None or len(frame.by_group) < 2:
        return dict.fromkeys(CRITERIA, float("nan"))
    difference, ratio = frame.difference(), frame.ratio()
    # Equalized odds needs both rates across at least two groups; otherwise it is undefined.
    odds_defined = frame.by_group[["tpr", "fpr"]].notna().sum().min() >= 2
    return {
        "demographic_parity_difference": difference["selection_rate"],
        "demographic_parity_ratio": ratio["selection_rate"],
        "equal_opportunity_difference": difference["tpr"],
        "equal_opportunity_ratio": ratio["tpr"],
        "equalized_odds_difference": _defined(max, difference["tpr"], difference["fpr"])
        if odds_defined
        else float("nan"),
        "equalized_odds_ratio": _defined(min, ratio["tpr"], ratio["fpr"]) if odds_defined else float("nan"),
    }


def _clean(value):
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return float(value) if isinstance(value, (np.floating, np.integer)) else value


def _attribute_report(attribute: str, feature: pd.Series, y_true, y_pred, cfg, seed: int) -> tuple[list, dict]:
    """by_group rows and criteria of one attribute. Groups under `fairness.min_count` test
    subjects are reported but left out of the criteria, worst group and gap."""
    frame = MetricFrame(metrics=GROUP_METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=feature)
    groups = list(dict.fromkeys([*KNOWN_GROUPS.get(attribute, []), *sorted(frame.by_group.index)]))
    by_group = frame.by_group.reindex(groups)
    by_group[["count", "positives"]] = by_group[["count", "positives"]].fillna(0)
    large = feature.isin(by_group.index[by_group["count"] >= cfg.min_count]).to_numpy()
    eligible = (
        MetricFrame(
            metrics=GROUP_METRICS, y_true=y_true[large], y_pred=y_pred[large], sensitive_features=feature[large]
        )
        if large.any()
        else None
    )
    low = high = pd.Series(np.nan, index=groups)
    intervals = {}
    if cfg.n_boot and large.any():  # bootstrap only the metrics that get intervals: resampling is slow
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN groups inside bootstrap samples
            boot = MetricFrame(
                metrics={k: GROUP_METRICS[k] for k in INTERVAL_METRICS},
                y_true=y_true[large],
                y_pred=y_pred[large],
                sensitive_features=feature[large],
                n_boot=int(cfg.n_boot),
                ci_quantiles=[(1 - cfg.ci) / 2, 1 - (1 - cfg.ci) / 2],
                random_state=seed,
            )
            low, high = (ci["balanced_accuracy"].reindex(groups) for ci in boot.by_group_ci)
            low_diff, high_diff = boot.difference_ci()
        intervals = {
            f"{name}_ci": [_clean(low_diff[metric]), _clean(high_diff[metric])]
            for name, metric in (
                ("balanced_accuracy_gap", "balanced_accuracy"),
                ("demographic_parity_difference", "selection_rate"),
                ("equal_opportunity_difference", "tpr"),
            )
        }
    notes = {}
    for group in groups:
        count, positives = int(by_group.loc[group, "count"]), int(by_group.loc[group, "positives"])
        note = undefined_reason(count, positives)
        if 0 < count < cfg.min_count:
            note = "; ".join(
                filter(None, [f"fewer than {cfg.min_count} test subjects: left out of the criteria", note])
            )
        notes[group] = note
    rows = [
        {
            "attribute": attribute,
            "group": g,
            **by_group.loc[g].to_dict(),
            "balanced_accuracy_ci_low": low[g],
            "balanced_accuracy_ci_high": high[g],
            "note": notes[g],
        }
        for g in groups
    ]
    accuracy = eligible.by_group["balanced_accuracy"].dropna() if eligible is not None else pd.Series(dtype=float)
    summary = {name: _clean(value) for name, value in _criteria(eligible).items()}
    summary.update(
        {
            "worst_group": accuracy.idxmin() if len(accuracy) else None,
            "worst_balanced_accuracy": _clean(accuracy.min()) if len(accuracy) else None,
            "best_group": accuracy.idxmax() if len(accuracy) else None,
            "balanced_accuracy_gap": _clean(accuracy.max() - accuracy.min()) if len(accuracy) > 1 else None,
            "excluded_groups": {g: note for g, note in notes.items() if note and g not in accuracy.index},
            **intervals,
        }
    )
    return rows, summary


def evaluate(predictions: pd.DataFrame, cfg, seed: int = 0) -> FairnessReport:
    """Per-group metrics and fairness criteria for every attribute in `cfg` (the fairness group)."""
    missing = [c for c in SCORED_COLUMNS if c not in predictions]
    if missing:
        raise DataError(f"predictions lack column(s) {missing}")
    if predictions.empty:
        raise DataError("predictions are empty: nothing to evaluate")
    y_true, y_pred = predictions["label"].to_numpy(int), predictions["pred"].to_numpy(int)
    overall = {name: _clean(metric(y_true, y_pred)) for name, metric in GROUP_METRICS.items()}
    rows, attributes = [], {}
    columns, not_recorded = attribute_columns(predictions, cfg)
    for attribute, feature in columns.items():
        attribute_rows, attributes[attribute] = _attribute_report(attribute, feature, y_true, y_pred, cfg, seed)
        rows += attribute_rows
    by_group = pd.DataFrame(rows, columns=BY_GROUP_COLUMNS)
    settings = {"n_boot": int(cfg.n_boot), "ci": float(cfg.ci), "min_count": int(cfg.min_count), "n": len(predictions)}
    return FairnessReport(overall, by_group, attributes, settings, not_recorded)


def report_markdown(report: FairnessReport, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"{report.settings['n']} subjects; intervals: {report.settings['ci']:.0%} bootstrap "
        f"({report.settings['n_boot']} resamples).",
        "",
        "## Overall",
        "",
    ]
    lines += markdown_table(["metric", "value"], [[k, format_value(v)] for k, v in report.overall.items()])
    if report.not_recorded:
        lines += ["", f"Not reported: {', '.join(report.not_recorded)} (not recorded for any subject of this data)."]
    for attribute, summary in report.attributes.items():
        table = report.by_group[report.by_group.attribute == attribute]
        lines += ["", f"## {attribute}", ""]
        rows = [
            [
                r.group,
                f"{format_value(r.balanced_accuracy)} [{format_value(r.balanced_accuracy_ci_low)}, "
                f"{format_value(r.balanced_accuracy_ci_high)}]",
                format_value(r.tpr),
                format_value(r.fpr),
                format_value(r.selection_rate),
                f"{int(r.count)}",
                f"{int(r.positives)}",
                r.note,
            ]
            for r in table.itertuples()
        ]
        lines += markdown_table(
            ["group", "balanced accuracy [CI]", "TPR", "FPR", "selection rate", "n", "heart failure", "note"], rows
        )
        lines += [""] + markdown_table(
            ["criterion", "value"],
            [[k, format_value(summary[k])] for k in ("balanced_accuracy_gap", "worst_group", *CRITERIA)],
        )
    return "\n".join(lines) + "\n"


def write_report(report: FairnessReport, output_dir: Path, title: str = "Fairness report") -> list[Path]:
    """by_group.csv, fairness.json, report.md and one plot per attribute; returns the plots."""
    from fairaug.fairness.plots import plot_balanced_accuracy
    from fairaug.runtime import RunDir

    output_dir = Path(output_dir)
    files = RunDir(output_dir)
    write_csv(report.by_group, files.by_group)
    write_json(
        {
            "overall": report.overall,
            "attributes": report.attributes,
            "settings": report.settings,
            "not_recorded": report.not_recorded,
        },
        files.fairness,
    )
    write_text(report_markdown(report, title), files.report)
    return [
        plot_balanced_accuracy(
            report.by_group[report.by_group.attribute == attribute], attribute, output_dir, report.settings["ci"]
        )
        for attribute in report.attributes
    ]
