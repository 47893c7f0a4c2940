"""task=montage: ED/ES mid-ventricular slices with mask overlays, one row per subgroup.

A quick look at what a cohort contains (and that the reader, masks and frames line up):
each row is one (label x `task.group_by`) group, with `task.per_group` subjects drawn
with the top-level seed. Writes montage.png into the run directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from fairaug.data.cohort import LABEL_NAMES  # noqa: E402
from fairaug.data.sources import load_cohort  # noqa: E402
from fairaug.data.views import ViewBuilder  # noqa: E402
from fairaug.errors import ConfigError  # noqa: E402
from fairaug.io import write_figure  # noqa: E402

log = logging.getLogger(__name__)

MASK_COLOURS = ListedColormap([(0, 0, 0, 0), (1.0, 0.2, 0.2, 0.45), (0.2, 1.0, 0.3, 0.45), (0.2, 0.5, 1.0, 0.45)])


def _panels(row, edes: ViewBuilder):
    """ED and ES of the edes view (ED, ES, ED) with their masks."""
    image, masks = edes(row)
    return image[:2], masks[:2]


def run(cfg) -> dict:
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cohort, _ = load_cohort(cfg.data)
    keys = ["label", *cfg.task.group_by]
    unknown = [k for k in keys if k not in cohort.columns]
    if unknown:
        raise ConfigError(f"task.group_by names unknown column(s) {unknown}")
    groups = list(cohort.groupby(keys, observed=True))
    per_group = int(cfg.task.per_group)
    edes = ViewBuilder(OmegaConf.merge(cfg.input, {"name": "edes", "view": "sa", "slice_index": None}))
    panels = {(r, c): (row, _panels(row, edes))
              for r, (_, members) in enumerate(groups)
              for c, (_, row) in enumerate(members.sample(min(per_group, len(members)),
                                                         random_state=int(cfg.seed)).iterrows())}
    fig, axes = plt.subplots(len(groups), 2 * per_group, figsize=(2.0 * 2 * per_group, 2.1 * len(groups)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for (r, c), (row, (image, masks)) in panels.items():
        for phase, name in enumerate(("ED", "ES")):
            ax = axes[r, 2 * c + phase]
            ax.imshow(image[phase], cmap="gray", vmin=0, vmax=1)
            ax.imshow(masks[phase], cmap=MASK_COLOURS, vmin=0, vmax=3, interpolation="nearest")
            ax.set_title(f"{row.subject_id} {name}", fontsize=7)
    for r, (key, members) in enumerate(groups):
        values = dict(zip(keys, key))
        label = LABEL_NAMES[values.pop("label")] + ", " + ", ".join(str(v) for v in values.values())
        axes[r, 0].text(-0.08, 0.5, f"{label}\n(n={len(members)})", transform=axes[r, 0].transAxes,
                        ha="right", va="center", fontsize=8)
    fig.suptitle("ED / ES mid-ventricular slices; red LV blood pool, green LV myocardium, blue RV", fontsize=9)
    fig.tight_layout()
    path = write_figure(fig, output_dir / "montage.png", dpi=110, bbox_inches="tight")
    log.info("Montage of %d groups written to %s", len(groups), path)
    return {"montage": str(path), "groups": len(groups)}
