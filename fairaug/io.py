"""Writes that never leave a half-written file: write beside the target, then rename."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd


def replace_atomically(path: Path, write) -> Path:
    """Call write(staging_path), then rename the staging file onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(staging)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return replace_atomically(path, lambda p: frame.to_csv(p, index=False))


def write_json(data: dict, path: Path) -> Path:
    return replace_atomically(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=True)))


def write_text(text: str, path: Path) -> Path:
    return replace_atomically(path, lambda p: p.write_text(text))


def write_figure(fig, path: Path, **savefig_args) -> Path:
    """Save a matplotlib figure as PNG and close it."""
    try:
        return replace_atomically(path, lambda p: fig.savefig(p, format="png", **savefig_args))
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
