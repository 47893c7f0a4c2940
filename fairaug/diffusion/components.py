"""The diffusion model's parts: a tiny CPU-sized set built from explicit configs, or Stable
Diffusion 2.1 from a local diffusers-format folder; saved and loaded with diffusers'
`save_pretrained` / `from_pretrained` (safetensors, `local_files_only`).

Tiny works in pixel space: the UNet denoises the ED/ES/ED image itself (3 channels, scaled
to [-1, 1]) and the ControlNet reads the stacked masks at the same resolution.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import ControlNetModel, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from fairaug.diffusion.prompts import load_tokenizer
from fairaug.errors import ConfigError

PARTS = ("unet", "controlnet", "text_encoder", "tokenizer", "scheduler")
META = "fairaug.json"


@dataclass
class Components:
    unet: UNet2DConditionModel
    controlnet: ControlNetModel
    text_encoder: CLIPTextModel
    tokenizer: object
    scheduler: DDPMScheduler
    meta: dict  # size, prompt template, kind, model id


def tiny_components(cfg, tokenizer, meta: dict) -> Components:
    """Small UNet + ControlNet + CLIP text encoder for pixel-space training on a CPU."""
    widths = tuple(int(w) for w in cfg.widths)
    if len(widths) < 2 or any(w % 8 for w in widths):
        raise ConfigError(f"diffusion.widths must list two or more multiples of 8 (group norm), got {list(widths)}")
    text_dim = int(cfg.text_dim)
    torch.manual_seed(int(cfg.init_seed))
    unet = UNet2DConditionModel(
        sample_size=int(cfg.size), in_channels=3, out_channels=3, layers_per_block=int(cfg.layers_per_block),
        block_out_channels=widths, down_block_types=("DownBlock2D", *["CrossAttnDownBlock2D"] * (len(widths) - 1)),
        up_block_types=(*["CrossAttnUpBlock2D"] * (len(widths) - 1), "UpBlock2D"), cross_attention_dim=text_dim,
        attention_head_dim=8, norm_num_groups=8)
    torch.manual_seed(int(cfg.init_seed) + 1)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16,))
    torch.manual_seed(int(cfg.init_seed) + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()), hidden_size=text_dim, intermediate_size=2 * text_dim,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=0, bos_token_id=0, eos_token_id=0))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    return Components(unet, controlnet, text_encoder, tokenizer, scheduler, meta)


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
    for name in ("unet", "controlnet", "text_encoder"):
        getattr(parts, name).save_pretrained(staging / name, safe_serialization=True)
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
    raise ConfigError(f"generation.model: no trained model in {path} (expected {META} there or in {path / 'model'}); "
                      "give the run directory of a task=controlnet_train run")


def load_components(path: str | Path) -> Components:
    folder = model_folder(path)
    missing = [p for p in PARTS if not (folder / p).is_dir()]
    if missing:
        raise ConfigError(f"{folder} is incomplete: missing {missing}")
    try:
        return Components(
            UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True),
            ControlNetModel.from_pretrained(folder / "controlnet", local_files_only=True),
            CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True),
            load_tokenizer(folder / "tokenizer"),
            DDPMScheduler.from_pretrained(folder / "scheduler", local_files_only=True),
            json.loads((folder / META).read_text()))
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{folder} does not hold a compatible model: {error}") from error
