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

from omegaconf import OmegaConf
from tqdm import tqdm

from fairaug.config import CLASSIFIER_SETTINGS
from fairaug.data.cohort import PERSON_ATTRIBUTES
from fairaug.data.sources.synthetic import GENERATOR_SUBJECTS, MANIFEST
from fairaug.diffusion.generator import Generator, write_manifest, write_subject
from fairaug.diffusion.planning import PROMPT_ATTRIBUTES, make_plan
from fairaug.diffusion.prompts import prompts_for
from fairaug.errors import ConfigError, OutputExists
from fairaug.io import write_csv, write_json

log = logging.getLogger(__name__)
# Never read here (a test generates with them unset): the experiment keeps synthetic data when they change.
UNREAD_SETTINGS = (*CLASSIFIER_SETTINGS, "quality", "app")
SPEC = "generation.json"
OLDER_DEFAULTS = {"dtype": "float32", "shuffle_attributes": False, "dose": 1.0}  # settings older folders do not record
SETTINGS = (
    "mode",
    "per_sample_multiplier",
    "num_samples",
    "max_samples",
    "fill_empty_cells",
    "shuffle_attributes",
    "dose",
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
        previous = {**OLDER_DEFAULTS, **json.loads((folder / SPEC).read_text())}
        if previous["mode"] == "copy":  # the planner's rules on empty cells and donors never touched copy
            previous.setdefault("fill_empty_cells", spec["fill_empty_cells"])
        if previous != spec:
            raise OutputExists(
                f"{folder} holds a different generation ({folder / SPEC}); resume with the same "
                "settings or choose another generation.output"
            )
    for staging in folder.glob("*/.*.tmp-*"):  # PNGs an interrupted run had not finished writing
        staging.unlink()


def run(cfg) -> dict:
    gen = cfg.generation
    if not gen.model:
        raise ConfigError("task=synth_generate needs generation.model=<a controlnet_train run directory>")
    generator = Generator(gen.model, str(gen.dtype))
    folder = Path(gen.output) if gen.output else Path(cfg.paths.output_dir)
    spec = {
        "model": str(generator.folder.resolve()),
        "model_id": generator.model_id,
        **{k: OmegaConf.to_container(gen, resolve=True)[k] for k in SETTINGS},
    }
    _prepare_folder(folder, spec)
    training = generator.training
    plan, counts = make_plan(gen.mode, training, gen, int(gen.seed))
    if counts is not None:
        write_csv(counts, folder / "plan_counts.csv")
        log.info(
            "Balance plan (training count -> synthetic to generate):\n%s",
            counts[counts.generate > 0].to_string(index=False),
        )
    template = generator.parts.meta["prompt_template"]
    said = plan.drop(columns=PERSON_ATTRIBUTES).rename(columns=dict(zip(PROMPT_ATTRIBUTES, PERSON_ATTRIBUTES)))
    plan["prompt"] = prompts_for(said, template)  # the planned attributes, or shuffled ones
    generator.check_prompts([*plan.prompt.unique(), gen.negative_prompt])
    plan["image"] = [f"images/{s}.png" for s in plan.subject_id]
    plan["mask"] = [f"masks/{s}.png" for s in plan.subject_id]
    plan["model_id"] = generator.model_id
    write_csv(plan, folder / "plan.csv")
    write_json(spec, folder / SPEC)
    (folder / "images").mkdir(exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    write_csv(training, folder / GENERATOR_SUBJECTS)

    pending = plan[[not (folder / p).exists() for p in plan.image]]
    batch = int(gen.batch_size)
    with tqdm(total=len(plan), initial=len(plan) - len(pending), desc="generating", unit="subject") as progress:
        for start in range(0, len(pending), batch):
            chunk = pending.iloc[start : start + batch]
            masks = generator.training_masks(chunk.source_subject)
            images = generator.images(masks, list(chunk.prompt), list(chunk.seed), gen)
            for row, image, mask in zip(chunk.itertuples(), images, masks):
                write_subject(folder, row.image, row.mask, image, mask)
            write_manifest(plan, folder)
            progress.update(len(chunk))
    write_manifest(plan, folder)  # also after a run killed between its last images and its manifest
    log.info("%d synthetic subjects in %s", len(plan), folder)
    return {"folder": str(folder), "n": len(plan)}
