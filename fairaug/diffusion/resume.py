"""Continuing a diffusion training: which checkpoint, from which step, in which folder, and the
training sessions that led to it."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from fairaug.data.splits import checkpoint_split
from fairaug.errors import ConfigError, OutputExists
from fairaug.io import load_checkpoint
from fairaug.runtime import RunDir

log = logging.getLogger(__name__)
SESSION_KEYS = ("start_step", "steps", "train_seconds", "final_loss")


def checkpoint_path(resume) -> Path | None:
    """diffusion.resume (a run folder or a .ckpt) as a checkpoint file."""
    if not resume:
        return None
    path = Path(resume)
    path = RunDir(path).last_checkpoint if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"diffusion.resume: no checkpoint at {path}")
    return path


def continues_in_place(folder: RunDir, resume) -> bool:
    """Whether this run continues the training already in `folder`; a run that would start over
    in a folder holding a training (checkpoint, model/ or metrics.json) is refused."""
    checkpoint = checkpoint_path(resume)
    in_place = checkpoint is not None and checkpoint.resolve() == folder.last_checkpoint.resolve()
    earlier = [
        path.relative_to(folder.path).as_posix()
        for path in (folder.last_checkpoint, folder.model, folder.metrics)
        if path.exists()
    ]
    if earlier and not in_place:
        raise OutputExists(
            f"{folder.path} already holds a task=controlnet_train run ({', '.join(earlier)}): continue "
            f"it with diffusion.resume={folder.path}, or train into a new folder"
        )
    return in_place


def earlier_sessions(resume, start_step: int) -> list[dict]:
    """The training sessions that led to the resumed checkpoint, as its run's metrics.json lists
    them (read before this run rewrites that file when it continues in place)."""
    path = checkpoint_path(resume)
    record = RunDir.of_checkpoint(path).metrics if path else None
    if record is None or not record.is_file():
        return []
    earlier = json.loads(record.read_text())
    sessions = earlier.get("sessions") or [{key: earlier.get(key) for key in SESSION_KEYS}]  # older runs: one
    return [session for session in sessions if session["steps"] <= start_step]


def resume_point(resume, previous_split: str | None, folder: RunDir) -> tuple[str | None, int]:
    """The checkpoint to resume from and its step; it must come from a run on this run's split
    (`previous_split`, read before this run saved its own)."""
    path = checkpoint_path(resume)
    if path is None:
        return None, 0
    if previous_split and previous_split != json.loads(folder.split_record.read_text())["hash"]:
        raise ConfigError(f"diffusion.resume: {path} was trained on another split (data, split or seed differ)")
    return str(path), int(load_checkpoint(path, "diffusion.resume")["global_step"])


def previous_split(resume) -> str | None:
    path = checkpoint_path(resume)
    return checkpoint_split(path) if path else None


def load_finished(module, resume: str, folder: RunDir, in_place: bool) -> None:
    """The weights of a checkpoint already at trainer.max_steps (a run killed after its last
    checkpoint, before model/ was saved), into `module`; this run's folder becomes resumable too."""
    state = load_checkpoint(resume, "diffusion.resume")["state_dict"]
    missing = module.load_state_dict(state, strict=module.strict_loading).missing_keys
    trained = module.state_prefixes(module.trained)
    if any(key.startswith(trained) for key in missing):
        raise ConfigError(
            f"diffusion.resume: {resume} does not hold this model's trained weights "
            f"(missing e.g. {[k for k in missing if k.startswith(trained)][:3]})"
        )
    if not in_place:
        folder.checkpoints.mkdir(exist_ok=True)
        shutil.copy2(resume, folder.last_checkpoint)
