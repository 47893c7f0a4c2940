"""A trained generator ready to sample, and the files a synthetic dataset is made of.

One code path for every consumer: task=synth_generate and the interactive app load the model
here, sample through `Generator.images` and write subjects with `write_subject` and
`write_manifest`, so an image made in the app with seed s is the one synth_generate makes for
the same mask, prompt, settings and seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fairaug.data.sources.synthetic import MANIFEST
from fairaug.diffusion.components import load_components, model_folder
from fairaug.diffusion.prompts import check_known, tokenize
from fairaug.diffusion.sampling import sample
from fairaug.io import replace_atomically, write_csv

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Generator:
    """The model of a controlnet_train run (or its model/ folder), on the GPU when there is one,
    in `dtype`, with the training subjects and masks that generation draws masks from."""

    def __init__(self, model, dtype: str = "float32"):
        self.parts = load_components(model)
        self.folder = model_folder(model)
        self.training = pd.read_csv(self.folder / "training_subjects.csv", dtype={"subject_id": str})
        self.masks = np.load(self.folder / "training_masks.npy")  # (subjects, 3, H, W): ED, ES, ED labels
        self.row_of = {subject: i for i, subject in enumerate(self.training.subject_id)}
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        for part in (self.parts.unet, self.parts.controlnet, self.parts.text_encoder, self.parts.vae):
            if part is not None:
                part.to(self.device).eval()
                if dtype != "float32":
                    part.to(DTYPES[dtype])

    @property
    def model_id(self) -> str:
        return self.parts.meta["model_id"]

    @property
    def size(self) -> int:
        return int(self.parts.meta["size"])

    def training_masks(self, subjects) -> torch.Tensor:
        return torch.from_numpy(self.masks[[self.row_of[s] for s in subjects]])

    def check_prompts(self, prompts) -> None:
        """A ConfigError naming any word the model's tokenizer does not know."""
        check_known(list(prompts), self.parts.tokenizer)

    def images(self, masks: torch.Tensor, prompts: list[str], seeds: list[int], settings) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] for stacked masks (B, 3, H, W) with label values 0-3, sampled
        with the generation settings (steps, scheduler, guidance_scale, control_scale,
        negative_prompt); each image from its own seeded noise."""
        negative = tokenize(self.parts.tokenizer, [str(settings.negative_prompt)])
        return sample(
            self.parts,
            masks,
            tokenize(self.parts.tokenizer, list(prompts)),
            negative.expand(len(prompts), -1),
            [int(s) for s in seeds],
            int(settings.steps),
            str(settings.scheduler),
            float(settings.guidance_scale),
            float(settings.control_scale),
        )


def as_png_array(image: torch.Tensor) -> np.ndarray:
    """An image in [0, 1], (3, H, W), as the (H, W, 3) uint8 pixels its PNG holds."""
    return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _save_png(array: np.ndarray, path: Path) -> None:
    replace_atomically(path, lambda p: Image.fromarray(array).save(p, format="PNG"))


def write_subject(folder: Path, image_file: str, mask_file: str, image: torch.Tensor, masks: torch.Tensor) -> None:
    """One synthetic subject's PNGs, each written atomically: the mask first, so an image file
    only exists beside its mask."""
    _save_png(masks.permute(1, 2, 0).numpy().astype(np.uint8), folder / mask_file)
    _save_png(as_png_array(image), folder / image_file)


def write_manifest(plan: pd.DataFrame, folder: Path) -> None:
    """The manifest lists exactly the subjects whose image and mask are complete."""
    done = [(folder / image).exists() and (folder / mask).exists() for image, mask in zip(plan.image, plan["mask"])]
    write_csv(plan[done], folder / MANIFEST)
