"""Task name -> the module whose run(cfg) performs it, and the one way the entry point runs a
task. A task's module is imported only when it runs: torch and Lightning stay out of
`--help`, tab completion and config errors."""

from __future__ import annotations

from importlib import import_module

from fairaug.config import validate_config
from fairaug.errors import ConfigError
from fairaug.run_folder import owned

TASKS = (
    "app",
    "classify",
    "cohort",
    "controlnet_train",
    "evaluate",
    "montage",
    "pipeline",
    "predict",
    "synth_generate",
    "synth_quality",
)


def run_task(cfg) -> dict:
    """The task named by task.name, on a config checked against the schemas, owning its output
    folder while it runs."""
    if cfg.task.name not in TASKS:
        raise ConfigError(f"unknown task '{cfg.task.name}'; known: {list(TASKS)}")
    validate_config(cfg)
    run = import_module(f"fairaug.tasks.{cfg.task.name}").run
    with owned(cfg.paths.output_dir):
        return run(cfg)
