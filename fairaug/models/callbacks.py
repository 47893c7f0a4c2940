"""Training callbacks."""

from __future__ import annotations

import random
import time

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from fairaug.models.metrics import worst_group_balanced_accuracy


class RandomState(L.Callback):
    """Keeps the random number generators' states in every checkpoint and restores them on a
    resume, so a run killed after an epoch and resumed (ckpt_path=) draws the same dropout masks
    as one never interrupted. Stored as tensors and plain values: checkpoints load weights_only."""

    def state_dict(self) -> dict:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        kind, keys, position, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


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
        pl_module.log("train/data_wait_fraction", self.fraction, sync_dist=True)  # the ranks' mean


class WorstGroupValidation(L.Callback):
    """Logs val/worst_group_balanced_accuracy, the lowest balanced accuracy over the validation
    subjects' groups of `attributes`, so that checkpoints can be selected on it."""

    NAME = "val/worst_group_balanced_accuracy"

    def __init__(self, validation: pd.DataFrame, attributes: list[str]):
        self.labels = validation.label.to_numpy()
        self.groups = {attribute: validation[attribute].astype(str).to_numpy() for attribute in attributes}
        worst_group_balanced_accuracy(self.labels, self.labels, self.groups)  # raises if no group can be scored
        self._batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._batches = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batches.append((batch["index"], outputs["prob"]))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:  # a couple of batches: not every group is there
            return
        index, probs = (torch.cat(parts) for parts in zip(*self._batches))
        if trainer.world_size > 1:  # each rank scored its share of the validation subjects
            index, probs = pl_module.all_gather(index).flatten(), pl_module.all_gather(probs).flatten()
        index, first = np.unique(index.cpu().numpy(), return_index=True)  # a distributed sampler pads
        probs = probs.float().cpu().numpy()[first]
        groups = {attribute: values[index] for attribute, values in self.groups.items()}
        score = worst_group_balanced_accuracy(probs, self.labels[index], groups)
        pl_module.log(self.NAME, score, on_epoch=True, prog_bar=False)


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar (as the data steps' bars) on one line: only what the module puts on
    the bar, without the logger's version number."""

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


def progress_bars(trainer_arguments: dict, steps: bool = False) -> list[TQDMProgressBar]:
    """The progress bar callback for a Trainer (none when the bar is off): by epoch, or by
    optimizer step of max_steps when training is step-based."""
    if not trainer_arguments.get("enable_progress_bar", True):
        return []
    return [StepProgressBar() if steps else ProgressBar()]


class StepProgressBar(ProgressBar):
    """One bar of optimizer steps out of max_steps, for step-based training (the ControlNet),
    whose epochs say nothing; a resumed run starts the bar at its step."""

    def on_train_epoch_start(self, trainer, *_) -> None:
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:  # the first epoch of this session
            bar.reset(total=trainer.max_steps)
            self._show(bar, trainer.global_step)
        bar.set_description("steps")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        bar = self.train_progress_bar
        if bar is not None and self._should_update(trainer.global_step, bar.total):
            self._show(bar, trainer.global_step)
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    @staticmethod
    def _show(bar, step: int) -> None:
        if not bar.disable:
            bar.n = step
            bar.refresh()
