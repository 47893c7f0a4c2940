"""How fairaug draws a cardiac image: ED and ES as separate grey panels, masks as outlines.

The views stack ED, ES, ED as three channels; shown as one RGB picture that is a magenta/green
pseudo-colour nobody can read, so every figure splits it into its frames.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # the one place the backend is chosen: every figure is written to a file, never shown
import matplotlib.pyplot as plt  # noqa: E402, F401 - the plotting modules take pyplot from here
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

MASK_OUTLINES = {1: ("LV blood pool", "#ff4040"), 2: ("LV myocardium", "#40ff60"), 3: ("RV", "#4090ff")}
FRAMES = ("ED", "ES")  # channels 0 and 1 of the edes view


def show_frame(ax, image: np.ndarray, masks: np.ndarray | None = None, title: str | None = None) -> None:
    """One frame (H, W) in grey on [0, 1], with the outlines of its mask labels."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    if masks is not None:
        for label, (_, colour) in reversed(MASK_OUTLINES.items()):  # the blood pool on top
            if (masks == label).any():
                ax.contour(masks == label, levels=[0.5], colors=[colour], linewidths=0.7)
    if title:
        ax.set_title(title, fontsize=7)
    ax.set_axis_off()


def mask_legend(fig) -> None:
    """The outline colours, once per figure, at its top right."""
    fig.legend(
        [Line2D([], [], color=colour) for _, colour in MASK_OUTLINES.values()],
        [name for name, _ in MASK_OUTLINES.values()],
        loc="upper right",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
