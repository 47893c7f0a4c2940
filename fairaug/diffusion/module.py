"""LightningModule that trains the text-conditioned UNet and its ControlNet on ED/ES images."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from fairaug.diffusion.components import Components
from fairaug.diffusion.sampling import sample
from fairaug.io import write_figure


class PromptedViews(Dataset):
    """Training items: the edes image in [-1, 1], its stacked masks and the prompt's tokens."""

    def __init__(self, views, input_ids: torch.Tensor):
        self.views, self.input_ids = views, input_ids

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int) -> dict:
        item = self.views[i]
        return {"pixels": item["image"] * 2.0 - 1.0, "masks": item["masks"], "input_ids": self.input_ids[i]}


def prompt_weights(prompts: list[str], max_ratio: float) -> np.ndarray:
    """Inverse prompt frequency, clipped at `max_ratio` times the weight of the most common prompt."""
    values, counts = np.unique(prompts, return_counts=True)
    frequency = dict(zip(values, counts))
    weights = np.array([1.0 / frequency[p] for p in prompts])
    return np.minimum(weights, max_ratio / counts.max())


class ControlNetModule(L.LightningModule):
    def __init__(self, parts: Components, lr: float, train_base: bool, prompt_dropout: float,
                 grid: dict | None = None, grid_every: int = 0, grid_dir: Path | None = None):
        super().__init__()
        self.parts = parts
        self.unet, self.controlnet, self.text_encoder = parts.unet, parts.controlnet, parts.text_encoder
        self.lr, self.train_base, self.prompt_dropout = lr, train_base, prompt_dropout
        self.grid, self.grid_every, self.grid_dir = grid, grid_every, grid_dir
        if not train_base:  # Stable Diffusion stays locked; only the ControlNet learns
            for module in (self.unet, self.text_encoder):
                module.requires_grad_(False)

    def training_step(self, batch, batch_idx):
        pixels, ids = batch["pixels"], batch["input_ids"]
        drop = torch.rand(len(ids), device=ids.device) < self.prompt_dropout  # learn the unconditional too
        ids = torch.where(drop[:, None], torch.zeros_like(ids), ids)
        noise = torch.randn_like(pixels)
        steps = torch.randint(0, self.parts.scheduler.config.num_train_timesteps, (len(pixels),), device=pixels.device)
        noisy = self.parts.scheduler.add_noise(pixels, noise, steps)
        text = self.text_encoder(ids)[0]
        down, mid = self.controlnet(noisy, steps, encoder_hidden_states=text,
                                    controlnet_cond=batch["masks"].to(pixels.dtype) / 3.0, return_dict=False)
        predicted = self.unet(noisy, steps, encoder_hidden_states=text, down_block_additional_residuals=down,
                              mid_block_additional_residual=mid).sample
        loss = F.mse_loss(predicted.float(), noise.float())
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(pixels))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.grid and self.grid_every and self.global_step % self.grid_every == 0:
            self.save_grid(f"step_{self.global_step:06d}")

    def save_grid(self, name: str) -> Path:
        """Real images, their masks and samples for the same masks and prompts, side by side."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        was_training = self.training
        self.eval()
        images = sample(self.parts, self.grid["masks"], self.grid["input_ids"], self.grid["negative_ids"],
                        list(range(len(self.grid["masks"]))), steps=25, scheduler="ddim", guidance=2.0,
                        control_scale=1.0)
        self.train(was_training)
        rows = len(images)
        fig, axes = plt.subplots(rows, 3, figsize=(6, 2 * rows), squeeze=False)
        for r in range(rows):
            for c, (picture, title) in enumerate(((self.grid["real"][r], "real"), (self.grid["masks"][r] / 3.0, "mask"),
                                                   (images[r], "generated"))):
                axes[r, c].imshow(picture.permute(1, 2, 0).numpy())
                axes[r, c].set_axis_off()
                if r == 0:
                    axes[r, c].set_title(title, fontsize=8)
            axes[r, 0].text(-0.05, 0.5, self.grid["prompts"][r].replace(", ", "\n"), fontsize=6, ha="right",
                            va="center", transform=axes[r, 0].transAxes)
        path = write_figure(fig, Path(self.grid_dir) / f"{name}.png", dpi=100)
        for logger in self.loggers:
            if hasattr(logger.experiment, "add_image"):
                logger.experiment.add_image(f"grid/{name}", plt.imread(path)[..., :3], self.global_step,
                                            dataformats="HWC")
            elif hasattr(logger, "log_image"):
                logger.log_image(key="grid", images=[str(path)], step=self.global_step)
        return path

    def configure_optimizers(self):
        modules = [self.controlnet, *((self.unet, self.text_encoder) if self.train_base else ())]
        return torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=self.lr, weight_decay=1e-2)
