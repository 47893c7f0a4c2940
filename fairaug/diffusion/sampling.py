"""Sampling from the trained model: ControlNet-guided denoising with classifier-free guidance,
in pixel space (tiny) or in the VAE's latent space (Stable Diffusion), decoded at the end."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

from fairaug.diffusion.components import Components

SCHEDULERS = {"ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler, "unipc": UniPCMultistepScheduler}


def make_scheduler(name: str, parts: Components):
    return SCHEDULERS[name].from_config(parts.scheduler.config)


@torch.no_grad()
def sample(
    parts: Components,
    masks: torch.Tensor,
    input_ids: torch.Tensor,
    negative_ids: torch.Tensor,
    seeds: list[int],
    steps: int,
    scheduler: str,
    guidance: float,
    control_scale: float,
) -> torch.Tensor:
    """Images in [0, 1], (B, 3, H, W), one per mask/prompt; each from its own seeded noise.

    The scheduler's state stays in float32; each network gets its inputs in its own dtype, so
    a bf16 UNet can sit beside a float32 ControlNet (as during mixed-precision training)."""
    device = next(parts.unet.parameters()).device
    unet_dtype, control_dtype = parts.unet.dtype, parts.controlnet.dtype
    noise_scheduler = make_scheduler(scheduler, parts)
    noise_scheduler.set_timesteps(steps, device=device)
    shape = parts.latent_shape(masks.shape[-1])
    x = torch.stack([torch.randn(*shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    x = (x * noise_scheduler.init_noise_sigma).to(device)
    cond = (masks.float() / 3.0).to(device, control_dtype)
    guided = guidance > 1.0
    ids = (torch.cat([negative_ids, input_ids]) if guided else input_ids).to(device)
    text = parts.text_encoder(ids)[0]
    cond = torch.cat([cond, cond]) if guided else cond
    for t in noise_scheduler.timesteps:
        model_input = noise_scheduler.scale_model_input(torch.cat([x, x]) if guided else x, t)
        down, mid = parts.controlnet(
            model_input.to(control_dtype),
            t,
            encoder_hidden_states=text.to(control_dtype),
            controlnet_cond=cond,
            conditioning_scale=control_scale,
            return_dict=False,
        )
        eps = parts.unet(
            model_input.to(unet_dtype),
            t,
            encoder_hidden_states=text.to(unet_dtype),
            down_block_additional_residuals=[d.to(unet_dtype) for d in down],
            mid_block_additional_residual=mid.to(unet_dtype),
        ).sample.float()
        if guided:
            unconditional, conditional = eps.chunk(2)
            eps = unconditional + guidance * (conditional - unconditional)
        x = noise_scheduler.step(eps, t, x).prev_sample
    return ((parts.to_pixels(x) + 1.0) / 2.0).clamp(0.0, 1.0).cpu()
