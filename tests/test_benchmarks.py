"""The diffusion benchmark that the prepared GPU check runs (slow tier): its CPU run exercises
the same code (mixed precision, gradient checkpointing, a variant, the pipeline comparison)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def test_diffusion_benchmark_compares_both_loops_and_generates_the_pipelines_images():
    result = subprocess.run(
        [sys.executable, "benchmarks/diffusion.py", "--steps", "1", "--rounds", "1", "--precision", "bf16-mixed",
         "--gradient-checkpointing", "true", "--subjects", "60", "--variant", "trainer.deterministic=false"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert len(re.findall(r"-> ratio \d+\.\d\d", out)) == 4  # tiny; SD path default and variant; generation
    assert "bf16-mixed, gradient checkpointing on" in out and "trainer.deterministic=false:" in out
    assert "same seeds, pixel difference (of 1) max 0.00e+00" in out  # float32 on CPU: the same images
