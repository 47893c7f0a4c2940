"""Plots of the fairness reports (PNG, written with matplotlib's non-interactive backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fairaug.figures import plt
from fairaug.io import write_figure


def file_safe(attribute: str) -> str:
    return attribute.replace("×", "_x_")


def _save(fig, path: Path) -> Path:
    """With the axes' legend below the plot, where it hides no bar."""
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=7, frameon=False)
    rows = -(-len(labels) // 3)
    fig.tight_layout(rect=(0, 0.22 * rows / fig.get_figheight(), 1, 1))
    return write_figure(fig, path, dpi=110)


CHANCE = 0.5  # balanced accuracy of a classifier that ignores the image


def _chance_line(ax) -> None:
    ax.axhline(CHANCE, color="gray", lw=0.8, ls="--", label=f"chance ({CHANCE})")


def _mark_undefined(ax, positions) -> None:
    """A label where a group has no value (one class only, or no subject): never a 0 bar."""
    for x in positions:
        ax.text(x, 0.02, "undefined", ha="center", va="bottom", rotation=90, fontsize=8, color="gray")


def plot_balanced_accuracy(table: pd.DataFrame, attribute: str, output_dir: Path, ci: float) -> Path:
    """Balanced accuracy per group with its `ci` bootstrap interval; undefined groups marked."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(table), 3.4))
    x = np.arange(len(table))
    values = table.balanced_accuracy.to_numpy(float)
    low, high = table.balanced_accuracy_ci_low.to_numpy(float), table.balanced_accuracy_ci_high.to_numpy(float)
    defined = ~np.isnan(values)
    ax.bar(x[defined], values[defined], color="#4c78a8")
    with_interval = defined & np.isfinite(low) & np.isfinite(high) & (high > low)  # none of zero width
    ax.errorbar(
        x[with_interval],
        values[with_interval],
        yerr=[values[with_interval] - low[with_interval], high[with_interval] - values[with_interval]],
        fmt="none",
        ecolor="black",
        capsize=4,
        label=f"{ci:.0%} bootstrap interval".replace("%", " %"),
    )
    for i in np.flatnonzero(defined):
        ax.text(i, 0.02, f"{values[i]:.2f}", ha="center", va="bottom", fontsize=8, color="white")
    _mark_undefined(ax, np.flatnonzero(~defined))
    _chance_line(ax)
    labels = [f"{group}\nn={int(n)}" for group, n in zip(table.group, table["count"])]
    tilt = 30 if len(table) > 4 else 0
    ax.set_xticks(x, labels, rotation=tilt, ha="right" if tilt else "center", fontsize=8)
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_ylim(0, 1)
    ax.set_ylabel("balanced accuracy")
    ax.set_title(f"Balanced accuracy by {attribute}", fontsize=10)
    return _save(fig, Path(output_dir) / f"balanced_accuracy_by_{file_safe(attribute)}.png")


def _bars_by_arm(table: pd.DataFrame, ylabel: str, title: str, path: Path) -> Path:
    """Mean ± std per subgroup (label) for each arm, side by side; an undefined subgroup gets no
    bar; the paired p-value against the first arm above each other arm's bar, where there is one."""
    arms = list(dict.fromkeys(table.arm))
    groups = list(dict.fromkeys(table.label))
    width = 0.8 / len(arms)
    fig, ax = plt.subplots(figsize=(2 + 0.7 * len(groups) * len(arms) ** 0.5, 3.8))
    for k, arm in enumerate(arms):
        part = table[table.arm == arm].set_index("label").reindex(groups)
        x = np.arange(len(groups)) + (k - (len(arms) - 1) / 2) * width
        means, spread = part["mean"].to_numpy(float), part["std"].to_numpy(float)
        defined = ~np.isnan(means)
        ax.bar(
            x[defined],
            means[defined],
            width,
            label=arm,
            yerr=np.where(np.isfinite(spread), spread, 0.0)[defined],
            capsize=3,
        )
        _mark_undefined(ax, x[~defined])
        p_values = part["p_value"].to_numpy(float) if "p_value" in part else np.full(len(groups), np.nan)
        for i in np.flatnonzero(defined & ~np.isnan(p_values)):
            top = means[i] + (spread[i] if np.isfinite(spread[i]) else 0.0)
            ax.text(
                x[i], min(top + 0.02, 0.97), f"p={p_values[i]:.2g}", ha="center", va="bottom", fontsize=6, rotation=90
            )
    _chance_line(ax)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_arms(table: pd.DataFrame, metric: str, output_dir: Path) -> Path:
    """`compare`'s figure: `metric` per subgroup and arm, paired p-values against the first arm."""
    name = metric.replace("_", " ")
    return _bars_by_arm(
        table,
        f"{name}\n(mean ± std over runs)",
        f"{name} by arm (p: paired Wilcoxon vs {table.arm.iloc[0]})",
        Path(output_dir) / f"comparison_{metric}.png",
    )


def plot_sweep(by_group: list[dict], runs: int, output_dir: Path) -> Path:
    """The sweep summary's figure: balanced accuracy per subgroup, mean ± std over its runs."""
    rows = [
        {
            "label": f"{g['attribute']}={g['group']}" + (f" ({g['n']} of {runs} runs)" if g["n"] < runs else ""),
            "arm": f"{runs} runs",
            "mean": g["mean"],
            "std": g["std"],
        }
        for g in by_group
        if g["metric"] == "balanced_accuracy"
    ]
    table = pd.DataFrame(rows, columns=["label", "arm", "mean", "std"]).astype({"mean": float, "std": float})
    title = "Balanced accuracy by subgroup over the sweep"
    return _bars_by_arm(
        table, "balanced accuracy\n(mean ± std over runs)", title, Path(output_dir) / "summary_balanced_accuracy.png"
    )
