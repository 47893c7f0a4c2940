"""Training callbacks."""

from __future__ import annotations

import time

import lightning as L


class DataWaitMonitor(L.Callback):
    """Fraction of training time spent waiting for batches (a slow loader shows here).

    The wait is the time from the end of one training step (or the start of the epoch) to
    the start of the next, which Lightning spends fetching the batch from the loader.
    """

    def __init__(self):
        self.waiting = 0.0
        self.computing = 0.0
        self._mark = None

    @property
    def fraction(self) -> float:
        total = self.waiting + self.computing
        return self.waiting / total if total else 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        self.waiting += now - self._mark
        self._mark = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        self.computing += now - self._mark
        self._mark = now

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pl_module.log("train/data_wait_fraction", self.fraction)
