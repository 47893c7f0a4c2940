"""Sweep aggregation benchmark (not a test): time to summarise a 40-job sweep (8 seeds x
5 folds) and to compare three arms, against reading the same jobs' files (the I/O floor),
measured in the same run. Jobs are written as classify leaves them (predictions.csv,
metrics.json, by_group.csv, fairness.json) with 120 test subjects each.

    python benchmarks/sweep_aggregation.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fairaug.config import compose_config  # noqa: E402
from fairaug.fairness.compare import compare  # noqa: E402
from fairaug.fairness.simulated import simulated_run  # noqa: E402
from fairaug.fairness.sweep import summarise  # noqa: E402


def make_sweep(root: Path, error_rate: float) -> Path:
    for i, (seed, fold) in enumerate((s, f) for s in range(8) for f in range(5)):
        simulated_run(root / str(i), seed, fold, error_rate)
    return root


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        arms = [make_sweep(Path(tmp) / name, rate) for name, rate in (("real", 0.3), ("copy", 0.2), ("balanced", 0.1))]
        reading = timed(lambda: [pd.read_csv(f) for arm in arms for f in arm.glob("*/*.csv")])
        cfg = compose_config(["fairness.n_boot=50"]).fairness
        aggregate = timed(lambda: summarise(arms[0], cfg))
        comparison = timed(lambda: compare([str(a) for a in arms], None, Path(tmp) / "out", "balanced_accuracy"))
    print("[aggregation] 40-job sweep (8 seeds x 5 folds), 120 test subjects per job")
    print(f"  read every job file of 3 sweeps (I/O floor): {reading:6.2f} s")
    print(
        f"  summarise one sweep (summary.* + pooled report): {aggregate:6.2f} s "
        f"({aggregate / (reading / 3):.1f}x its own I/O)"
    )
    print(
        f"  compare three 40-job arms:                      {comparison:6.2f} s ({comparison / reading:.1f}x their I/O)"
    )


if __name__ == "__main__":
    main()
