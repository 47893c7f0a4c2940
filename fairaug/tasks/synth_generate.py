"""task=synth_generate: a synthetic dataset from a trained model, resumable.

The plan (plan.csv, generation.json) is written first; each subject's PNGs are written
atomically and the manifest lists only subjects whose files are complete, so an interrupted
run resumes where it stopped, without duplicates or half-written files. File names are
subject ids, never prompt text.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from PIL import Image
from tqdm import tqdm

from fairaug.data.sources.synthetic import GENERATOR_SUBJECTS, MANIFEST
from fairaug.diffusion.components import load_components, model_folder
from fairaug.diffusion.planning import make_plan
from fairaug.diffusion.prompts import check_known, prompt_for, tokenize
from fairaug.diffusion.sampling import sample
from fairaug.errors import ConfigError
from fairaug.io import replace_atomically, write_csv, write_json

log = logging.getLogger(__name__)
SPEC = "generation.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SETTINGS = (
    "mode",
    "per_sample_multiplier",
    "num_samples",
    "max_samples",
    "scheduler",
    "steps",
    "guidance_scale",
    "negative_prompt",
    "control_scale",
    "seed",
    "dtype",
)


def _prepare_folder(folder: Path, spec: dict) -> None:
    """A new folder, or one this same generation started: anything else is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    ours = {
        SPEC,
        "plan.csv",
        MANIFEST,
        GENERATOR_SUBJECTS,
        "images",
        "masks",
        "plan_counts.csv",
        ".hydra",
        "__main__.log",
    }
    foreign = [p.name for p in folder.iterdir() if p.name not in ours and not p.name.startswith(".")]
    if foreign:
        raise ConfigError(
            f"generation output {folder} holds foreign files {sorted(foreign)[:5]}; choose an empty "
            "folder (generation.output=...)"
        )
    if (folder / SPEC).exists():
        previous = {"dtype": "float32", **json.loads((folder / SPEC).read_text())}  # older folders lack dtype
        if previous != spec:
            raise ConfigError(
                f"{folder} holds a different generation ({folder / SPEC}); resume with the same "
                "settings or choose another generation.output"
            )
    for staging in folder.glob("*/.*.tmp-*"):  # PNGs an interrupted run had not finished writing
        staging.unlink()


def _write_manifest(plan: pd.DataFrame, folder: Path) -> None:
    """The manifest lists exactly the subjects whose image and mask are complete."""
    done = [(folder / image).exists() and (folder / mask).exists() for image, mask in zip(plan.image, plan["mask"])]
    write_csv(plan[done], folder / MANIFEST)


def _save_png(array: np.ndarray, path: Path) -> None:
    replace_atomically(path, lambda p: Image.fromarray(array).save(p, format="PNG"))


def run(cfg) -> dict:
    gen = cfg.generation
    if not gen.model:
        raise ConfigError("task=synth_generate needs generation.model=<a controlnet_train run directory>")
    parts = load_components(gen.model)
    folder = Path(gen.output) if gen.output else Path(cfg.paths.output_dir)
    model = model_folder(gen.model)
    spec = {
        "model": str(model.resolve()),
        "model_id": parts.meta["model_id"],
        **{k: OmegaConf.to_container(gen, resolve=True)[k] for k in SETTINGS},
    }
    _prepare_folder(folder, spec)
    training = pd.read_csv(model / "training_subjects.csv", dtype={"subject_id": str})
    masks = np.load(model / "training_masks.npy")
    plan, counts = make_plan(gen.mode, training, gen, int(gen.seed))
    if counts is not None:
        write_csv(counts, folder / "plan_counts.csv")
        log.info(
            "Balance plan (training count -> synthetic to generate):\n%s",
            counts[counts.generate > 0].to_string(index=False),
        )
    template = parts.meta["prompt_template"]
    plan["prompt"] = [prompt_for(row, template) for _, row in plan.iterrows()]
    check_known([*plan.prompt.unique(), gen.negative_prompt], parts.tokenizer)
    plan["image"] = [f"images/{s}.png" for s in plan.subject_id]
    plan["mask"] = [f"masks/{s}.png" for s in plan.subject_id]
    plan["model_id"] = parts.meta["model_id"]
    write_csv(plan, folder / "plan.csv")
    write_json(spec, folder / SPEC)
    (folder / "images").mkdir(exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)

    row_of = {s: i for i, s in enumerate(training.subject_id)}
    write_csv(training, folder / GENERATOR_SUBJECTS)
    pending = plan[[not (folder / p).exists() for p in plan.image]]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for part in (parts.unet, parts.controlnet, parts.text_encoder, parts.vae):
        if part is not None:
            part.to(device).eval()
            if gen.dtype != "float32":
                part.to(DTYPES[gen.dtype])
    negative = tokenize(parts.tokenizer, [gen.negative_prompt])
    batch = int(gen.batch_size)
    with tqdm(total=len(plan), initial=len(plan) - len(pending), desc="generating", unit="subject") as progress:
        for start in range(0, len(pending), batch):
            chunk = pending.iloc[start : start + batch]
            condition = torch.from_numpy(masks[[row_of[s] for s in chunk.source_subject]])
            images = sample(
                parts,
                condition,
                tokenize(parts.tokenizer, list(chunk.prompt)),
                negative.expand(len(chunk), -1),
                list(chunk.seed),
                int(gen.steps),
                gen.scheduler,
                float(gen.guidance_scale),
                float(gen.control_scale),
            )
            for row, image, mask in zip(chunk.itertuples(), images, condition):
                _save_png(mask.permute(1, 2, 0).numpy().astype(np.uint8), folder / row.mask)
                _save_png((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), folder / row.image)
            _write_manifest(plan, folder)
            progress.update(len(chunk))
    _write_manifest(plan, folder)  # also after a run killed between its last images and its manifest
    log.info("%d synthetic subjects in %s", len(plan), folder)
    return {"folder": str(folder), "n": len(plan)}
