"""Checkpoints that are complete under their final name, or absent.

Lightning serialises into memory and writes the bytes through an fsspec transaction whose
temporary file lies in the system temp folder; the move onto another filesystem is a copy into
the final name, so a full disk leaves a truncated best.ckpt or last.ckpt that a later
evaluation or resume reads as a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fairaug.io import replace_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write beside the final name, rename onto it; a failed write leaves nothing behind."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        replace_atomically(Path(path), lambda staging: _save(checkpoint, staging))


def _save(checkpoint: dict, staging: Path) -> None:
    # Into an open file: torch.save given a path reports a full disk as an opaque RuntimeError,
    # through a file object it is an OSError with its errno.
    with open(staging, "wb") as file:
        torch.save(checkpoint, file)
