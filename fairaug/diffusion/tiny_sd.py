"""A miniature Stable Diffusion folder in the layout of Stable Diffusion 2.1 (model_index.json,
unet/, vae/, text_encoder/, tokenizer/, scheduler/), with random weights.

`diffusion=sd21` loads such a folder exactly as it loads the real 5 GB one, so the SD 2.1
code path (loading, latent encoding, ControlNet training, generation) is exercised in tests
and benchmarks without the download. The tokenizer is CLIP's byte-level BPE with no merges:
every byte is a token, so any prompt can be written.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

MAX_TOKENS = 77  # SD 2.1's prompt length


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


def save_tiny_stable_diffusion(
    folder: str | Path, size: int = 64, seed: int = 0, prediction_type: str = "epsilon"
) -> Path:
    """Write a random-weight miniature SD 2.1 pipeline (latents 4 x size/4 x size/4) to `folder`."""
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=size,
    )
    unet = UNet2DConditionModel(
        sample_size=size // 4,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        norm_num_groups=8,
    )
    tokenizer = byte_level_clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=tokenizer.pad_token_id,
            hidden_act="gelu",
        )
    )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return Path(folder)
