"""Lightning Trainer arguments from the `trainer` config group, shared by every task that trains or scores."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from fairaug.errors import ConfigError
from fairaug.models.checkpoint_io import AtomicCheckpointIO


def trainer_arguments(cfg) -> dict:
    """The trainer group as lightning.Trainer keyword arguments (nulls mean Lightning's default),
    with checkpoints written atomically."""
    arguments = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if v is not None}
    accelerator, devices = arguments.get("accelerator", "auto"), arguments.get("devices", "auto")
    check_accelerator(accelerator, devices)
    strategy = str(arguments.get("strategy", "auto"))
    if "spawn" not in strategy and (
        strategy.startswith(("ddp", "fsdp", "deepspeed")) or _several(accelerator, devices)
    ):
        setting = f"trainer.strategy={strategy}" if strategy != "auto" else f"trainer.devices={devices}"
        raise ConfigError(
            f"{setting} would start every process from the command line again, each running the whole "
            "task into the same run folder: use trainer=ddp (ddp_spawn; trainer.devices=N)"
        )
    return {**arguments, "plugins": [AtomicCheckpointIO()]}


def _several(accelerator: str, devices) -> bool:
    """Whether Lightning would train on more than one device (and so pick its re-launching DDP)."""
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()]) > 1
    if str(devices) in ("-1", "auto"):  # every device there is: only GPUs come several to a machine
        return accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available() and torch.cuda.device_count() > 1
    return int(devices) > 1


def spawns_workers(cfg) -> bool:
    """Whether fit runs in spawned processes (trainer=ddp), which log through their own copies of the logger."""
    return "spawn" in str(cfg.trainer.get("strategy") or "")


def check_accelerator(accelerator: str, devices) -> None:
    """A GPU asked for on a machine that has none (or fewer than asked) is a configuration
    mistake, named here rather than in Lightning's traceback."""
    if accelerator in ("gpu", "cuda"):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ConfigError(
                f"trainer.accelerator={accelerator}, but torch sees no CUDA GPU on this machine: use "
                "trainer.accelerator=auto (or cpu), or trainer=default"
            )
        if isinstance(devices, int) and devices > available:
            raise ConfigError(f"trainer.devices={devices}, but this machine has {available} CUDA GPU(s)")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps, but this machine has no Apple GPU that torch can use")


def logged_test_metrics(trainer) -> dict[str, float]:
    """What the last trainer.test logged under test/, without the prefix."""
    return {
        name.removeprefix("test/"): float(value)
        for name, value in trainer.callback_metrics.items()
        if name.startswith("test/")
    }
