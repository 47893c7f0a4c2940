"""The diffusion model's parts: a tiny CPU-sized set built from explicit configs, or Stable
Diffusion 2.1 from a local diffusers-format folder; saved and loaded with diffusers'
`save_pretrained` / `from_pretrained` (safetensors, `local_files_only`).

Tiny works in pixel space: the UNet denoises the ED/ES/ED image itself (3 channels, scaled
to [-1, 1]) and the ControlNet reads the stacked masks at the same resolution. Stable
Diffusion works in its VAE's latent space; its ControlNet embeds the full-resolution masks
down to the latent size. A saved SD model holds the ControlNet (and whatever else was
trained) and names the base folder it reads the locked parts from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPTextConfig, CLIPTextModel
from transformers.utils import logging as transformers_logging

from fairaug.diffusion.prompts import build_tokenizer, load_tokenizer, prompt_vocabulary
from fairaug.errors import ConfigError

diffusers_logging.disable_progress_bar()  # 'Loading weights', 'Writing model shards': the tasks report progress
transformers_logging.disable_progress_bar()
# Without accelerate diffusers cannot load onto the meta device, and says so on every load unless told.
HAS_ACCELERATE = importlib.util.find_spec("accelerate") is not None

BASE_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")  # of a Stable Diffusion folder
META = "fairaug.json"


@dataclass
class Components:
    unet: UNet2DConditionModel
    controlnet: ControlNetModel
    text_encoder: CLIPTextModel
    tokenizer: object
    scheduler: DDPMScheduler
    meta: dict  # size, prompt template, kind, model id (and for SD: the base folder, the saved parts)
    vae: AutoencoderKL | None = None  # None: the UNet works in pixel space

    @property
    def latent_factor(self) -> int:
        return 1 if self.vae is None else 2 ** (len(self.vae.config.block_out_channels) - 1)

    def latent_shape(self, size: int) -> tuple[int, int, int]:
        side = size // self.latent_factor
        return int(self.unet.config.in_channels), side, side

    def to_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> what the UNet denoises (the images themselves in pixel space)."""
        if self.vae is None:
            return pixels
        encoded = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.sample()
        return encoded.float() * self.vae.config.scaling_factor

    def to_pixels(self, latents: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            return latents
        return self.vae.decode((latents / self.vae.config.scaling_factor).to(self.vae.dtype)).sample.float()

    def training_target(self, latents: torch.Tensor, noise: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """What the UNet learns to predict, as its scheduler says (SD 2.1 768 predicts v)."""
        kind = self.scheduler.config.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "v_prediction":
            return self.scheduler.get_velocity(latents, noise, steps)
        raise ConfigError(f"scheduler prediction_type '{kind}' is not supported (epsilon or v_prediction)")


def tiny_components(cfg, tokenizer, meta: dict) -> Components:
    """Small UNet + ControlNet + CLIP text encoder for pixel-space training on a CPU."""
    widths = tuple(int(w) for w in cfg.widths)
    if len(widths) < 2 or any(w % 8 for w in widths):
        raise ConfigError(f"diffusion.widths must list two or more multiples of 8 (group norm), got {list(widths)}")
    text_dim = int(cfg.text_dim)
    torch.manual_seed(int(cfg.init_seed))
    unet = UNet2DConditionModel(
        sample_size=int(cfg.size),
        in_channels=3,
        out_channels=3,
        layers_per_block=int(cfg.layers_per_block),
        block_out_channels=widths,
        down_block_types=("DownBlock2D", *["CrossAttnDownBlock2D"] * (len(widths) - 1)),
        up_block_types=(*["CrossAttnUpBlock2D"] * (len(widths) - 1), "UpBlock2D"),
        cross_attention_dim=text_dim,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    torch.manual_seed(int(cfg.init_seed) + 1)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16,))
    torch.manual_seed(int(cfg.init_seed) + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer.get_vocab()),
            hidden_size=text_dim,
            intermediate_size=2 * text_dim,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=tokenizer.model_max_length,
            pad_token_id=0,
            bos_token_id=0,
            eos_token_id=0,
        )
    )
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    return Components(unet, controlnet, text_encoder, tokenizer, scheduler, meta)


def as_dtype(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """`module` cast to `dtype`, without diffusers' warning about modules to keep in float32
    (it names none for these models)."""
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        return module.to(dtype)
    finally:
        diffusers_logging.set_verbosity(level)


def _load_part(name: str, folder: Path):
    """One part of a saved model or of a Stable Diffusion folder, offline."""
    if name == "tokenizer":
        return load_tokenizer(folder)
    classes = {"unet": UNet2DConditionModel, "controlnet": ControlNetModel, "vae": AutoencoderKL}
    if name == "text_encoder":  # transformers would keep the dtype it was saved in (fp16 in many SD folders)
        return CLIPTextModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    if name == "scheduler":
        return DDPMScheduler.from_pretrained(folder, local_files_only=True)
    return classes[name].from_pretrained(folder, local_files_only=True, low_cpu_mem_usage=HAS_ACCELERATE)


def check_base(folder) -> Path:
    """A local diffusers-format Stable Diffusion folder, or a ConfigError naming what is wrong."""
    if not folder:
        raise ConfigError(
            "diffusion=sd21 needs diffusion.pretrained=<local diffusers-format Stable Diffusion 2.1 folder>"
        )
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(
            f"diffusion.pretrained: {folder} is not a folder; give a local diffusers-format Stable "
            "Diffusion 2.1 folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)"
        )
    missing = [p for p in BASE_PARTS if not (folder / p).is_dir()]
    if missing:
        raise ConfigError(
            f"diffusion.pretrained: {folder} lacks {missing}; it must be a diffusers-format Stable "
            "Diffusion folder (as StableDiffusionPipeline.save_pretrained writes)"
        )
    return folder


def load_base(folder: str | Path) -> dict:
    """The locked parts of a local diffusers-format Stable Diffusion folder (SD 2.1 layout)."""
    folder = check_base(folder)
    try:
        return {name: _load_part(name, folder / name) for name in BASE_PARTS}
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"diffusion.pretrained: cannot load {folder}: {error}") from error


def stable_diffusion_components(cfg, meta: dict, base: dict | None = None) -> Components:
    """Stable Diffusion from `cfg.pretrained` (or the parts `base` already holds, as load_base
    returns them) and a new ControlNet copied from its UNet, whose conditioning embedding brings
    the full-size masks down to the latent size."""
    if base is None:
        base = load_base(cfg.pretrained)
        meta.update(pretrained=str(Path(cfg.pretrained).resolve()))
    factor = 2 ** (len(base["vae"].config.block_out_channels) - 1)
    depth = 2 ** (len(base["unet"].config.block_out_channels) - 1)
    if int(cfg.size) % (factor * depth):
        raise ConfigError(
            f"diffusion.size={cfg.size} must be a multiple of {factor * depth} for this model "
            f"(VAE factor {factor} x UNet depth {depth})"
        )
    embedding = (16, 32, 96, 256)[: factor.bit_length()]  # log2(factor) stride-2 stages, as SD's ControlNet
    torch.manual_seed(int(cfg.init_seed))
    controlnet = ControlNetModel.from_unet(base["unet"], conditioning_embedding_out_channels=embedding)
    return Components(
        base["unet"], controlnet, base["text_encoder"], base["tokenizer"], base["scheduler"], meta, base["vae"]
    )


def build_components(diffusion, cohort, model_id: str, base: dict | None = None) -> Components:
    """diffusion=tiny: built from its config with a tokenizer of the prompt words of `cohort`;
    diffusion=sd21: Stable Diffusion from diffusion.pretrained (or `base`, parts already in
    memory) plus a new ControlNet."""
    meta = {
        "kind": str(diffusion.name),
        "size": int(diffusion.size),
        "prompt_template": str(diffusion.prompt_template),
        "model_id": model_id,
    }
    if diffusion.name == "sd21":
        meta["saved"] = ["controlnet", *(["unet", "text_encoder"] if diffusion.train_base else [])]
        return stable_diffusion_components(diffusion, meta, base)
    tokenizer = build_tokenizer(prompt_vocabulary(meta["prompt_template"], cohort), max_length=16)
    return tiny_components(diffusion, tokenizer, meta)


def weights_digest(folder: Path) -> str:
    """A hash of the saved weights: a model trained further gets another id."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*/*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def save_components(parts: Components, folder: Path, extra: dict[str, object] | None = None) -> Path:
    """Save every part (and `extra` files: name -> writer(path)) beside `folder`, then rename it
    into place, so a model folder is either complete or absent."""
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for name in parts.meta.get("saved", ("unet", "controlnet", "text_encoder")):
        # float32 on disk, also for a part that was locked in half precision during training
        as_dtype(getattr(parts, name), torch.float32).save_pretrained(staging / name, safe_serialization=True)
    parts.tokenizer.save_pretrained(staging / "tokenizer")
    parts.scheduler.save_pretrained(staging / "scheduler")
    for name, writer in (extra or {}).items():
        writer(staging / name)
    parts.meta["model_id"] = f"{parts.meta['model_id']}-{weights_digest(staging)}"
    (staging / META).write_text(json.dumps(parts.meta, indent=2, sort_keys=True))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def model_folder(path: str | Path) -> Path:
    """Accept a controlnet_train run directory or the saved model folder inside it."""
    path = Path(path)
    for candidate in (path, path / "model"):
        if (candidate / META).is_file():
            return candidate
    raise ConfigError(
        f"generation.model: no trained model in {path} (expected {META} there or in {path / 'model'}); "
        "give the run directory of a task=controlnet_train run"
    )


def load_components(path: str | Path) -> Components:
    """A trained model; an SD one reads its locked parts from the base folder it names."""
    folder = model_folder(path)
    meta = json.loads((folder / META).read_text())
    saved = [*meta.get("saved", ("unet", "controlnet", "text_encoder")), "tokenizer", "scheduler"]
    missing = [p for p in saved if not (folder / p).is_dir()]
    if missing:
        raise ConfigError(f"{folder} is incomplete: missing {missing}")
    try:
        parts = {name: _load_part(name, folder / name) for name in saved}
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{folder} does not hold a compatible model: {error}") from error
    if meta["kind"] != "tiny":
        base = Path(meta["pretrained"])
        if not base.is_dir():
            raise ConfigError(
                f"{folder} was trained on the Stable Diffusion folder {base}, which is gone; "
                "restore it there to generate"
            )
        parts = {**load_base(base), **parts}
    return Components(
        parts["unet"],
        parts["controlnet"],
        parts["text_encoder"],
        parts["tokenizer"],
        parts["scheduler"],
        meta,
        parts.get("vae"),
    )
