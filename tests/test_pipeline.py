"""PIPELINE=1 ./multirun.sh end to end on the tiny phantom (slow tier): ControlNet training,
two generations, their quality, four classification arms on the generator's split, the
comparison; and a rerun that redoes nothing already complete."""

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY_PHANTOM, TINY_RUN

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
# A hang guard, not a speed test: the pipeline takes about 3 min on 2 idle cores; a loaded machine
# once needed 8 times that, so the guard sits at 20 times.
HANG_GUARD_S = 3600
TINY = [
    *TINY_PHANTOM,
    *[o for o in TINY_RUN if not o.startswith("input.size")],
    "diffusion.size=16",
    "diffusion.widths=[16,32]",
    "diffusion.batch_size=8",
    "diffusion.grid_every=0",
    "trainer.max_steps=4",
    "generation.steps=2",
    "generation.max_samples=40",
    "quality.min_count=3",
    "quality.kid_subset_size=10",
]


def pipeline(sweep: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIPELINE": "1", "SEEDS": "2", "SWEEP_DIR": str(sweep)}
    return subprocess.run(
        ["bash", str(REPO / "multirun.sh"), *TINY, f"paths.home={home}"],
        cwd=sweep.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def test_the_whole_pipeline_runs_on_the_generators_split(tmp_path, fairaug_home):
    sweep = tmp_path / "pipeline"
    result = pipeline(sweep, fairaug_home)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (sweep / "controlnet" / "model" / "fairaug.json").is_file()
    generator_split = pd.read_csv(sweep / "controlnet" / "split.csv")
    for arm in ("real", "copy", "balance", "synth_only"):
        summary = json.loads((sweep / "arms" / arm / "summary.json").read_text())
        assert summary["completed"] == 2, arm
        for job in ("0", "1"):
            assert pd.read_csv(sweep / "arms" / arm / job / "split.csv").equals(generator_split), (arm, job)
    assert pd.read_csv(sweep / "arms" / "synth_only" / "0" / "synthetic.csv").shape[0] > 0
    comparison = (sweep / "comparison" / "comparison.md").read_text()
    assert all(arm in comparison for arm in ("real", "copy", "balance", "synth_only"))
    for mode in ("copy", "balance"):
        assert json.loads((sweep / f"quality_{mode}" / "quality.json").read_text())["n_synthetic"] > 0
    assert "Pipeline:" in result.stdout and "## Memorisation" in result.stdout

    rerun = pipeline(sweep, fairaug_home)  # everything complete: nothing is trained again
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "model exists, reused" in rerun.stdout and "all 2 runs complete" in rerun.stdout
    assert "== ControlNet training (" not in rerun.stdout and "== arm real (" not in rerun.stdout
