"""The real entry point in a subprocess (slow tier): single runs, sweeps, bad overrides."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY_PHANTOM, TINY_RUN

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def fairaug(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fairaug", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_single_run_writes_only_into_its_run_directory(tmp_path, fairaug_home):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    result = fairaug("task=classify", "input=edes", *TINY_PHANTOM, *TINY_RUN, f"paths.home={fairaug_home}",
                     f"paths.runs_dir={tmp_path / 'runs'}", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / "classify").iterdir()
    for name in ("predictions.csv", "metrics.json", "split.csv", "split.json", "config.yaml", ".hydra"):
        assert (run_dir / name).exists(), name
    assert not list(workdir.iterdir())  # nothing in the current directory


def test_multirun_over_seeds(tmp_path, fairaug_home):
    result = fairaug("-m", "task=classify", "input=slice", "seed=0,1", *TINY_PHANTOM, *TINY_RUN,
                     f"paths.home={fairaug_home}", f"paths.runs_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "runs" / "classify-multirun").iterdir()
    splits = [pd.read_csv(sweep / job / "split.csv") for job in ("0", "1")]
    assert not splits[0].equals(splits[1])  # the seed drives the split
    assert all((sweep / job / "predictions.csv").exists() for job in ("0", "1"))


def test_unknown_override_fails_naming_the_key(tmp_path):
    result = fairaug("task=classify", "trainer.max_epoch=1", cwd=tmp_path)
    assert result.returncode != 0 and "max_epoch" in result.stderr
    result = fairaug("task=classify", "input=cin", cwd=tmp_path)
    assert result.returncode != 0 and "cin" in result.stderr
