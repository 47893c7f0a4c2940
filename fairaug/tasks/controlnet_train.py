"""task=controlnet_train: the mask- and text-conditioned diffusion model, on the training split.

Only real subjects of the training split are ever seen (validation and test subjects and any
synthetic data are excluded; `training_subjects.csv` lists who was). Writes into the run
directory: model/ (save_pretrained parts + the training masks and attributes that generation
draws from), checkpoints/last.ckpt (resumable: diffusion.resume=<this run>), grids/*.png
(real and generated ED/ES with the mask outlines) and metrics.json.

A folder holds one training: rerunning into a folder that already has one is refused unless
diffusion.resume names that folder, which continues it in place, appending to its
logs/metrics.csv and to the training sessions metrics.json lists.
"""

from __future__ import annotations

import logging
import time

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import ModelCheckpoint

from fairaug.config import CLASSIFIER_SETTINGS
from fairaug.diffusion import resume as resuming
from fairaug.diffusion.components import build_components, check_base, save_components
from fairaug.diffusion.data import (
    TRAINING_COLUMNS,
    PromptedViews,
    TrainingData,
    check_training_view,
    training_views,
)
from fairaug.diffusion.grid import ValidationGrid
from fairaug.diffusion.module import ControlNetModule
from fairaug.diffusion.prompts import check_known, prompts_for, tokenize
from fairaug.errors import ConfigError
from fairaug.io import load_checkpoint, write_csv, write_json
from fairaug.loggers import adopt_written_metrics, log_config, run_logger
from fairaug.models.callbacks import progress_bars
from fairaug.models.trainer import spawns_workers, trainer_arguments
from fairaug.runtime import RunDir, start_run

log = logging.getLogger(__name__)
# Never read here (a test trains with them unset): the experiment keeps a ControlNet when they change.
UNREAD_SETTINGS = (*CLASSIFIER_SETTINGS, "quality", "app")


def run(cfg) -> dict:
    diffusion = cfg.diffusion
    precision = str(cfg.trainer.precision)
    if precision.endswith("-true") and precision not in ("32-true", "64-true"):
        raise ConfigError(
            f"trainer.precision={precision} would train the ControlNet's weights in half "
            "precision, where lr 1e-5 updates round away; use bf16-mixed or 16-mixed"
        )
    check_training_view(cfg)
    folder = start_run(cfg)
    in_place = resuming.continues_in_place(folder, diffusion.resume)
    folder.write_config(cfg)
    previous_split = resuming.previous_split(diffusion.resume)  # before this run saves its own split
    if diffusion.name == "sd21":  # before the views are cached at 512 px
        check_base(diffusion.get("pretrained"))
    views, cohort = training_views(cfg, folder)
    table = views.table
    write_csv(table[TRAINING_COLUMNS], folder.training_subjects)

    parts = build_components(diffusion, cohort, model_id=f"fairaug-{diffusion.name}-{folder.path.name}")
    prompts = prompts_for(table, parts.meta["prompt_template"])
    check_known(prompts, parts.tokenizer)
    input_ids = tokenize(parts.tokenizer, prompts)
    data = TrainingData(PromptedViews(views, input_ids), prompts, diffusion, int(cfg.seed), int(cfg.loader.num_workers))
    module = ControlNetModule(parts, diffusion)
    grid = ValidationGrid(views, input_ids, prompts, cfg.generation, int(diffusion.grid_every), folder.grids)
    resume, start_step = resuming.resume_point(diffusion.resume, previous_split, folder)
    sessions = resuming.earlier_sessions(resume, start_step)
    training_masks = np.stack([views[i]["masks"].numpy() for i in range(len(views))])
    with run_logger(cfg.logger, folder.path, continued=in_place) as logger:
        log_config(logger, cfg)
        trainer = _trainer(cfg, folder, logger, grid)
        if resume and start_step >= trainer.max_steps:
            log.info(
                "%s is already at step %d (trainer.max_steps=%d): saving its model without training",
                resume,
                start_step,
                trainer.max_steps,
            )
            resuming.load_finished(module, resume, folder, in_place)
            steps = start_step
        else:
            sessions.append(_train(trainer, module, data, resume, start_step, folder))
            steps = sessions[-1]["steps"]
            if spawns_workers(cfg):  # the spawned workers logged through their own copies
                adopt_written_metrics(logger)
        model_dir = save_components(
            parts,
            folder.model,
            extra={
                "training_masks.npy": lambda path: np.save(path, training_masks),
                "training_subjects.csv": lambda path: table[TRAINING_COLUMNS].to_csv(path, index=False),
                "split.json": lambda path: path.write_text(folder.split_record.read_text()),
            },
        )
        module.to(trainer.strategy.root_device)  # fit's teardown leaves it on the CPU
        grid.save(module, "final", trainer.loggers, steps)  # a spawned run's module has no trainer here
    # the loss at the final step is known if the last session trained up to it
    final_loss = sessions[-1]["final_loss"] if sessions and sessions[-1]["steps"] == steps else None
    seconds = sum(session["train_seconds"] or 0.0 for session in sessions)
    metrics = {
        "steps": steps,
        "start_step": start_step,
        "train_seconds": seconds,
        "final_loss": final_loss,
        "n_train": len(table),
        "model": str(model_dir),
        "sessions": sessions,
    }
    write_json(metrics, folder.metrics)
    log.info("Trained %d steps (%.0f s in all) on %d subjects; model in %s", steps, seconds, len(table), model_dir)
    return metrics


def _trainer(cfg, folder: RunDir, logger, grid: ValidationGrid) -> L.Trainer:
    """Bounded by steps (trainer.max_steps, else diffusion.steps), no validation loop, a resumable
    checkpoint every diffusion.checkpoint_every steps."""
    arguments = trainer_arguments(cfg)
    max_steps = int(cfg.trainer.max_steps) if cfg.trainer.max_steps > 0 else int(cfg.diffusion.steps)
    arguments.update(max_epochs=-1, max_steps=max_steps, num_sanity_val_steps=0, limit_val_batches=0)
    checkpoint = ResumableCheckpoint(
        dirpath=folder.checkpoints,
        save_last=True,
        save_top_k=0,
        every_n_train_steps=int(cfg.diffusion.checkpoint_every),
        enable_version_counter=False,  # always last.ckpt, whatever a resumed checkpoint recorded
    )
    return L.Trainer(
        **arguments,
        logger=logger,
        callbacks=[checkpoint, grid, *progress_bars(arguments, steps=True)],
        default_root_dir=str(folder.path),
    )


class ResumableCheckpoint(ModelCheckpoint):
    """last.ckpt every `every_n_train_steps` and where training ends (the full state, optimizer
    too, for a resume). Saved from inside fit: under trainer=ddp (ddp_spawn) only the workers hold
    the optimizer, and rank 0 writes. Lightning's own end-of-training save only covers a session
    that saved nothing before."""

    def on_train_end(self, trainer, module) -> None:
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _train(trainer: L.Trainer, module, data: TrainingData, resume: str | None, start_step: int, folder: RunDir) -> dict:
    """One training session, saved resumable; what it did, as metrics.json lists sessions. The step
    reached is read from the checkpoint: a spawned DDP run returns weights and metrics, not its loop state."""
    before = _modified(folder.last_checkpoint)
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    seconds = time.perf_counter() - start
    if _modified(folder.last_checkpoint) in (None, before):
        raise ConfigError(
            f"task=controlnet_train trained no step: {len(data.dataset)} training images over "
            f"{trainer.world_size} process(es) make no batch of diffusion.batch_size={data.batch_size} "
            "(or trainer.limit_train_batches is 0)"
        )
    loss = trainer.callback_metrics.get("train/loss")
    return {
        "start_step": start_step,
        "steps": int(load_checkpoint(folder.last_checkpoint, "the final checkpoint")["global_step"]),
        "train_seconds": seconds,
        "final_loss": None if loss is None else float(loss),
    }


def _modified(path) -> int | None:
    return path.stat().st_mtime_ns if path.is_file() else None
