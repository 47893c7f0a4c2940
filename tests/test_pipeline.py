"""PIPELINE=1 QUICK=1 ./multirun.sh end to end on the tiny phantom (slow tier): per training set a
ControlNet, its synthetic datasets, classical augmentation and the oracle's new real subjects;
every arm over the seeds with equal steps on the same test subjects; report.md with the arms,
the oracle rows and the paired tests; and a rerun that redoes nothing already complete."""

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from fairaug.diffusion.planning import CELL
from fairaug.experiment.arms import ARMS
from fairaug.experiment.stages import DONE
from tests.conftest import TINY_PHANTOM

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
# A hang guard, not a speed test: the tiny pipeline takes about 3 min on 2 idle cores.
HANG_GUARD_S = 3600
TINY = [
    *TINY_PHANTOM,
    "++split.val.n_subjects=30",
    "++split.test.n_subjects=40",
    "trainer.max_epochs=2",
    "diffusion.size=16",
    "diffusion.widths=[16,32]",
    "diffusion.batch_size=8",
    "diffusion.grid_every=0",
    "diffusion.steps=4",
    "generation.steps=2",
    "generation.max_samples=20",
    "quality.min_count=3",
    "quality.kid_subset_size=10",
    "task.n_boot=100",
]
ARMS_RUN = [*ARMS, "balance@2", "oracle@2"]


def pipeline(sweep: Path, home: Path, *changes: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIPELINE": "1", "QUICK": "1", "SEEDS": "2", "SWEEP_DIR": str(sweep)}
    return subprocess.run(
        ["bash", str(REPO / "multirun.sh"), *TINY, f"paths.home={home}", *changes],
        cwd=sweep.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def test_the_quick_profile_runs_every_arm_with_the_oracle_and_its_paired_tests(tmp_path, fairaug_home):
    sweep = tmp_path / "pipeline"
    result = pipeline(sweep, fairaug_home)
    assert result.returncode == 0, result.stderr[-4000:]
    runs = pd.read_csv(sweep / "runs.csv")
    assert runs.groupby("arm").size().to_dict() == dict.fromkeys(ARMS_RUN, 4)  # 2 training sets x 2 seeds

    # every run scored the same test subjects, after the same number of optimizer steps
    predictions = pd.read_csv(sweep / "predictions.csv")
    subjects = predictions.groupby(["arm", "training_set", "seed"]).subject_id.apply(frozenset)
    assert subjects.nunique() == 1 and len(subjects.iloc[0]) == 40
    steps = {Path(r).as_posix(): pd.read_csv(Path(r) / "logs" / "metrics.csv").step.max() for r in runs.run}
    assert len(set(steps.values())) == 1

    # the oracle added new real subjects of exactly the cells the planner filled
    train0 = sweep / "default" / "train0"
    planned = pd.read_csv(train0 / "added" / "balance" / "plan_counts.csv")
    planned = planned[planned.generate > 0].set_index(CELL).generate.sort_index()
    (oracle_folder,) = (train0 / "added").glob("oracle-*")
    oracle = pd.read_csv(oracle_folder / "manifest.csv").groupby(CELL).size().sort_index()
    assert oracle.to_dict() == planned.to_dict()
    (doubled_folder,) = (train0 / "added").glob("oracle@2-*")
    doubled = pd.read_csv(doubled_folder / "manifest.csv")
    assert len(doubled) == 2 * planned.sum()

    report = (sweep / "report.md").read_text()
    assert "Quick profile" in report and "not meaningful" in report
    for arm in ARMS_RUN:
        assert f"| {arm} |" in report, arm
    results = json.loads((sweep / "results.json").read_text())["default"]
    differences = results["differences"]
    assert len(differences) == 3 * (len(ARMS_RUN) - 1)  # women's balanced accuracy, the gap, women's AUROC
    assert all(d["pairs"] == 4 for d in differences)
    assert all(d["p_holm"] >= d["p"] for d in differences if d["p"] == d["p"])
    assert {r["arm"] for r in results["recovered"]} == set(ARMS_RUN) - {"real_only", "oracle", "oracle@2",
                                                                        "oracle_control"}  # fmt: skip
    assert "### Diagnosis" in report and "![dose-response](dose_response_default.png)" in report
    assert (sweep / "dose_response_default.png").stat().st_size > 5000
    quality = json.loads((train0 / "quality" / "balance" / "quality.json").read_text())
    assert quality["n_synthetic"] == len(pd.read_csv(train0 / "added" / "balance" / "manifest.csv"))

    finished = {p: p.stat().st_mtime_ns for p in sweep.rglob(DONE)}
    rerun = pipeline(sweep, fairaug_home)  # everything complete: nothing is trained or generated again
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob(DONE)} == finished
    assert "reused" in rerun.stderr + rerun.stdout

    # a classifier setting changed: the classifiers train again on the same ControlNet and synthetic data
    changed = pipeline(sweep, fairaug_home, "task.arms=[real_only,balance]", "task.doses=[]", "model.lr=0.002")
    assert changed.returncode == 0, changed.stderr[-4000:]
    after = {p: p.stat().st_mtime_ns for p in sweep.rglob(DONE)}
    for stage in ("controlnet", "added/balance"):
        assert after[train0 / stage / DONE] == finished[train0 / stage / DONE], stage
    assert after[train0 / "arms" / "balance" / "seed0" / DONE] != finished[train0 / "arms" / "balance" / "seed0" / DONE]
