"""A run's output folder: who owns it, and which checkpoint a finished task=classify run tested.

The entry point claims each run's folder through `fairaug.hydra_callbacks.RunFolderCallback`.

A run owns its folder through an exclusive flock on `<folder>/.owner` (which names the owner's
pid and host). The kernel drops the lock when the owner exits, however it ends: a second live
run is refused, a killed run's folder is taken over by its rerun, and a recycled pid can never
pass for a live owner. The file itself stays (unlinking a locked file would let two runs lock
two different files).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from fairaug.errors import ConfigError

OWNER_FILE = ".owner"
_held: dict[Path, list] = {}  # folder -> [locked descriptor, claims]; a process may claim its folder twice


def claim(folder) -> None:
    """Own `folder` (created if needed) until release(); ConfigError if a live process owns it."""
    folder = Path(folder).resolve()
    if folder in _held:
        _held[folder][1] += 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / OWNER_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(descriptor, 4096).decode(errors="replace")
        os.close(descriptor)
        try:
            owner = "pid {pid} on host {host}".format(**json.loads(owner))
        except (ValueError, KeyError, TypeError):  # the owner has locked but not yet written its name
            owner = "a process that is starting"
        raise ConfigError(
            f"{folder} is in use by another live run ({owner}); wait for it to end or write "
            "this run elsewhere (hydra.run.dir=... / hydra.sweep.dir=...)"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    _held[folder] = [descriptor, 1]


def release(folder) -> None:
    folder = Path(folder).resolve()
    held = _held.get(folder)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        os.close(held[0])  # drops the lock
        del _held[folder]


@contextmanager
def owned(folder):
    claim(folder)
    try:
        yield
    finally:
        release(folder)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tested_checkpoint(run_dir) -> Path:
    """The checkpoint a finished task=classify run tested, as its metrics.json records it (path
    relative to the run and hash): never a guessed name, never one a later rerun left behind."""
    from fairaug.runtime import RunDir

    run_dir = Path(run_dir)
    record = RunDir(run_dir).metrics
    if not record.is_file():
        raise ConfigError(f"{run_dir} is not a finished task=classify run: no metrics.json")
    metrics = json.loads(record.read_text())
    if not metrics.get("best_checkpoint"):
        raise ConfigError(
            f"{run_dir} tested its final weights and kept no checkpoint (metrics.json: best_checkpoint "
            "is null; no validation ran)"
        )
    checkpoint = run_dir / metrics["best_checkpoint"]
    if not checkpoint.is_file():
        raise ConfigError(
            f"{checkpoint}, the checkpoint {record} records as tested, is missing (the run was rerun "
            "and did not finish, or the file was moved)"
        )
    if metrics.get("best_checkpoint_sha256") not in (None, file_sha256(checkpoint)):
        raise ConfigError(
            f"{checkpoint} is not the checkpoint {record} records as tested (a rerun into {run_dir} "
            "replaced it and did not finish): rerun task=classify there"
        )
    return checkpoint
