"""DDP benchmark (not a test): a task in one process against trainer=ddp (2 processes), same
config, alternating rounds in one session; prints the training time of each and their ratio.

- `--task classify` (default): `--epochs` epochs of input=edes; also both runs' test balanced
  accuracy. Training time is Lightning's fit, from the "Trained in" log line (spawning the
  workers included, start-up of the task excluded). At equal epochs 2 processes take half the
  optimizer steps (the global batch doubles).
- `--task controlnet_train`: `--steps` optimizer steps of the default tiny ControlNet; training
  time is metrics.json's train_seconds (spawning included). Each of 2 processes draws a batch
  per step, so the throughput compared is images per second.

    python benchmarks/ddp_throughput.py [--task classify] [--epochs 4] [--rounds 2] [extra overrides...]
    python benchmarks/ddp_throughput.py --task controlnet_train [--steps 60]
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


def run(task: str, trainer: str, folder: Path, length: int, extra: list[str]) -> tuple[float, dict]:
    """Training seconds and the run's metrics.json."""
    settings = {
        "classify": ["input=edes", f"trainer.max_epochs={length}"],
        "controlnet_train": [f"trainer.max_steps={length}", "diffusion.grid_every=0"],
    }[task]
    command = [
        *(sys.executable, "-m", "fairaug", f"task={task}", f"trainer={trainer}", *settings),
        *("trainer.enable_progress_bar=false", f"hydra.run.dir={folder}", *extra),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    metrics = json.loads((folder / "metrics.json").read_text())
    if task == "controlnet_train":
        return metrics["train_seconds"], metrics
    fit = re.search(r"Trained in ([\d.]+) s", result.stdout + result.stderr)
    return (float(fit.group(1)) if fit else wall), metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=["classify", "controlnet_train"], default="classify")
    parser.add_argument("--epochs", type=int, default=4, help="classify")
    parser.add_argument("--steps", type=int, default=60, help="controlnet_train")
    parser.add_argument("--rounds", type=int, default=2)
    args, extra = parser.parse_known_args()
    length = args.epochs if args.task == "classify" else args.steps
    times = {"default": [], "ddp": []}
    metrics = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for trainer in ("default", "ddp"):
                seconds, metrics[trainer] = run(args.task, trainer, Path(tmp) / f"{trainer}{r}", length, extra)
                times[trainer].append(seconds)
                print(f"round {r}: trainer={trainer}: {seconds:.1f} s training", flush=True)
    one, two = min(times["default"]), min(times["ddp"])
    setting = " ".join([f"task={args.task}", *extra])
    if args.task == "classify":
        print(f"{setting}, {length} epochs, best of {args.rounds}: 1 process {one:.1f} s, 2 processes (trainer=ddp) "
              f"{two:.1f} s -> throughput ratio {one / two:.2f}; test balanced accuracy "
              f"{metrics['default']['balanced_accuracy']:.3f} (1 process) vs "
              f"{metrics['ddp']['balanced_accuracy']:.3f} (2 processes)")  # fmt: skip
    else:
        print(f"{setting}, {length} steps, best of {args.rounds}: 1 process {one:.1f} s, 2 processes (trainer=ddp, "
              f"twice the images per step) {two:.1f} s -> images/s ratio {2 * one / two:.2f}; final loss "
              f"{metrics['default']['final_loss']:.3f} vs {metrics['ddp']['final_loss']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
