"""Validation grids while the diffusion model trains: real images of a few training subjects,
their masks, and samples for the same masks and prompts, side by side."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from fairaug.figures import FRAMES, mask_legend, plt, show_frame
from fairaug.io import write_figure

ROWS = 4


class ValidationGrid(L.Callback):
    """Saves a grid every `every` steps (0: only when asked, e.g. at the end) into `folder` and
    to the loggers, sampled with the `generation` settings synth_generate would use."""

    def __init__(self, views, input_ids: torch.Tensor, prompts: list[str], generation, every: int, folder: Path):
        shown = [views[i] for i in range(min(ROWS, len(views)))]
        self.real = torch.stack([s["image"] for s in shown])
        self.masks = torch.stack([s["masks"] for s in shown])
        self.input_ids, self.prompts = input_ids[: len(shown)], prompts[: len(shown)]
        self.generation, self.every, self.folder = generation, every, Path(folder)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.every and trainer.is_global_zero and trainer.global_step % self.every == 0:  # once under DDP
            self.save(module, f"step_{trainer.global_step:06d}", trainer.loggers, trainer.global_step)

    def save(self, module, name: str, loggers: list, step: int) -> Path:
        from fairaug.diffusion.sampling import sample

        was_training = module.training
        module.eval()
        gen = self.generation
        images = sample(
            module.parts,
            self.masks,
            self.input_ids,
            module.empty_ids.cpu().expand_as(self.input_ids),
            list(range(len(self.masks))),
            steps=int(gen.steps),
            scheduler=str(gen.scheduler),
            guidance=float(gen.guidance_scale),
            control_scale=float(gen.control_scale),
        )
        module.train(was_training)
        rows = len(images)
        fig, axes = plt.subplots(rows, 4, figsize=(7, 1.9 * rows + 0.5), squeeze=False)
        for r in range(rows):
            masks = self.masks[r].numpy()
            for p, (picture, source) in enumerate(((self.real[r], "real"), (images[r], "generated"))):
                for f, frame in enumerate(FRAMES):
                    title = f"{source} {frame}" if r == 0 else None
                    show_frame(axes[r, 2 * p + f], picture[f].numpy(), masks[f], title)
            axes[r, 0].text(
                -0.05,
                0.5,
                self.prompts[r].replace(", ", "\n"),
                fontsize=6,
                ha="right",
                va="center",
                transform=axes[r, 0].transAxes,
            )
        mask_legend(fig)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
        path = write_figure(fig, self.folder / f"{name}.png", dpi=100)
        for logger in loggers:
            if hasattr(logger.experiment, "add_image"):
                logger.experiment.add_image(f"grid/{name}", plt.imread(path)[..., :3], step, dataformats="HWC")
            elif hasattr(logger, "log_image"):
                logger.log_image(key="grid", images=[str(path)], step=step)
        return path
