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

import json
import logging
import shutil
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, WeightedRandomSampler

from fairaug.data.cohort import ATTRIBUTES
from fairaug.data.datamodule import CachedViewDataset, CohortDataModule
from fairaug.data.splits import checkpoint_split, save_split
from fairaug.diffusion.components import (
    Components,
    check_base,
    save_components,
    stable_diffusion_components,
    tiny_components,
)
from fairaug.diffusion.module import ControlNetModule, PromptedViews, prompt_weights
from fairaug.diffusion.prompts import build_tokenizer, check_known, prompt_vocabulary, prompts_for, tokenize
from fairaug.errors import ConfigError
from fairaug.io import write_csv, write_json, write_text
from fairaug.loggers import log_config, run_logger
from fairaug.models.callbacks import progress_bars
from fairaug.models.trainer import trainer_arguments

log = logging.getLogger(__name__)
ATTRIBUTE_COLUMNS = ["subject_id", "label", *ATTRIBUTES]
GRID_ROWS = 4
SESSION_KEYS = ("start_step", "steps", "train_seconds", "final_loss")


def _checkpoint_path(resume) -> Path | None:
    if not resume:
        return None
    path = Path(resume)
    path = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"diffusion.resume: no checkpoint at {path}")
    return path


def _check_folder(output_dir: Path, resume) -> bool:
    """Whether this run continues the training already in output_dir; a run that would start
    over in a folder holding a training (checkpoint, model/ or metrics.json) is refused."""
    checkpoint, own = _checkpoint_path(resume), output_dir / "checkpoints" / "last.ckpt"
    in_place = checkpoint is not None and checkpoint.resolve() == own.resolve()
    earlier = [name for name in ("checkpoints/last.ckpt", "model", "metrics.json") if (output_dir / name).exists()]
    if earlier and not in_place:
        raise ConfigError(f"{output_dir} already holds a task=controlnet_train run ({', '.join(earlier)}): continue "
                          f"it with diffusion.resume={output_dir}, or train into a new folder")
    return in_place


def _earlier_sessions(resume, start_step: int) -> list[dict]:
    """The training sessions that led to the resumed checkpoint, as its run's metrics.json lists
    them (read before this run rewrites that file when it continues in place)."""
    path = _checkpoint_path(resume)
    record = path.parent.parent / "metrics.json" if path else None
    if record is None or not record.is_file():
        return []
    earlier = json.loads(record.read_text())
    sessions = earlier.get("sessions") or [{key: earlier.get(key) for key in SESSION_KEYS}]  # older runs: one
    return [session for session in sessions if session["steps"] <= start_step]


def _resume_checkpoint(resume, previous_split: str | None, output_dir: Path) -> tuple[str | None, int]:
    """The checkpoint to resume from and its step; it must come from a run on the same split."""
    path = _checkpoint_path(resume)
    if path is None:
        return None, 0
    if previous_split and previous_split != json.loads((output_dir / "split.json").read_text())["hash"]:
        raise ConfigError(f"diffusion.resume: {path} was trained on another split (data, split or seed differ)")
    return str(path), int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def training_views(cfg, output_dir: Path) -> tuple[CachedViewDataset, pd.DataFrame]:
    """The edes views (at the diffusion size) of the real training subjects; the split is
    saved with the run (split.csv), as classify saves it."""
    view_cfg = OmegaConf.merge(cfg, {"input": {"name": "edes", "view": "sa", "size": int(cfg.diffusion.size)}})
    data = CohortDataModule(view_cfg)
    data.prepare()
    save_split(data.split, data.cohort, output_dir)
    train = data.datasets["train"].table
    train = train[train.origin == "real"].reset_index(drop=True)
    return CachedViewDataset(data.cache, train), data.cohort


def build_components(cfg, cohort: pd.DataFrame, output_dir: Path) -> Components:
    """diffusion=tiny: built from its config with a tokenizer of the prompt words;
    diffusion=sd21: Stable Diffusion from diffusion.pretrained plus a new ControlNet."""
    diffusion = cfg.diffusion
    meta = {"kind": str(diffusion.name), "size": int(diffusion.size), "prompt_template": str(diffusion.prompt_template),
            "model_id": f"fairaug-{diffusion.name}-{output_dir.name}"}
    if diffusion.name == "tiny":
        tokenizer = build_tokenizer(prompt_vocabulary(meta["prompt_template"], cohort), max_length=16)
        return tiny_components(diffusion, tokenizer, meta)
    if diffusion.name == "sd21":
        meta["saved"] = ["controlnet", *(["unet", "text_encoder"] if diffusion.train_base else [])]
        return stable_diffusion_components(diffusion, meta)
    raise ConfigError(f"unknown diffusion model '{diffusion.name}'; known: tiny, sd21")


def run(cfg) -> dict:
    if str(cfg.trainer.precision).endswith("-true") and str(cfg.trainer.precision) not in ("32-true", "64-true"):
        raise ConfigError(f"trainer.precision={cfg.trainer.precision} would train the ControlNet's weights in half "
                          "precision, where lr 1e-5 updates round away; use bf16-mixed or 16-mixed")
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    in_place = _check_folder(output_dir, cfg.diffusion.resume)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    write_text(OmegaConf.to_yaml(cfg, resolve=True), output_dir / "config.yaml")
    resume_from = _checkpoint_path(cfg.diffusion.resume)
    previous_split = checkpoint_split(resume_from) if resume_from else None
    if cfg.diffusion.name == "sd21":  # before the views are cached at 512 px
        check_base(cfg.diffusion.get("pretrained"))
    views, cohort = training_views(cfg, output_dir)
    table = views.table
    write_csv(table[ATTRIBUTE_COLUMNS], output_dir / "training_subjects.csv")

    parts = build_components(cfg, cohort, output_dir)
    prompts = prompts_for(table, parts.meta["prompt_template"])
    check_known(prompts, parts.tokenizer)
    input_ids = tokenize(parts.tokenizer, prompts)

    dataset = PromptedViews(views, input_ids)
    weights = torch.as_tensor(prompt_weights(prompts, float(cfg.diffusion.max_weight_ratio)), dtype=torch.double)
    sampler = WeightedRandomSampler(weights, len(dataset), replacement=True,
                                    generator=torch.Generator().manual_seed(int(cfg.seed)))
    batch_size = int(cfg.diffusion.batch_size)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=len(dataset) > batch_size,
                        num_workers=int(cfg.loader.num_workers))
    shown = [views[i] for i in range(min(GRID_ROWS, len(views)))]
    grid = {"real": torch.stack([s["image"] for s in shown]), "masks": torch.stack([s["masks"] for s in shown]),
            "input_ids": input_ids[:len(shown)], "prompts": prompts[:len(shown)]}
    module = ControlNetModule(parts, float(cfg.diffusion.lr), bool(cfg.diffusion.train_base),
                              float(cfg.diffusion.prompt_dropout), tokenize(parts.tokenizer, [""])[0], grid,
                              int(cfg.diffusion.grid_every), output_dir / "grids",
                              bool(cfg.diffusion.gradient_checkpointing))

    arguments = trainer_arguments(cfg)
    max_steps = int(cfg.trainer.max_steps) if cfg.trainer.max_steps > 0 else int(cfg.diffusion.steps)
    arguments.update(max_epochs=-1, max_steps=max_steps, num_sanity_val_steps=0, limit_val_batches=0)
    checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=int(cfg.diffusion.checkpoint_every))
    resume, start_step = _resume_checkpoint(cfg.diffusion.resume, previous_split, output_dir)
    sessions = _earlier_sessions(resume, start_step)
    training_masks = np.stack([views[i]["masks"].numpy() for i in range(len(views))])
    with run_logger(cfg.logger, output_dir, continued=in_place) as logger:
        log_config(logger, cfg)
        trainer = L.Trainer(**arguments, logger=logger, callbacks=[checkpoint, *progress_bars(arguments, steps=True)],
                            default_root_dir=str(output_dir))
        start = time.perf_counter()
        if resume and start_step >= max_steps:  # e.g. killed after its last checkpoint, before model/ was saved
            log.info("%s is already at step %d (trainer.max_steps=%d): saving its model without training", resume,
                     start_step, max_steps)
            state = torch.load(resume, map_location="cpu", weights_only=True, mmap=True)["state_dict"]
            missing = module.load_state_dict(state, strict=module.strict_loading).missing_keys
            trained = module.state_prefixes(module.trained)
            if any(key.startswith(trained) for key in missing):
                raise ConfigError(f"diffusion.resume: {resume} does not hold this model's trained weights "
                                  f"(missing e.g. {[k for k in missing if k.startswith(trained)][:3]})")
            if not in_place:
                (output_dir / "checkpoints").mkdir(exist_ok=True)
                shutil.copy2(resume, output_dir / "checkpoints" / "last.ckpt")  # this run is resumable too
            steps = start_step
        else:
            trainer.fit(module, train_dataloaders=loader, ckpt_path=resume, weights_only=True)
            # the full state (optimizer too) for a resume; saying so also silences Lightning's "weights_only was
            # not set" notice, which is about this save, not about an unsafe load
            trainer.save_checkpoint(output_dir / "checkpoints" / "last.ckpt", weights_only=False)
            steps = int(trainer.global_step)
            loss = trainer.callback_metrics.get("train/loss")
            sessions.append({"start_step": start_step, "steps": steps, "train_seconds": time.perf_counter() - start,
                             "final_loss": None if loss is None else float(loss)})
        model_dir = save_components(parts, output_dir / "model", extra={
            "training_masks.npy": lambda path: np.save(path, training_masks),
            "training_subjects.csv": lambda path: table[ATTRIBUTE_COLUMNS].to_csv(path, index=False),
            "split.json": lambda path: path.write_text((output_dir / "split.json").read_text())})
        module.to(trainer.strategy.root_device)  # fit's teardown leaves it on the CPU
        module.save_grid("final")
    # the loss at the final step is known if the last session trained up to it
    final_loss = sessions[-1]["final_loss"] if sessions and sessions[-1]["steps"] == steps else None
    seconds = sum(session["train_seconds"] or 0.0 for session in sessions)
    metrics = {"steps": steps, "start_step": start_step, "train_seconds": seconds, "final_loss": final_loss,
               "n_train": len(table), "model": str(model_dir), "sessions": sessions}
    write_json(metrics, output_dir / "metrics.json")
    log.info("Trained %d steps (%.0f s in all) on %d subjects; model in %s", steps, seconds, len(table), model_dir)
    return metrics
