"""task=montage: ED/ES mid-ventricular slices with mask outlines, one row per subgroup.

A quick look at what a cohort contains (and that the reader, masks and frames line up):
each row is one (label x `task.group_by`) group in clinical order, with `task.per_group`
subjects drawn with the top-level seed; ED and ES as separate grey panels with the mask
outlines, a legend and a scale bar. Writes montage.png into the run directory.
"""

from __future__ import annotations

import logging

from fairaug.data.cohort import LABEL_NAMES
from fairaug.data.groups import clinical_order
from fairaug.data.sources import load_cohort
from fairaug.data.views import ViewBuilder
from fairaug.errors import ConfigError
from fairaug.figures import FRAMES, mask_legend, plt, show_frame
from fairaug.io import write_figure
from fairaug.runtime import start_run

log = logging.getLogger(__name__)

SCALE_BAR_MM = 20.0


def _panels(row, edes: ViewBuilder):
    """ED and ES of the edes view (ED, ES, ED) with their masks."""
    image, masks = edes(row)
    return image[:2], masks[:2]


def run(cfg) -> dict:
    folder = start_run(cfg)
    cohort, _ = load_cohort(cfg.data)
    keys = ["label", *cfg.task.group_by]
    unknown = [k for k in keys if k not in cohort.columns]
    if unknown:
        raise ConfigError(f"task.group_by names unknown column(s) {unknown}")
    groups = sorted(
        cohort.groupby(keys, observed=True),
        key=lambda group: tuple(clinical_order(k, v) for k, v in zip(keys, group[0])),
    )
    per_group = int(cfg.task.per_group)
    if cfg.input.name != "edes":
        raise ConfigError(f"task=montage shows the edes view (ED and ES with their masks), not input={cfg.input.name}")
    edes = ViewBuilder(cfg.input)
    panels = {
        (r, c): (row, _panels(row, edes))
        for r, (_, members) in enumerate(groups)
        for c, (_, row) in enumerate(
            members.sample(min(per_group, len(members)), random_state=int(cfg.seed)).iterrows()
        )
    }
    fig, axes = plt.subplots(
        len(groups), 2 * per_group, figsize=(2.0 * 2 * per_group, 2.1 * len(groups)), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for (r, c), (row, (image, masks)) in panels.items():
        for phase, name in enumerate(FRAMES):
            show_frame(axes[r, 2 * c + phase], image[phase], masks[phase], f"{row.subject_id} {name}")
    rows = []
    for r, (key, members) in enumerate(groups):
        values = dict(zip(keys, key))
        rows.append(LABEL_NAMES[values.pop("label")] + ", " + ", ".join(str(v) for v in values.values()))
        axes[r, 0].text(
            -0.08,
            0.5,
            f"{rows[-1]}\n(n={len(members)})",
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
            fontsize=8,
        )
    _scale_bar(axes[0, 0], float(cfg.input.crop_mm) / int(cfg.input.size))
    mask_legend(fig)
    where = "mid-ventricular" if cfg.input.slice_index is None else f"slice {cfg.input.slice_index}"
    fig.suptitle(f"ED and ES, {where} short axis, mask outlines", fontsize=9, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))  # leave the title and legend their own row
    path = write_figure(fig, folder.path / "montage.png", dpi=110, bbox_inches="tight")
    log.info("Montage of %d groups written to %s", len(groups), path)
    return {"montage": str(path), "groups": len(groups), "rows": rows}


def _scale_bar(ax, mm_per_pixel: float) -> None:
    """A SCALE_BAR_MM white bar in the bottom-left corner of one panel."""
    length = SCALE_BAR_MM / mm_per_pixel
    height = ax.get_ylim()[0]  # images put row 0 at the top: the bottom edge is the larger y
    ax.plot([2, 2 + length], [height - 3, height - 3], color="white", lw=2)
    ax.text(2 + length / 2, height - 5, f"{SCALE_BAR_MM:.0f} mm", color="white", fontsize=6, ha="center", va="bottom")
