"""Lightning Trainer arguments from the `trainer` config group, shared by every task that trains or scores."""

from __future__ import annotations

from omegaconf import OmegaConf

from fairaug.models.checkpoint_io import AtomicCheckpointIO


def trainer_arguments(cfg) -> dict:
    """The trainer group as lightning.Trainer keyword arguments (nulls mean Lightning's default),
    with checkpoints written atomically."""
    arguments = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if v is not None}
    return {**arguments, "plugins": [AtomicCheckpointIO()]}


def logged_test_metrics(trainer) -> dict[str, float]:
    """What the last trainer.test logged under test/, without the prefix."""
    return {
        name.removeprefix("test/"): float(value)
        for name, value in trainer.callback_metrics.items()
        if name.startswith("test/")
    }
