"""Task name -> run(cfg) function."""

from __future__ import annotations

from fairaug.tasks import classify, evaluate, montage

TASKS = {"classify": classify.run, "evaluate": evaluate.run, "montage": montage.run}
