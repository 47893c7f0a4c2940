"""Writes that never leave a half-written file or folder: build beside the target, then rename."""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import re
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

# A staging folder's name says which process on which host builds it, so a later run can tell
# a killed run's leftovers from a concurrent run's work (the host keeps pids of other machines
# sharing the folder, e.g. over NFS, out of the judgement).
_OWNER = re.compile(r"\.tmp-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}$")
log = logging.getLogger(__name__)


def replace_atomically(path: Path, write) -> Path:
    """Call write(staging_path), then rename the staging file onto `path`.

    An OSError of the write (a full disk, a quota) is raised again naming `path`: the staging
    name it would otherwise carry is gone by the time anyone reads it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            write(staging)
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path


@contextmanager
def building(target: Path):
    """Hold the build of `target` (a cohort, a view cache) for this process: concurrent jobs of a
    sweep that need the same one wait for the first instead of building it again, then find it
    built. The lock is an flock on a file beside `target`; the kernel drops it when the holder
    exits, however it ends, and the next one in line removes the staging folder it left."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = open(target.with_name(f".{target.name}.lock"), "a")
    except OSError as error:  # a folder this user may not write (the build itself then says so)
        log.warning("No build lock for %s (%s): concurrent jobs may build it twice", target, error.strerror)
        yield
        return
    with lock:  # closing the file drops the lock
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("Waiting for another process that is building %s", target)
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as error:  # e.g. ENOLCK on a network file system without locks
            log.warning("No build lock for %s (%s): concurrent jobs may build it twice", target, error.strerror)
        yield


def build_once(target: Path, marker: str, build) -> None:
    """Call build() unless `target` already holds `marker` (written last): a killed run's staging
    folders are removed, a concurrent job needing the same target waits for the first and then
    finds it built, and a built target is read without the lock (even where it cannot be taken)."""
    remove_abandoned(target)
    if (target / marker).exists():
        return
    with building(target):
        if not (target / marker).exists():
            build()


def publish(staging: Path, target: Path, marker: str) -> None:
    """Rename a finished build (a folder holding `marker` last) onto its name; a process on
    another host sharing the folder, where the lock may not reach, can have published the same
    one first."""
    try:
        os.rename(staging, target)
    except OSError:
        if not (target / marker).exists():
            raise


def staging_folder(target: Path) -> Path:
    """A new, not yet created, name beside `target` to build it under, owned by this process."""
    return target.with_name(f".{target.name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def remove_abandoned(target: Path) -> None:
    """Remove the staging folders of `target` whose owner, a process of this host, has died."""
    host = socket.gethostname()
    for staging in Path(target).parent.glob(f".{glob.escape(Path(target).name)}.tmp-*"):
        owner = _OWNER.search(staging.name)
        if owner and owner["host"] == host and not _alive(int(owner["pid"])):
            shutil.rmtree(staging, ignore_errors=True)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return replace_atomically(path, lambda p: frame.to_csv(p, index=False))


def write_json(data: dict, path: Path) -> Path:
    return replace_atomically(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=True)))


def write_text(text: str, path: Path) -> Path:
    return replace_atomically(path, lambda p: p.write_text(text))


def write_figure(fig, path: Path, **savefig_args) -> Path:
    """Save a matplotlib figure as PNG and close it."""
    try:
        return replace_atomically(path, lambda p: fig.savefig(p, format="png", **savefig_args))
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def load_checkpoint(path: Path, what: str) -> dict:
    """A torch checkpoint of tensors and plain values only (weights_only): one that holds any
    other pickled object could run code when loaded, and is refused naming `what` and the file."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        from fairaug.errors import DataError

        raise DataError(
            f"{what}: {path} holds pickled objects besides tensors and plain values; fairaug loads "
            f"checkpoints with weights_only and refuses it ({str(error).splitlines()[0]})"
        ) from None
