"""Sampling from the trained model: ControlNet-guided denoising with classifier-free guidance."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

from fairaug.diffusion.components import Components
from fairaug.errors import ConfigError

SCHEDULERS = {"ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler, "unipc": UniPCMultistepScheduler}


def make_scheduler(name: str, parts: Components):
    if name not in SCHEDULERS:
        raise ConfigError(f"unknown scheduler '{name}'; known: {sorted(SCHEDULERS)}")
    return SCHEDULERS[name].from_config(parts.scheduler.config)


@torch.no_grad()
def sample(parts: Components, masks: torch.Tensor, input_ids: torch.Tensor, negative_ids: torch.Tensor,
           seeds: list[int], steps: int, scheduler: str, guidance: float, control_scale: float) -> torch.Tensor:
    """Images in [0, 1], (B, 3, H, W), one per mask/prompt; each from its own seeded noise."""
    device = next(parts.unet.parameters()).device
    dtype = next(parts.unet.parameters()).dtype
    noise_scheduler = make_scheduler(scheduler, parts)
    noise_scheduler.set_timesteps(steps, device=device)
    size = masks.shape[-1]
    x = torch.stack([torch.randn(3, size, size, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    x = (x * noise_scheduler.init_noise_sigma).to(device, dtype)
    cond = (masks.float() / 3.0).to(device, dtype)
    guided = guidance > 1.0
    ids = (torch.cat([negative_ids, input_ids]) if guided else input_ids).to(device)
    text = parts.text_encoder(ids)[0].to(dtype)
    cond = torch.cat([cond, cond]) if guided else cond
    for t in noise_scheduler.timesteps:
        model_input = noise_scheduler.scale_model_input(torch.cat([x, x]) if guided else x, t)
        down, mid = parts.controlnet(model_input, t, encoder_hidden_states=text, controlnet_cond=cond,
                                     conditioning_scale=control_scale, return_dict=False)
        eps = parts.unet(model_input, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid).sample
        if guided:
            unconditional, conditional = eps.chunk(2)
            eps = unconditional + guidance * (conditional - unconditional)
        x = noise_scheduler.step(eps, t, x).prev_sample
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0).cpu()
