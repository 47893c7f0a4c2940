"""Run folders: unique names, and one live run per folder."""

import datetime
import json
import os
import signal
import subprocess
import sys

import hydra.core.utils
import pytest
from hydra import compose, initialize_config_dir

from fairaug.errors import ConfigError
from fairaug.run_folder import OWNER_FILE, claim, owned, release
from fairaug.tasks.registry import run_task
from tests.conftest import CONF


def test_runs_started_in_the_same_second_get_their_own_folders(monkeypatch, tmp_path):
    ticks = iter(range(1, 1000))

    class SameSecond(datetime.datetime):  # Hydra's ${now:...} clock, stuck in one second
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2025, 1, 2, 3, 4, 5, next(ticks))

    monkeypatch.setattr(hydra.core.utils, "datetime", SameSecond)
    folders = []
    for _ in range(2):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"paths.home={tmp_path}"], return_hydra_config=True)
        folders.append((cfg.hydra.run.dir, cfg.hydra.sweep.dir))
    assert folders[0][0] != folders[1][0] and folders[0][1] != folders[1][1]
    assert all("2025-01-02_03-04-05" in folder for pair in folders for folder in pair)


def hold(folder) -> subprocess.Popen:
    """Another live process that owns `folder` (until killed)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from fairaug.run_folder import claim; claim({str(folder)!r}); "
            "print('owned', flush=True); import time; time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "owned"
    return process


def claim_elsewhere(folder) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"from fairaug.run_folder import claim; claim({str(folder)!r})"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_live_owner_is_refused_and_a_killed_owners_folder_is_taken_over(make_cfg, tmp_path):
    folder = tmp_path / "run"
    owner = hold(folder)
    try:
        with pytest.raises(ConfigError, match=rf"{folder} is in use by another live run \(pid {owner.pid} on host"):
            claim(folder)
        cfg = make_cfg("task=evaluate", f"paths.output_dir={folder}")
        with pytest.raises(ConfigError, match=f"pid {owner.pid}"):  # the entry point refuses before the task runs
            run_task(cfg)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=60)
    with owned(folder):  # the killed run's folder is taken over by its rerun
        assert json.loads((folder / OWNER_FILE).read_text())["pid"] == os.getpid()
        claim(folder)  # this process may claim its own folder again (a run inside a Hydra run)
        release(folder)
        refused = claim_elsewhere(folder)
        assert refused.returncode != 0 and f"pid {os.getpid()}" in refused.stderr
    free = claim_elsewhere(folder)
    assert free.returncode == 0, free.stderr  # released when the run ended
