"""Phantom generation speed (not a test): this tree against a baseline revision, same run.

Generates the same default cohort (`data.n_subjects` subjects, `data.workers` processes) with
the working tree and with a git revision checked out in a temporary worktree, alternating
which goes first, each in its own process and into its own empty folder, and prints the wall
times and their ratio (machines are noisy: only the ratio is comparable between machines).

    python benchmarks/phantom_generation.py --baseline a8cddfb [--subjects 400] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

GENERATE = """
import sys
from pathlib import Path
import fairaug
assert Path(fairaug.__file__).is_relative_to(Path.cwd()), fairaug.__file__  # this tree's fairaug
from fairaug.config import CONFIG_DIR, register_configs
from fairaug.data.phantom.generate import generate, phantom_spec
from hydra import compose, initialize_config_dir
register_configs()
with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
    cfg = compose("config", overrides=sys.argv[2:])
generate(phantom_spec(cfg.data), Path(sys.argv[1]), int(cfg.data.workers))
"""


def timed_generation(tree: Path, root: Path, overrides: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", GENERATE, str(root), *overrides],
        cwd=tree,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--subjects", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    overrides = [f"data.n_subjects={args.subjects}", f"data.workers={args.workers}"]
    times: dict[str, list[float]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        baseline = scratch / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline), args.baseline],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        try:
            for repeat in range(args.repeats):
                order = ("baseline", "current") if repeat % 2 == 0 else ("current", "baseline")
                for name in order:
                    tree = baseline if name == "baseline" else REPO
                    seconds = timed_generation(tree, scratch / f"{name}-{repeat}", overrides)
                    times[name].append(seconds)
                    print(f"{name:8s} run {repeat + 1}: {seconds:6.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, check=True)
    base, current = statistics.median(times["baseline"]), statistics.median(times["current"])
    print(
        f"{args.subjects} subjects, {args.workers} workers: baseline {args.baseline} {base:.1f} s, "
        f"current {current:.1f} s, speed-up {base / current:.2f}x"
    )


if __name__ == "__main__":
    main()
