"""Kills and full disks: nothing a dead or failed run leaves behind looks like finished work."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from fairaug.data.cache import build_view_cache, cache_key
from fairaug.data.phantom.generate import generate, phantom_spec, spec_hash
from fairaug.io import replace_atomically
from fairaug.schemas import PhantomDataConfig

HANG_GUARD_S = 120


def phantom_cfg(root: Path, n_subjects: int, matrix: int):
    cfg = OmegaConf.structured(PhantomDataConfig(root=str(root), n_subjects=n_subjects, workers=2))
    cfg.geometry.matrix, cfg.geometry.n_frames, cfg.geometry.n_slices = matrix, 8, 5
    return cfg


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def staging_name(target: str, pid: int) -> str:
    return f".{target}.tmp-{socket.gethostname()}-{pid}-0123abcd"


def _identity(pid: int) -> str | None:
    """The start time of a live process (so a recycled pid reads as another process); None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in "ZX" else fields[19]


GENERATE = """
import sys
from pathlib import Path
from omegaconf import OmegaConf
from fairaug.data.phantom.generate import generate, phantom_spec
generate(phantom_spec(OmegaConf.create(sys.argv[1])), Path(sys.argv[2]), workers=2)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_during_phantom_generation_takes_the_workers_along(tmp_path):
    cfg = phantom_cfg(tmp_path, n_subjects=96, matrix=48)
    target = f"phantom-{spec_hash(phantom_spec(cfg))}"
    run = subprocess.Popen([sys.executable, "-c", GENERATE, OmegaConf.to_yaml(cfg), str(tmp_path)])
    workers = {}
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while not any(tmp_path.glob(f".{target}.tmp-*/*/*.nii.gz")):
            assert run.poll() is None, "the generation ended before it could be killed"
            assert time.monotonic() < deadline, "no staging files appeared"
            time.sleep(0.02)
        children = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
        workers = {int(pid): _identity(int(pid)) for pid in children}
        assert len(workers) >= 2
        run.send_signal(signal.SIGKILL)
        run.wait(HANG_GUARD_S)
        deadline = time.monotonic() + 60
        while any(_identity(pid) == start for pid, start in workers.items()) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [pid for pid, start in workers.items() if _identity(pid) == start]
        assert not survivors, f"pool workers {survivors} outlived their killed parent"
    finally:
        for pid, start in workers.items():  # on failure, end the orphans this test started
            if _identity(pid) == start:
                os.kill(pid, signal.SIGKILL)
        if run.poll() is None:
            run.kill()
            run.wait()
    assert list(tmp_path.glob(f".{target}.tmp-*"))  # the dead run's staging folder is still there ...
    folder = generate(phantom_spec(cfg), tmp_path, workers=2)
    assert len(list(folder.glob("*/sa.nii.gz"))) == 96
    assert not list(tmp_path.glob(".*.tmp-*"))  # ... until the next run removes it (the build lock stays)


def test_staging_folders_of_dead_runs_are_removed_and_live_ones_kept(tmp_path, make_cfg, tiny_cohort):
    cfg = phantom_cfg(tmp_path, n_subjects=4, matrix=32)
    target = f"phantom-{spec_hash(phantom_spec(cfg))}"
    views = make_cfg("input=slice").input
    rows = tiny_cohort.head(3)
    cache_target = f"slice-{cache_key(rows, views)}"
    dead, live = dead_pid(), os.getpid()
    for name in (target, cache_target):
        for pid in (dead, live):
            (tmp_path / staging_name(name, pid) / "sub").mkdir(parents=True)
    other = tmp_path / staging_name("phantom-0123456789ab", dead)  # another target's: not this build's to judge
    other.mkdir()

    generate(phantom_spec(cfg), tmp_path, workers=1)
    build_view_cache(rows, views, tmp_path, "raise")

    for name in (target, cache_target):
        assert not (tmp_path / staging_name(name, dead)).exists()
        assert (tmp_path / staging_name(name, live) / "sub").is_dir()  # a concurrent run's: never touched
    assert other.is_dir()


def test_replace_atomically_on_a_full_disk_names_the_path_and_leaves_nothing(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("previous")

    def write(staging: Path) -> None:
        staging.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match=re.escape(str(path))) as raised:
        replace_atomically(path, write)
    assert raised.value.errno == errno.ENOSPC
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_checkpoint_never_left_truncated_under_its_final_name(make_cfg, tmp_path, monkeypatch):
    import lightning as L

    from fairaug.models.trainer import trainer_arguments

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    arguments = {**trainer_arguments(make_cfg("trainer.accelerator=cpu")), "max_epochs": 1, "limit_train_batches": 1}
    trainer = L.Trainer(**arguments, logger=False, enable_checkpointing=False, default_root_dir=str(tmp_path))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 4)), batch_size=2)
    trainer.fit(Tiny(), train_dataloaders=loader)
    path = tmp_path / "checkpoints" / "best.ckpt"
    trainer.save_checkpoint(path)
    previous = path.read_bytes()
    assert torch.load(path, weights_only=True)["global_step"] == 1

    real_save = torch.save

    def full_disk(obj, target, *args, **kwargs):  # writes part of the checkpoint, then the disk is full
        real_save(obj, target, *args, **kwargs)
        if hasattr(target, "truncate"):
            target.truncate(100)
        else:
            os.truncate(target, 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=re.escape(str(path))) as raised:
        trainer.save_checkpoint(path)
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == previous
    fresh = path.with_name("last.ckpt")
    with pytest.raises(OSError, match=re.escape(str(fresh))):
        trainer.save_checkpoint(fresh)
    assert [p.name for p in path.parent.iterdir()] == ["best.ckpt"]  # no staging file, no truncated last.ckpt


def test_a_built_cache_is_read_without_its_lock_and_a_lockless_folder_still_builds(
    tmp_path, make_cfg, tiny_cohort, monkeypatch, caplog
):
    import errno
    import fcntl

    from fairaug import io as io_module
    from fairaug.io import building

    view = make_cfg("input=edes").input
    build_view_cache(tiny_cohort.head(4), view, tmp_path / "views", "raise")
    monkeypatch.setattr(io_module, "building", lambda target: pytest.fail("a built cache needs no lock"))
    assert len(build_view_cache(tiny_cohort.head(4), view, tmp_path / "views", "raise").index) == 4

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)  # a network file system without locks
    caplog.set_level("WARNING", logger="fairaug")
    with building(tmp_path / "target"):
        (tmp_path / "target").mkdir()
    assert "No build lock for" in caplog.text and (tmp_path / "target").is_dir()
