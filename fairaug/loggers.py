"""Experiment loggers selected by the `logger` config group."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger

from fairaug.errors import ConfigError


def build_logger(cfg, output_dir: Path) -> Logger:
    if cfg.name == "csv":
        return CSVLogger(save_dir=str(output_dir), name="logs", version="")
    raise ConfigError(f"unknown logger '{cfg.name}'; known: ['csv']")
