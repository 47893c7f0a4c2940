"""Arms side by side: per subgroup, mean ± std per sweep, paired differences and tests.

Runs are paired across arms by (seed, fold): the same split, the same initialisation seed,
only the arm differs. The test is the Wilcoxon signed-rank test over the paired differences
(two-sided), as in the paper's comparison of augmented against real-only training; q-values
correct for testing many subgroups, and too few pairs for any significance are said so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, wilcoxon

from fairaug.errors import ConfigError
from fairaug.fairness.plots import plot_arms
from fairaug.fairness.runs import CRITERIA, OVERALL, find_jobs, results_table
from fairaug.io import write_csv, write_text
from fairaug.markdown import format_mean_std, format_value, markdown_table
from fairaug.runtime import RunDir

log = logging.getLogger(__name__)

SIGNIFICANCE = 0.05  # below which a comparison needs enough pairs to be able to reach


def _splits(jobs) -> pd.Series:
    """The split each completed job trained on (its metrics.json's split_hash), by (seed, fold)."""
    hashes = {}
    for job in jobs:
        if job.status == "completed":
            recorded = json.loads(RunDir(job.folder).metrics.read_text()).get("split_hash")
            key = (-1 if job.seed is None else job.seed, -1 if job.fold is None else job.fold)
            hashes[key] = recorded
    return pd.Series(hashes, dtype=object)


def _check_same_splits(splits: dict[str, pd.Series], baseline: str) -> None:
    """Paired runs must differ in their arm only: the same (seed, fold) on another split is refused."""
    for name, hashes in splits.items():
        common = hashes.index.intersection(splits[baseline].index)
        differ = [key for key in common if hashes[key] != splits[baseline][key]]
        if differ and name != baseline:
            seed, fold = differ[0]
            raise ConfigError(
                f"compare: {name}'s run (seed {seed}, fold {fold}) trained on another split than {baseline}'s "
                f"({len(differ)} of {len(common)} pairs differ): pair arms trained on the same split, e.g. with "
                "the same fixed split.seed in every arm"
            )


def _runs(sweep_dir: Path, metric: str) -> tuple[pd.DataFrame, pd.Series]:
    """`metric` overall and per subgroup, a row per completed job keyed by its (seed, fold): the
    sweep's long table pivoted; and the split each job trained on."""
    jobs = find_jobs(sweep_dir)
    results = results_table(jobs)
    completed = results[results.status == "completed"].fillna({"seed": -1, "fold": -1})
    if completed.empty:
        raise ConfigError(f"{sweep_dir} has no completed job to compare")
    if completed.drop_duplicates("job")[["seed", "fold"]].duplicated().any():
        raise ConfigError(f"{sweep_dir} has several runs with the same (seed, fold): they cannot be paired")
    values = completed[(completed.metric == metric) & ~completed.metric.isin(CRITERIA)]  # criteria have no group
    if values.empty:
        raise ConfigError(f"{sweep_dir} measured no {metric} overall or per subgroup (task.metric)")
    labels = [
        OVERALL if attribute == OVERALL else f"{attribute}={group}"
        for attribute, group in zip(values.attribute, values.group)
    ]
    table = values.assign(label=labels).pivot(index=["seed", "fold"], columns="label", values="value")
    return table[list(dict.fromkeys(labels))], _splits(jobs)  # the jobs' order: overall first, then groups


def smallest_p(pairs: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give over `pairs` differences:
    every difference of the same sign."""
    return 2.0 / 2.0**pairs


def _paired_test(differences: pd.Series) -> tuple[float, str]:
    differences = differences.dropna()
    if len(differences) < 2:
        return float("nan"), "fewer than 2 paired runs"
    if np.allclose(differences, 0):
        return 1.0, "identical in every pair"
    floor = smallest_p(len(differences))
    note = f"{len(differences)} pairs: no p below {floor:.3g} is possible" if floor > SIGNIFICANCE else ""
    return float(wilcoxon(differences).pvalue), note


def _false_discovery_rate(table: pd.DataFrame) -> pd.Series:
    """Benjamini-Hochberg q-values over the subgroups each arm was tested on."""
    q_values = pd.Series(np.nan, index=table.index)
    for _, arm in table.groupby("arm"):
        tested = arm.p_value.dropna()
        if len(tested):
            q_values[tested.index] = false_discovery_control(tested.to_numpy())
    return q_values


def compare(sweep_dirs: list[str], names: list[str] | None, output_dir: Path, metric: str) -> pd.DataFrame:
    if len(sweep_dirs) < 2:
        raise ConfigError("compare needs two or more sweep directories: compare=[<sweep A>,<sweep B>]")
    names = list(names) if names else [Path(d).name for d in sweep_dirs]
    if len(names) != len(sweep_dirs) or len(set(names)) != len(names):
        raise ConfigError(f"compare_names must give one distinct name per sweep, got {names}")
    runs = {name: _runs(Path(d), metric) for name, d in zip(names, sweep_dirs)}
    arms = {name: values for name, (values, _) in runs.items()}
    _check_same_splits({name: splits for name, (_, splits) in runs.items()}, names[0])
    baseline_name, baseline = names[0], arms[names[0]]
    rows = []
    for label in dict.fromkeys(label for table in arms.values() for label in table.columns):
        for name, table in arms.items():
            values = table[label] if label in table else pd.Series(dtype=float)
            row = {
                "label": label,
                "arm": name,
                "mean": values.mean(),
                "std": values.std(ddof=1),
                "runs": int(values.notna().sum()),
            }
            if name != baseline_name and label in baseline:
                pairs = pd.concat([values, baseline[label]], axis=1, join="inner").dropna()
                differences = pairs.iloc[:, 0] - pairs.iloc[:, 1]
                p_value, note = _paired_test(differences)
                row.update(
                    {
                        "difference_to_first": differences.mean() if len(differences) else np.nan,
                        "pairs": len(differences),
                        "p_value": p_value,
                        "note": note,
                    }
                )
            rows.append(row)
    table = pd.DataFrame(
        rows,
        columns=["label", "arm", "mean", "std", "runs", "difference_to_first", "pairs", "p_value", "q_value", "note"],
    )
    table["q_value"] = _false_discovery_rate(table)
    pairs = table.pairs.dropna()
    if len(pairs) and smallest_p(int(pairs.max())) > SIGNIFICANCE:
        log.warning(
            "compare: at most %d pairs per subgroup: no p below %.3g is possible, whatever the effect; "
            "add seeds or folds (6 pairs can reach %.3g)",
            int(pairs.max()),
            smallest_p(int(pairs.max())),
            smallest_p(6),
        )
    output_dir = Path(output_dir)
    write_csv(table, output_dir / "comparison.csv")
    write_text(comparison_markdown(table, names, metric, sweep_dirs), output_dir / "comparison.md")
    plot_arms(table, metric, output_dir)
    return table


def comparison_markdown(table: pd.DataFrame, names: list[str], metric: str, sweep_dirs) -> str:
    header = ["subgroup"] + [f"{n}" for n in names] + [f"{n} − {names[0]} (p)" for n in names[1:]]
    rows = []
    for label in dict.fromkeys(table.label):
        part = table[table.label == label].set_index("arm")
        cells = [f"{format_mean_std(part.loc[n, 'mean'], part.loc[n, 'std'])} (n={part.loc[n, 'runs']})" for n in names]
        cells += [
            f"{format_value(part.loc[n, 'difference_to_first'])} (p={format_value(part.loc[n, 'p_value'])}, "
            f"q={format_value(part.loc[n, 'q_value'])})"
            for n in names[1:]
        ]
        rows.append([label, *cells])
    lines = [
        f"# {metric.replace('_', ' ')} by arm",
        "",
        "Mean ± std over runs; difference = mean of paired differences over matching (seed, fold); "
        "p = two-sided Wilcoxon signed-rank test; q = Benjamini-Hochberg false discovery rate over the "
        "subgroups of each arm (read q when looking for any subgroup that changed).",
        "",
    ]
    lines += [f"- `{n}`: {d}" for n, d in zip(names, sweep_dirs)] + [""]
    notes = sorted(set(table.note.dropna()) - {""})
    footer = [""] + [f"Note: {note}." for note in notes] if notes else []
    return "\n".join(lines + markdown_table(header, rows) + footer) + "\n"
