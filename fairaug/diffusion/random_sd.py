"""Stable Diffusion 2.1 with random weights, in the layout of the real folders (model_index.json,
unet/, vae/, text_encoder/, tokenizer/, scheduler/): nothing is downloaded.

Two architectures:
- `miniature`: a few hundred thousand parameters. `diffusion=sd21` loads a saved one exactly as
  it loads the real 5 GB folder, so the SD 2.1 code path (loading, latent encoding, ControlNet
  training, generation) is exercised in tests and CPU benchmarks.
- `sd21-base`: the published architecture of stabilityai/stable-diffusion-2-1-base (UNet 866 M,
  OpenCLIP ViT-H text encoder 340 M, VAE 84 M parameters), for realistic GPU timings and memory.

The tokenizer is CLIP's byte-level BPE with no merges: every byte is a token, so any prompt can
be written (the full-size text encoder keeps CLIP's 49,408-token embedding all the same).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

MAX_TOKENS = 77  # SD 2.1's prompt length
# Per architecture: the VAE's, UNet's and text encoder's own settings (sd21-base's as published in
# unet/, vae/ and text_encoder/config.json of stable-diffusion-2-1-base); a text vocabulary of
# None is the byte-level tokenizer's.
ARCHITECTURES = {
    "miniature": {
        "vae": {"block_out_channels": (16, 32, 32), "layers_per_block": 1, "norm_num_groups": 8},
        "unet": {
            "layers_per_block": 1,
            "block_out_channels": (32, 64),
            "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
            "cross_attention_dim": 32,
            "attention_head_dim": (2, 4),
            "norm_num_groups": 8,
        },
        "text": {
            "vocab_size": None,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },  # fmt: skip
    },
    "sd21-base": {
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "unet": {
            "layers_per_block": 2,
            "block_out_channels": (320, 640, 1280, 1280),
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            "cross_attention_dim": 1024,
            "attention_head_dim": (5, 10, 20, 20),
            "norm_num_groups": 32,
        },
        "text": {
            "vocab_size": 49408,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 23,
            "num_attention_heads": 16,
            "projection_dim": 512,
        },  # fmt: skip
    },
}


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes that byte-level BPE (GPT-2, CLIP) uses."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(c) for c in printable] + [chr(256 + i) for i in range(len(others))]


def byte_level_clip_tokenizer() -> CLIPTokenizer:
    symbols = _byte_symbols()
    vocabulary: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols)]:
        vocabulary.setdefault(token, len(vocabulary))
    return CLIPTokenizer(vocab=vocabulary, merges=[], pad_token="!", model_max_length=MAX_TOKENS)


def _configs(architecture: str, size: int, tokenizer: CLIPTokenizer) -> tuple[dict, dict, CLIPTextConfig]:
    """VAE, UNet and text-encoder configs of `architecture` for images of `size` pixels."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {tuple(ARCHITECTURES)}, got '{architecture}'")
    vae, unet, text = (ARCHITECTURES[architecture][part] for part in ("vae", "unet", "text"))
    stages = len(vae["block_out_channels"])
    vae_config = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "sample_size": size, **vae,
                  "down_block_types": ("DownEncoderBlock2D",) * stages,
                  "up_block_types": ("UpDecoderBlock2D",) * stages}  # fmt: skip
    unet_config = {"sample_size": size // 2 ** (stages - 1), "in_channels": 4, "out_channels": 4,
                   "use_linear_projection": True, **unet}  # fmt: skip
    # the byte-level tokenizer's ids: <|startoftext|> 0, <|endoftext|> 1
    text_config = CLIPTextConfig(**{**text, "vocab_size": text["vocab_size"] or len(tokenizer)},
                                 max_position_embeddings=MAX_TOKENS, pad_token_id=tokenizer.pad_token_id,
                                 bos_token_id=0, eos_token_id=1, hidden_act="gelu")  # fmt: skip
    return vae_config, unet_config, text_config


def random_stable_diffusion(architecture: str = "miniature", size: int = 64, seed: int = 0,
                            prediction_type: str = "epsilon") -> dict:  # fmt: skip
    """The parts of a Stable Diffusion 2.1 model with random weights, named as
    components.load_base returns them (images of `size` pixels)."""
    tokenizer = byte_level_clip_tokenizer()
    vae_config, unet_config, text_config = _configs(architecture, size, tokenizer)
    torch.manual_seed(seed)
    return {
        "vae": AutoencoderKL(**vae_config),
        "unet": UNet2DConditionModel(**unet_config),
        "text_encoder": CLIPTextModel(text_config),
        "tokenizer": tokenizer,
        "scheduler": DDPMScheduler(
            num_train_timesteps=1000,
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            steps_offset=1,
            prediction_type=prediction_type,
        ),
    }


def save_stable_diffusion(folder: str | Path, architecture: str = "miniature", size: int = 64, seed: int = 0,
                          prediction_type: str = "epsilon") -> Path:  # fmt: skip
    """Write a random-weight SD 2.1 folder (latents 4 x size/f x size/f, f the VAE's factor) to `folder`."""
    parts = random_stable_diffusion(architecture, size, seed, prediction_type)
    pipeline = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)  # fmt: skip
    pipeline.save_pretrained(folder, safe_serialization=True)
    return Path(folder)
