"""LightningModule for heart-failure classification from any view."""

from __future__ import annotations

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fairaug.models.metrics import classification_metrics
from fairaug.models.zoo import build_model


class HeartFailureClassifier(L.LightningModule):
    """One logit per subject, BCE loss; metrics per stage; test outputs kept for predictions.csv."""

    def __init__(self, model: dict, input_shape: list[int], lr: float, weight_decay: float):
        """`model`: the model config group (a pretrained backbone's `weights` file is read here);
        `input_shape`: the view's (C, ...) shape."""
        super().__init__()
        # A checkpoint holds every trained weight: its hyperparameters keep the architecture
        # only, so load_from_checkpoint never looks for the backbone file again.
        model = OmegaConf.to_container(model, resolve=True) if isinstance(model, DictConfig) else dict(model)
        self.save_hyperparameters(
            {
                "model": {**model, "weights": None},
                "input_shape": list(input_shape),
                "lr": lr,
                "weight_decay": weight_decay,
            }
        )
        self.net = build_model(OmegaConf.create(model), tuple(input_shape))
        self.loss = nn.BCEWithLogitsLoss()
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_metrics": classification_metrics().clone(prefix=f"{stage}/")
                for stage in ("train", "val", "test")
            }
        )
        self.test_outputs: dict[str, torch.Tensor] = {}
        self._test_batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: dict, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["image"])
        loss = self.loss(logits, batch["label"])
        probs = torch.sigmoid(logits.detach())
        metrics = self.metrics[f"{stage}_metrics"]
        metrics.update(probs, batch["label"].long())
        on_step = stage == "train"
        # sync_dist: under DDP the epoch loss averages every rank's batches (a no-op in one process)
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, batch_size=len(logits), sync_dist=True)
        if stage == "train":
            self.log("loss", loss, on_step=True, prog_bar=True, logger=False)  # the bar's, not the logger's
        for name, metric in metrics.items():  # the bar: the loss and the metric checkpoints are chosen on
            self.log(name, metric, on_step=False, on_epoch=True, prog_bar=name == "val/balanced_accuracy")
        if stage == "test":
            self._test_batches.append((batch["index"].cpu(), probs.float().cpu()))
        return loss, probs

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx):
        return {"prob": self._step(batch, "val")[1]}  # for callbacks that score validation groups

    def on_test_epoch_start(self) -> None:
        self._test_batches = []

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        index, probs = (torch.cat(parts) for parts in zip(*self._test_batches))
        self.test_outputs = {"index": index, "prob": probs}

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
