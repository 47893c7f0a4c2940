"""What every task shares: the files of a run folder by name, and the start of a run.

Tasks write these files and later tasks, sweeps, the quality report and the benchmarks read
them, so each name is spelt once, here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from fairaug.io import write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of_checkpoint(cls, checkpoint) -> RunDir:
        """The run folder a checkpoint (<run>/checkpoints/<name>.ckpt) belongs to."""
        return cls(Path(checkpoint).parent.parent)

    # every task
    @property
    def config(self) -> Path:  # the resolved config the run used
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def skipped(self) -> Path:  # subjects left out with their reasons (data.on_error=skip)
        return self.path / "skipped.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:  # where a killed run continues from
        return self.checkpoints / "last.ckpt"

    @property
    def split(self) -> Path:  # subject_id -> train/val/test
        return self.path / "split.csv"

    @property
    def split_record(self) -> Path:  # the split's hash and sizes
        return self.path / "split.json"

    # every job of a multirun
    @property
    def hydra(self) -> Path:  # Hydra's record of the job: what a sweep knows of a job that has not finished
        return self.path / ".hydra"

    @property
    def hydra_config(self) -> Path:
        return self.hydra / "config.yaml"

    @property
    def hydra_overrides(self) -> Path:
        return self.hydra / "overrides.yaml"

    @property
    def job_status(self) -> Path:  # started, completed or failed (with the error), from the sweep callback
        return self.path / "job_status.json"

    # classify, predict, evaluate
    @property
    def predictions(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def synthetic(self) -> Path:  # the synthetic subjects a classify run trained on
        return self.path / "synthetic.csv"

    @property
    def by_group(self) -> Path:  # the fairness report's table
        return self.path / "by_group.csv"

    @property
    def fairness(self) -> Path:
        return self.path / "fairness.json"

    @property
    def report(self) -> Path:
        return self.path / "report.md"

    # controlnet_train
    @property
    def model(self) -> Path:  # the trained generator, diffusers-format
        return self.path / "model"

    @property
    def training_subjects(self) -> Path:
        return self.path / "training_subjects.csv"

    @property
    def grids(self) -> Path:  # validation sample grids
        return self.path / "grids"

    def write_config(self, cfg) -> None:
        write_text(OmegaConf.to_yaml(cfg, resolve=True), self.config)

    def holds_sweep_job_of(self, cfg) -> bool:
        """Whether this folder is a sweep's job folder (the sweep callback records its status)
        whose earlier run had exactly this config: rerunning a sweep into its folder then
        continues that job instead of starting it over."""
        return (
            self.job_status.exists()
            and self.config.exists()
            and self.config.read_text() == OmegaConf.to_yaml(cfg, resolve=True)
        )


def start_run(cfg) -> RunDir:
    """The run's folder (created), with every random number generator seeded from `seed` and
    torch's CPU thread count fixed where `threads` says."""
    import lightning as L  # not at import: the entry point and --help stay free of torch
    import torch

    run = RunDir(cfg.paths.output_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    log.info("Run folder %s; seed %d; %d CPU thread(s)", run.path, int(cfg.seed), torch.get_num_threads())
    return run
