"""Data-pipeline benchmark (not a test): prints ratios against baselines run in the same process.

1. Throughput of the cached, memory-mapped view loader against a naive per-sample pipeline
   that decodes the NIfTI files and crops/resizes on every item (what the original research
   code does), same cohort, same view, same DataLoader settings.
2. Peak memory of preparing (generate + cache) and loading a cohort, and of one 4x larger.
3. Wall time of `python -m fairaug task=classify input=edes` on the defaults (cold: the
   phantom and the cache are built; warm: both reused) and the share of training time
   spent waiting for data.

    python benchmarks/data_pipeline.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def compose(home: Path, *overrides: str):
    from fairaug.config import compose_config

    return compose_config([f"paths.home={home}", f"paths.output_dir={home}/run", *overrides])


def throughput(home: Path, n_subjects: int, epochs: int) -> None:
    import torch
    from torch.utils.data import DataLoader, Dataset

    from fairaug.data.datamodule import CohortDataModule
    from fairaug.data.views import ViewBuilder

    cfg = compose(home, "input=edes", f"data.n_subjects={n_subjects}")
    data = CohortDataModule.from_config(cfg)
    data.prepare()
    cached = data.datasets["train"]

    class NaiveDataset(Dataset):
        """Decode, crop and resize on every item."""

        def __init__(self, table):
            self.table, self.build = table.reset_index(drop=True), ViewBuilder(cfg.input)

        def __len__(self):
            return len(self.table)

        def __getitem__(self, i):
            image, _ = self.build(self.table.iloc[i])
            return {"image": torch.from_numpy(image), "label": torch.tensor(float(self.table.label.iloc[i]))}

    def rate(dataset, passes):
        loader = DataLoader(dataset, batch_size=16, shuffle=True, num_workers=0)
        start, seen = time.perf_counter(), 0
        for _ in range(passes):
            for batch in loader:
                seen += len(batch["label"])
        return seen / (time.perf_counter() - start)

    naive = rate(NaiveDataset(cached.table), 1)
    fast = rate(cached, epochs)
    print(f"[throughput] edes view, {len(cached)} training subjects, batch 16, main process")
    print(f"  naive per-sample NIfTI pipeline: {naive:9.1f} samples/s")
    print(f"  cached memory-mapped loader:     {fast:9.1f} samples/s")
    print(f"  ratio cached / naive:            {fast / naive:9.1f}x   (target >= 20x)")


PREPARE = """
import resource, sys
sys.path.insert(0, {repo!r})
from benchmarks.data_pipeline import compose
from fairaug.data.datamodule import CohortDataModule
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cfg = compose({home!r}, "input=edes", "data.n_subjects={n}")
data = CohortDataModule.from_config(cfg)
data.prepare()
for name, dataset in data.datasets.items():
    for i in range(len(dataset)):
        dataset[i]
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(imported, own, workers)
"""


def peak_memory(n_small: int) -> None:
    peaks = {}
    for n in (n_small, 4 * n_small):
        with tempfile.TemporaryDirectory() as home:
            code = PREPARE.format(repo=str(REPO), home=home, n=n)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            peaks[n] = [int(v) / 1024 for v in out.stdout.strip().splitlines()[-1].split()]
    print("[memory] peak RSS while generating, caching and reading every item (MiB)")
    print("  subjects  after imports  main process  worker processes")
    for n, (imported, own, workers) in peaks.items():
        print(f"  {n:8d}  {imported:13.1f}  {own:12.1f}  {workers:16.1f}")
    (_, small, small_workers), (_, large, large_workers) = peaks[n_small], peaks[4 * n_small]
    print(
        f"  ratio 4x cohort / 1x cohort: main {large / small:.2f}, workers {large_workers / small_workers:.2f}"
        "   (target <= 1.5)"
    )
    print(
        f"  growth of the main process beyond its imports: {peaks[n_small][1] - peaks[n_small][0]:.1f} MiB "
        f"({n_small} subjects) vs {peaks[4 * n_small][1] - peaks[4 * n_small][0]:.1f} MiB ({4 * n_small})"
    )


def classify_wall_time(home: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "fairaug",
        "task=classify",
        "input=edes",
        f"paths.home={home}",
        f"paths.runs_dir={home}/runs",
        "trainer.enable_progress_bar=false",
    ]
    for label in ("cold (generate phantom + build cache)", "warm (both reused)"):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - start
        run_dir = max((home / "runs" / "classify").iterdir())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        print(
            f"[classify] {label}: {wall:6.1f} s wall; test balanced accuracy {metrics['balanced_accuracy']:.3f}; "
            f"data wait {100 * metrics['train_data_wait_fraction']:.1f}% of training step time (target < 10%)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller cohorts (a smoke run of the benchmark)")
    parser.add_argument("--parts", default="throughput,memory,classify", help="comma-separated parts to run")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "throughput" in parts:
        with tempfile.TemporaryDirectory() as home:
            throughput(Path(home), 120 if args.quick else 400, 3)
    if "memory" in parts:
        peak_memory(25 if args.quick else 100)
    if "classify" in parts and not args.quick:
        with tempfile.TemporaryDirectory() as home:
            classify_wall_time(Path(home))


if __name__ == "__main__":
    main()
