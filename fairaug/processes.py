"""Process pools whose workers die with the process that started them.

A killed run (kill -9, an out-of-memory kill, a cluster's time limit) cannot shut its pool
down, and orphaned workers would go on rendering into a staging folder nobody will rename,
holding their memory for minutes. On Linux each worker asks the kernel for SIGKILL when its
parent dies; elsewhere the pool is a plain one.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int | None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:  # the parent died before prctl: no signal will come
        os.kill(os.getpid(), signal.SIGKILL)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor (default start method) whose workers are killed when this process dies.

    The signal follows the thread that started a worker, so drive the pool from a thread that
    outlives it (every caller here uses it from the thread that created it)."""
    if not sys.platform.startswith("linux"):
        return ProcessPoolExecutor(workers)
    context = multiprocessing.get_context()
    # A forkserver's workers are its children, not ours; it exits with us and the signal takes them along.
    parent = None if context.get_start_method() == "forkserver" else os.getpid()
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent, initargs=(parent,))
