"""The real entry point in a subprocess (slow tier): single runs, sweeps, bad overrides."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from fairaug.diffusion.components import load_components
from fairaug.tasks.registry import TASKS
from tests.conftest import TINY_DIFFUSION, TINY_PHANTOM, TINY_RUN

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def fairaug(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fairaug", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_single_run_writes_only_into_its_run_directory(tmp_path, fairaug_home):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    result = fairaug(
        "task=classify",
        "input=edes",
        *TINY_PHANTOM,
        *TINY_RUN,
        f"paths.home={fairaug_home}",
        f"paths.runs_dir={tmp_path / 'runs'}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / "classify").iterdir()
    for name in ("predictions.csv", "metrics.json", "split.csv", "split.json", "config.yaml", ".hydra"):
        assert (run_dir / name).exists(), name
    assert not list(workdir.iterdir())  # nothing in the current directory


def test_concurrent_cold_runs_build_the_cohort_and_its_view_once(tmp_path):
    """The first jobs of a parallel sweep: two runs that need the same uncached cohort and view
    at once both succeed; one builds each, the other waits and reuses it."""
    home = tmp_path / "home"
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fairaug",
                "task=classify",
                "input=edes",
                *TINY_PHANTOM,
                *TINY_RUN,
                f"paths.home={home}",
                f"seed={seed}",
                f"hydra.run.dir={tmp_path / f'run{seed}'}",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # the job's log lines go to stdout
            text=True,
        )
        for seed in (0, 1)
    ]
    logs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    text = "".join(logs)
    assert text.count("Generating phantom cohort") == 1 and text.count("Preparing the edes view") == 1
    assert text.count("Waiting for another process that is building") >= 1
    assert len(list((home / "cache" / "phantom").glob("phantom-*"))) == 1
    assert len(list((home / "cache" / "views").glob("edes-*"))) == 1
    assert not list((home / "cache").rglob(".*.tmp-*"))


@pytest.mark.parametrize("launcher", ["parallel", "local_submitit"])
def test_sweeps_through_the_cluster_launchers_build_the_summary(tmp_path, fairaug_home, launcher):
    """joblib runs 2 jobs at once (one CPU thread each on 2 cores), submitit_local as SLURM would;
    either way the summary lists the completed job and the failed one (fold 7 of 5)."""
    sweep = tmp_path / "sweep"
    result = fairaug(
        "-m", f"hydra/launcher={launcher}", "task=classify", "input=edes", "fold=0,7", *TINY_PHANTOM, *TINY_RUN,
        f"paths.home={fairaug_home}", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0  # Hydra reports the failed job
    summary = json.loads((sweep / "summary.json").read_text())
    assert (summary["jobs"], summary["completed"], [f["job"] for f in summary["failed"]]) == (2, 1, ["1"])
    assert "fold=7 is outside split.n_splits=5" in summary["failed"][0]["error"]
    if launcher == "parallel":
        assert (result.stdout + result.stderr).count("1 CPU thread(s)") == 2


def test_a_pipelines_training_sets_run_as_parallel_jobs_and_the_whole_design_reuses_them(
    tmp_path, fairaug_home, tiny_cohort_as_ukbb
):
    """Parts of one experiment (task.only_training_sets) as the jobs of a joblib sweep, sharing
    task.experiment_dir; then the whole design in that folder trains nothing and writes the report."""
    design = [
        "task=pipeline", *tiny_cohort_as_ukbb, *TINY_RUN,
        "trainer.max_epochs=2", "task.arms=[real_only,reweight]", "task.training_sets=2", "task.seeds=1",
        "task.doses=[]", "task.n_boot=50", f"paths.home={fairaug_home}",
    ]  # fmt: skip
    experiment = tmp_path / "experiment"
    parts = fairaug(
        "-m", "hydra/launcher=parallel", *design, "task.only_training_sets=0,1",
        f"task.experiment_dir={experiment}", f"hydra.sweep.dir={tmp_path / 'parts'}", cwd=tmp_path,
    )  # fmt: skip
    assert parts.returncode == 0, parts.stderr[-3000:]
    assert not (tmp_path / "parts" / "summary.json").exists()  # the sweep summary is for classifier sweeps
    stages = sorted(p.relative_to(experiment).parts[1] for p in experiment.rglob("stage.json"))
    assert stages == ["train0"] * 2 + ["train1"] * 2  # <scenario>/train<r>/arms/<arm>/seed0
    assert not (experiment / "report.md").exists()
    whole = fairaug(*design, f"hydra.run.dir={experiment}", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    log = whole.stdout + whole.stderr
    assert log.count("finished earlier with the same inputs, reused") == 4 and "(classify)" not in log
    assert set(pd.read_csv(experiment / "runs.csv").training_set) == {0, 1}
    assert "| reweight | balanced accuracy (sex=female) |" in (experiment / "report.md").read_text()


def test_ddp_over_two_cpu_processes_writes_one_run_that_tests_each_subject_once(tmp_path, fairaug_home):
    """trainer=ddp: gloo over 2 processes (each drawing its share of the weighted sampler), one run
    folder, the whole test split scored once, and the metrics a single process reports."""
    runs = {}
    for trainer in ("default", "ddp"):
        result = fairaug(
            "task=classify", "input=edes", f"trainer={trainer}", "trainer.max_epochs=2", *TINY_PHANTOM, *TINY_RUN,
            f"paths.home={fairaug_home}", f"hydra.run.dir={tmp_path / trainer}", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs[trainer] = json.loads((tmp_path / trainer / "metrics.json").read_text())
    assert "Starting with 2 processes" in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "default"]  # one folder per run, nothing else
    predictions, split = (pd.read_csv(tmp_path / "ddp" / name) for name in ("predictions.csv", "split.csv"))
    assert predictions.subject_id.is_unique and set(predictions.subject_id) == set(
        split.subject_id[split.split == "test"]
    )
    ddp = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    single = torch.load(tmp_path / "default" / "checkpoints" / "last.ckpt", weights_only=True)
    assert 2 * ddp["global_step"] <= single["global_step"] + 2  # each rank took half the batches
    assert runs["ddp"].keys() == runs["default"].keys() and runs["ddp"]["train_data_wait_fraction"] is None
    assert abs(runs["ddp"]["balanced_accuracy"] - runs["default"]["balanced_accuracy"]) <= 0.25  # 10 test subjects


def test_controlnet_training_over_two_cpu_processes_saves_rank_zeros_model_once(tmp_path, fairaug_home):
    """task=controlnet_train trainer=ddp: gloo over 2 processes, one run folder whose model/ holds
    the weights the workers trained (those of last.ckpt), each grid drawn and logged once (the
    final one by the starting process), and a resume under DDP."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    common = [*TINY_DIFFUSION, *TINY_PHANTOM, "trainer=ddp", "trainer.enable_progress_bar=false", "logger=tensorboard",
              f"paths.home={fairaug_home}", f"hydra.run.dir={run_dir}"]  # fmt: skip
    result = fairaug(*common, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (run_dir / "grids").iterdir()) == ["final.png", "step_000004.png"]
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    grids = {tag: [(e.step, e.width) for e in events.Images(tag)] for tag in events.Tags()["images"]}
    assert grids.keys() == {"grid/step_000004", "grid/final"}
    assert len(grids["grid/step_000004"]) == 1 and [step for step, _ in grids["grid/final"]] == [6]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["start_step"], metrics["steps"]) == (0, 6) and metrics["final_loss"] is not None
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 6 and saved["optimizer_states"]  # resumable
    at_6 = _controlnet_weights(run_dir)
    assert all(torch.equal(v, saved["state_dict"][k]) for k, v in at_6.items())  # the workers' weights

    resumed = fairaug(*common, "trainer.max_steps=8", f"diffusion.resume={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["start_step"], metrics["steps"], len(metrics["sessions"])) == (6, 8, 2)
    at_8, saved = _controlnet_weights(run_dir), torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.equal(v, saved["state_dict"][k]) for k, v in at_8.items())
    assert not all(torch.equal(at_8[k], at_6[k]) for k in at_6)  # it trained on


def _controlnet_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """model/'s ControlNet, keyed as in the run's checkpoints."""
    return {f"controlnet.{k}": v for k, v in load_components(run_dir).controlnet.state_dict().items()}


def test_multirun_over_seeds_builds_the_summary(tmp_path, fairaug_home):
    result = fairaug(
        "-m",
        "task=classify",
        "input=slice",
        "seed=0,1",
        *TINY_PHANTOM,
        *TINY_RUN,
        f"paths.home={fairaug_home}",
        f"paths.runs_dir={tmp_path / 'runs'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "runs" / "classify-multirun").iterdir()
    splits = [pd.read_csv(sweep / job / "split.csv") for job in ("0", "1")]
    assert not splits[0].equals(splits[1])  # the seed drives the split
    summary = json.loads((sweep / "summary.json").read_text())
    assert (summary["jobs"], summary["completed"], summary["failed"]) == (2, 2, [])
    runs = pd.read_csv(sweep / "summary.csv")
    accuracies = [json.loads((sweep / job / "metrics.json").read_text())["balanced_accuracy"] for job in ("0", "1")]
    assert summary["metrics"]["balanced_accuracy"]["mean"] == pytest.approx(sum(accuracies) / 2)
    assert [[o for o in row.split() if o.startswith("seed=")] for row in runs.overrides] == [["seed=0"], ["seed=1"]]
    assert (sweep / "summary.md").exists() and (sweep / "pooled" / "report.md").exists()


def test_failed_job_does_not_lose_the_summary(tmp_path, fairaug_home):
    """resnet18 cannot take the 3D cine view: job 1 fails, jobs 0 and 2 are summarised."""
    result = fairaug(
        "-m",
        "task=classify",
        "input=cine",
        "model=small_cnn,resnet18,small_cnn",
        "seed=0",
        *TINY_PHANTOM,
        *TINY_RUN,
        f"paths.home={fairaug_home}",
        f"paths.runs_dir={tmp_path / 'runs'}",
        cwd=tmp_path,
    )
    assert result.returncode != 0  # Hydra reports the failure
    (sweep,) = (tmp_path / "runs" / "classify-multirun").iterdir()
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["completed"] == 2 and [f["job"] for f in summary["failed"]] == ["1"]
    assert "resnet18 takes 2D views" in summary["failed"][0]["error"]
    rebuilt = fairaug("task=evaluate", f"sweep_dir={sweep}", f"paths.runs_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert json.loads((sweep / "summary.json").read_text())["completed"] == 2


def test_a_killed_sweep_lists_every_job_with_its_status(tmp_path, fairaug_home):
    """Job 2 of 4 would train for ever: the sweep is killed in it."""
    sweep = tmp_path / "sweep"
    tiny_run = [o for o in TINY_RUN if not o.startswith("trainer.max_epochs=")]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fairaug",
            "-m",
            "task=classify",
            "input=slice",
            "trainer.max_epochs=1,1,100000,1",
            *TINY_PHANTOM,
            *tiny_run,
            f"paths.home={fairaug_home}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600  # a hang guard, not a measurement
        while "job 2 incomplete" not in ((sweep / "summary.md").read_text() if (sweep / "summary.md").exists() else ""):
            assert process.poll() is None and time.monotonic() < deadline, "job 2 never started"
            time.sleep(1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    expected = "2 of 4 jobs completed; job 2 incomplete, job 3 not started"
    assert expected in (sweep / "summary.md").read_text()
    rebuilt = fairaug("task=evaluate", f"sweep_dir={sweep}", f"paths.runs_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert expected in (sweep / "summary.md").read_text()
    assert pd.read_csv(sweep / "summary.csv").status.tolist() == ["completed", "completed", "incomplete", "not started"]


def test_unknown_override_fails_naming_the_key(tmp_path):
    result = fairaug("task=classify", "trainer.max_epoch=1", cwd=tmp_path)
    assert result.returncode != 0 and "max_epoch" in result.stderr
    result = fairaug("task=classify", "input=cin", cwd=tmp_path)
    assert result.returncode != 0 and "cin" in result.stderr


def test_help_loads_no_task_libraries(tmp_path):
    """--help, tab completion and config errors never import torch or Lightning (the tasks'
    modules load when a task runs), so they answer in about a second instead of ten."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fairaug", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and "Tasks (task=...)" in result.stdout
    modules = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "hydra" in modules
    assert not [
        m
        for m in modules
        if m.split(".")[0] in ("torch", "lightning", "diffusers") or m in {f"fairaug.tasks.{task}" for task in TASKS}
    ]


def test_help_is_fairaugs_own_and_lists_every_real_choice(tmp_path):
    # A generous limit, not a benchmark: --help takes about 1.5 s on 2 cores (no task libraries load);
    # the 25 s it once took would still pass, a hang would not.
    text = subprocess.run(
        [sys.executable, "-m", "fairaug", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    ).stdout
    assert "powered by Hydra" not in text and "_schema" not in text
    assert all(f"\n  {task} " in text for task in TASKS)
    conf = REPO / "fairaug" / "conf"
    assert {p.stem for p in (conf / "task").glob("*.yaml")} == set(TASKS)
    for group in sorted(p for p in conf.iterdir() if p.is_dir() and p.name not in ("hydra", "task", "__pycache__")):
        choices = {p.stem for p in group.glob("*.yaml")} - {"common"}  # generation/common: the shared base
        groups = text.split("Groups (")[1]  # below the tasks (a task and a group may share a name: app)
        line = next(line for line in groups.splitlines() if line.startswith(f"  {group.name} "))
        listed = {c.strip() for c in line.split(maxsplit=1)[1].split(",")} - {"(none)"}
        assert listed == choices, group.name
    launchers = {p.stem for p in (conf / "hydra" / "launcher").glob("*.yaml")} | {"basic"}
    line = next(line for line in text.splitlines() if line.startswith("  hydra/launcher "))
    assert {c.strip() for c in line.split("(")[0].split(maxsplit=1)[1].split(",")} == launchers
    assert text.count("python -m fairaug") >= 3  # example commands
