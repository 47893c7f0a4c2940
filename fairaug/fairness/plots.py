"""Plots of the fairness reports (PNG, written with matplotlib's non-interactive backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fairaug.io import write_figure  # noqa: E402


def file_safe(attribute: str) -> str:
    return attribute.replace("×", "_x_")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    return write_figure(fig, path, dpi=110)


def plot_balanced_accuracy(table: pd.DataFrame, attribute: str, output_dir: Path) -> Path:
    """Balanced accuracy per group with its bootstrap interval; undefined groups marked."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(table), 3.2))
    x = np.arange(len(table))
    values = table.balanced_accuracy.to_numpy(float)
    low = values - table.balanced_accuracy_ci_low.to_numpy(float)
    high = table.balanced_accuracy_ci_high.to_numpy(float) - values
    ax.bar(x, np.nan_to_num(values), color="#4c78a8", yerr=np.nan_to_num([low, high]), capsize=4)
    for i, value in enumerate(values):
        ax.text(i, 0.02, "undefined" if np.isnan(value) else f"{value:.2f}", ha="center", va="bottom",
                rotation=90 if np.isnan(value) else 0, fontsize=8, color="white" if not np.isnan(value) else "gray")
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    labels = [f"{group}\nn={int(n)}" for group, n in zip(table.group, table["count"])]
    tilt = 30 if len(table) > 4 else 0
    ax.set_xticks(x, labels, rotation=tilt, ha="right" if tilt else "center", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("balanced accuracy")
    ax.set_title(f"Balanced accuracy by {attribute}", fontsize=10)
    return _save(fig, Path(output_dir) / f"balanced_accuracy_by_{file_safe(attribute)}.png")


def plot_arms(table: pd.DataFrame, metric: str, output_dir: Path) -> Path:
    """Mean ± std of `metric` per subgroup (rows) for each arm (columns of `table`)."""
    arms = list(dict.fromkeys(table.arm))
    groups = list(dict.fromkeys(table.label))
    width = 0.8 / len(arms)
    fig, ax = plt.subplots(figsize=(2 + 0.7 * len(groups) * len(arms) ** 0.5, 3.6))
    for k, arm in enumerate(arms):
        part = table[table.arm == arm].set_index("label").reindex(groups)
        ax.bar(np.arange(len(groups)) + (k - (len(arms) - 1) / 2) * width, part["mean"].fillna(0), width,
               yerr=part["std"].fillna(0), capsize=3, label=arm)
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(groups)), groups, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{metric.replace('_', ' ')} (mean ± std)")
    ax.legend(fontsize=8)
    return _save(fig, Path(output_dir) / f"comparison_{metric}.png")
