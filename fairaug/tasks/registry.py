"""Task name -> run(cfg) function."""

from __future__ import annotations

from fairaug.tasks import classify, cohort, controlnet_train, evaluate, montage, synth_generate, synth_quality

TASKS = {"classify": classify.run, "cohort": cohort.run, "controlnet_train": controlnet_train.run,
         "evaluate": evaluate.run, "montage": montage.run, "synth_generate": synth_generate.run,
         "synth_quality": synth_quality.run}
