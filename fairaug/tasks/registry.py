"""Task name -> run(cfg) function."""

from __future__ import annotations

from fairaug.tasks import classify, montage

TASKS = {"classify": classify.run, "montage": montage.run}
