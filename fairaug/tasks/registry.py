"""Task name -> run(cfg) function, and the one way the entry point runs a task."""

from __future__ import annotations

from fairaug.run_folder import owned
from fairaug.tasks import classify, cohort, controlnet_train, evaluate, montage, synth_generate, synth_quality

TASKS = {"classify": classify.run, "cohort": cohort.run, "controlnet_train": controlnet_train.run,
         "evaluate": evaluate.run, "montage": montage.run, "synth_generate": synth_generate.run,
         "synth_quality": synth_quality.run}


def run_task(cfg) -> dict:
    """The task named by task.name, owning its output folder while it runs."""
    with owned(cfg.paths.output_dir):
        return TASKS[cfg.task.name](cfg)
