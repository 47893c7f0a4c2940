"""DDP benchmark (not a test): task=classify in one process against trainer=ddp (2 processes),
same config, alternating rounds in one session; prints the training time of each, their ratio,
and both runs' test balanced accuracy.

Training time is Lightning's fit, read from the `train_seconds` each run's log line reports
(spawning the workers included, start-up of the task excluded).

    python benchmarks/ddp_throughput.py [--epochs 4] [--rounds 2] [extra overrides...]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(trainer: str, folder: Path, epochs: int, extra: list[str]) -> tuple[float, float]:
    command = [
        *(sys.executable, "-m", "fairaug", "task=classify", "input=edes", f"trainer={trainer}"),
        *(f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false", f"hydra.run.dir={folder}", *extra),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    fit = re.search(r"Trained in ([\d.]+) s", result.stdout + result.stderr)
    metrics = json.loads((folder / "metrics.json").read_text())
    return (float(fit.group(1)) if fit else wall), metrics["balanced_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args, extra = parser.parse_known_args()
    times = {"default": [], "ddp": []}
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for trainer in ("default", "ddp"):
                seconds, scores[trainer] = run(trainer, Path(tmp) / f"{trainer}{r}", args.epochs, extra)
                times[trainer].append(seconds)
                print(f"round {r}: trainer={trainer}: {seconds:.1f} s training", flush=True)
    one, two = min(times["default"]), min(times["ddp"])
    setting = " ".join(["input=edes", *extra])
    print(f"classify {setting}, {args.epochs} epochs, best of {args.rounds}: 1 process {one:.1f} s, "
          f"2 processes (trainer=ddp) {two:.1f} s -> throughput ratio {one / two:.2f}; test balanced accuracy "
          f"{scores['default']:.3f} (1 process) vs {scores['ddp']:.3f} (2 processes)")  # fmt: skip


if __name__ == "__main__":
    main()
