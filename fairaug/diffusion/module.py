"""LightningModule that trains the ControlNet (and, for the tiny model, the text-conditioned
UNet with it) on ED/ES images, in pixel space or in Stable Diffusion's latent space."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from fairaug.diffusion.components import Components, as_dtype
from fairaug.diffusion.prompts import tokenize

HALF_PRECISION = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


class ControlNetModule(L.LightningModule):
    """Trains with the `diffusion` group's settings: lr, train_base, prompt_dropout,
    gradient_checkpointing."""

    def __init__(self, parts: Components, diffusion):
        super().__init__()
        self.parts = parts
        self.unet, self.controlnet, self.text_encoder, self.vae = (
            parts.unet,
            parts.controlnet,
            parts.text_encoder,
            parts.vae,
        )
        self.lr, self.prompt_dropout = float(diffusion.lr), float(diffusion.prompt_dropout)
        # the empty prompt: what prompt dropout trains, for classifier-free guidance
        self.register_buffer("empty_ids", tokenize(parts.tokenizer, [""]).reshape(1, -1), persistent=False)
        self.trained = [self.controlnet, *((self.unet, self.text_encoder) if diffusion.train_base else ())]
        # the VAE always; Stable Diffusion's UNet and text encoder too unless train_base
        self.frozen = [m for m in (self.vae, self.unet, self.text_encoder) if m is not None and m not in self.trained]
        for module in self.frozen:
            module.requires_grad_(False)
        if diffusion.gradient_checkpointing:  # the diffusers networks recompute activations in the backward pass
            for module in self.trained:
                if module is not self.text_encoder:
                    module.enable_gradient_checkpointing()
        self.strict_loading = not self.frozen  # checkpoints leave the locked parts out
        # What the locked parts compute never changes: each training image's latent distribution
        # and each prompt's embedding are computed once (diffusers' train_controlnet.py recomputes
        # both every step); latents are still drawn afresh from the distribution every step.
        self.latent_cache: dict[int, torch.Tensor] = {}
        self.text_cache: dict[tuple, torch.Tensor] = {}

    def state_prefixes(self, modules: list) -> tuple[str, ...]:
        """The state_dict key prefixes of these child modules."""
        return tuple(f"{name}." for name, child in self.named_children() if child in modules)

    def on_fit_start(self) -> None:
        """Under mixed precision the locked parts are kept in half precision (memory), as
        diffusers' train_controlnet.py does; the trained ones stay float32 for the optimizer."""
        dtype = HALF_PRECISION.get(str(self.trainer.precision))
        if dtype is not None:
            for module in self.frozen:
                as_dtype(module, dtype)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Only what is trained goes into checkpoints/last.ckpt: not gigabytes of locked SD."""
        frozen = self.state_prefixes(self.frozen)
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(frozen)}

    def training_step(self, batch, batch_idx):
        ids = batch["input_ids"]
        drop = torch.rand(len(ids), device=ids.device) < self.prompt_dropout  # learn the unconditional too
        ids = torch.where(drop[:, None], self.empty_ids.expand_as(ids), ids)
        latents = self.latents(batch["pixels"], batch["index"])
        noise = torch.randn_like(latents)
        steps = torch.randint(
            0, self.parts.scheduler.config.num_train_timesteps, (len(latents),), device=latents.device
        )
        noisy = self.parts.scheduler.add_noise(latents, noise, steps)
        text = self.text_embeddings(ids)
        down, mid = self.controlnet(
            noisy,
            steps,
            encoder_hidden_states=text,
            controlnet_cond=batch["masks"].to(noisy.dtype) / 3.0,
            return_dict=False,
        )
        predicted = self.unet(
            noisy,
            steps,
            encoder_hidden_states=text,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        loss = F.mse_loss(predicted.float(), self.parts.training_target(latents, noise, steps).float())
        # the mean over DDP's processes (a no-op in one process)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(ids), sync_dist=True)
        return loss

    @torch.no_grad()
    def latents(self, pixels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """A fresh draw from each image's latent distribution (the image itself in pixel space)."""
        vae = self.parts.vae
        if vae is None:
            return pixels
        keys = index.tolist()  # one device sync, not one per sample
        missing = [i for i, key in enumerate(keys) if key not in self.latent_cache]
        if missing:
            posterior = vae.encode(pixels[missing].to(vae.dtype)).latent_dist
            for i, mean, std in zip(missing, posterior.mean.float(), posterior.std.float()):
                self.latent_cache[keys[i]] = torch.stack([mean, std])
        moments = torch.stack([self.latent_cache[key] for key in keys])
        return (moments[:, 0] + moments[:, 1] * torch.randn_like(moments[:, 0])) * vae.config.scaling_factor

    def text_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        if self.text_encoder not in self.frozen:
            return self.text_encoder(ids)[0]
        keys = [tuple(row) for row in ids.tolist()]
        missing = sorted({k for k in keys if k not in self.text_cache})
        if missing:
            with torch.no_grad():
                encoded = self.text_encoder(torch.tensor(missing, device=ids.device))[0].float()
            self.text_cache.update(zip(missing, encoded))
        return torch.stack([self.text_cache[k] for k in keys])

    def optimizer_flags(self) -> dict:
        """fused: one kernel for all parameters instead of a loop over hundreds of tensors; Lightning
        cannot clip the gradients of a fused optimizer under mixed precision, so clipping uses foreach."""
        clipping = bool(self.trainer.gradient_clip_val) if self._trainer is not None else False
        return {"fused": None, "foreach": True} if clipping else {"fused": True, "foreach": None}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A resumed optimizer keeps this run's kernel choice, not the saved one (a fused state
        resumed under clipping, or the reverse, would otherwise fail under 16-mixed)."""
        for state in checkpoint.get("optimizer_states", []):
            for group in state["param_groups"]:
                group.update(self.optimizer_flags())

    def configure_optimizers(self):
        return torch.optim.AdamW(
            [p for m in self.trained for p in m.parameters()], lr=self.lr, weight_decay=1e-2, **self.optimizer_flags()
        )
