"""What `task=cohort` shows of a cohort: subgroup counts by label and the LV measurements
per label and sex, as Markdown and plots. A wrong label mapping shows here first (healthy
subjects with an EF of 25 %), before any model is trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fairaug.data.cohort import ATTRIBUTES, LABEL_NAMES, UNKNOWN
from fairaug.data.groups import clinical_order  # noqa: E402
from fairaug.figures import plt
from fairaug.io import write_figure  # noqa: E402
from fairaug.markdown import markdown_table  # noqa: E402

MEASURES = {
    "lv_ef_percent": "LV EF (%)",
    "lv_edv_ml": "LV EDV (mL)",
    "lv_esv_ml": "LV ESV (mL)",
    "lv_mass_g": "LV mass (g)",
}
LABEL_COLOURS = {0: "#4c78a8", 1: "#e45756"}


def _median_iqr(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    low, mid, high = np.percentile(values, [25, 50, 75])
    return f"{mid:.1f} [{low:.1f}, {high:.1f}]"


def counts_by_label(table: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """Subjects per group (rows) and label (columns)."""
    counts = pd.crosstab(table[attribute].astype(str), table["label"].map(LABEL_NAMES))
    counts = counts.reindex(sorted(counts.index, key=lambda group: clinical_order(attribute, group)))
    return counts.reindex(columns=list(LABEL_NAMES.values()), fill_value=0)


def summary_markdown(table: pd.DataFrame, skipped: pd.DataFrame, title: str, attributes: list[str]) -> str:
    lines = [
        f"# {title}",
        "",
        f"{len(table)} subjects: "
        + ", ".join(f"{int((table.label == k).sum())} {name}" for k, name in LABEL_NAMES.items())
        + f"; {len(skipped)} left out (skipped.csv).",
        "",
    ]
    missing = [a for a in ATTRIBUTES if a not in attributes]
    if missing:
        lines += [f"Not recorded by this dataset: {', '.join(missing)} (every subject's group is '{UNKNOWN}').", ""]
    lines += ["## Diagnoses", ""]
    diagnoses = table.assign(diagnosis=table.diagnosis.fillna("–").astype(str))
    lines += markdown_table(
        ["diagnosis", "label", "n"],
        [[d, LABEL_NAMES[int(k)], int(n)] for (d, k), n in diagnoses.groupby(["diagnosis", "label"]).size().items()],
    )
    for attribute in attributes:
        counts = counts_by_label(table, attribute)
        lines += ["", f"## {attribute}", ""]
        lines += markdown_table([attribute, *counts.columns], [[g, *map(int, row)] for g, row in counts.iterrows()])
    lines += ["", "## LV measurements from the masks (median [IQR])", ""]
    groups = table.groupby(["label", "sex"]) if "sex" in attributes else table.groupby(["label"])
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        rows.append([LABEL_NAMES[int(key[0])], *key[1:], len(group), *(_median_iqr(group[m]) for m in MEASURES)])
    lines += markdown_table(["label", *(["sex"] if "sex" in attributes else []), "n", *MEASURES.values()], rows)
    if not skipped.empty:
        reasons = skipped.reason.value_counts()
        lines += ["", "## Left out", ""]
        lines += markdown_table(["reason", "n"], [[r, int(n)] for r, n in reasons.head(20).items()])
    return "\n".join(lines) + "\n"


def plot_counts(table: pd.DataFrame, attributes: list[str], path: Path) -> Path:
    """One panel for the diagnosis groups and one per attribute: subjects per group, healthy
    and heart failure side by side."""
    panels = ["diagnosis", *attributes]
    table = table.assign(diagnosis=table.diagnosis.fillna("–"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), squeeze=False)
    for ax, attribute in zip(axes[0], panels):
        counts = counts_by_label(table, attribute)
        x = np.arange(len(counts))
        for i, (label, name) in enumerate(LABEL_NAMES.items()):
            ax.bar(x + (i - 0.5) * 0.4, counts[name], width=0.4, color=LABEL_COLOURS[label], label=name)
        ax.set_xticks(
            x,
            counts.index,
            rotation=30 if len(counts) > 3 else 0,
            ha="right" if len(counts) > 3 else "center",
            fontsize=8,
        )
        ax.set_title(attribute, fontsize=10)
        ax.set_ylabel("subjects")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return write_figure(fig, path, dpi=110)


def plot_measurements(table: pd.DataFrame, by_sex: bool, path: Path) -> Path:
    """EF and EDV per label (and sex): every subject as a dot over its group's box."""
    groups = [(label, sex) for label in LABEL_NAMES for sex in (("female", "male", UNKNOWN) if by_sex else (None,))]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, measure in zip(axes, ("lv_ef_percent", "lv_edv_ml")):
        data, names, colours = [], [], []
        for label, sex in groups:
            rows = table[(table.label == label) & ((table.sex == sex) if sex else True)]
            values = rows[measure].dropna().to_numpy(float)
            if len(values):
                data.append(values)
                names.append(f"{LABEL_NAMES[label]}\n{sex}" if sex else LABEL_NAMES[label])
                colours.append(LABEL_COLOURS[label])
        if data:
            ax.boxplot(data, showfliers=False)
            rng = np.random.default_rng(0)
            for i, (values, colour) in enumerate(zip(data, colours), start=1):
                ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=8, color=colour, alpha=0.7)
            ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
        ax.set_ylabel(MEASURES[measure])
    fig.tight_layout()
    return write_figure(fig, path, dpi=110)


def format_cells(table: pd.DataFrame) -> pd.DataFrame:
    """cohort.csv as a user reads it: measurements rounded, unrecorded values empty."""
    table = table.copy()
    for column in [*MEASURES, "spacing_x_mm", "spacing_y_mm", "slice_gap_mm"]:
        table[column] = table[column].round(2)
    for column in ("sex", "vendor", "centre"):
        table[column] = table[column].where(table[column] != UNKNOWN, "")
    return table
