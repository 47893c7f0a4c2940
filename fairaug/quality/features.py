"""Feature extractors for FID/KID that work offline.

- `classifier`: the penultimate layer of a heart-failure classifier trained by task=classify
  on the same real training split: a domain-specific feature space (cardiac MRI, not ImageNet)
  that sees what the diagnosis depends on.
- `inception`: the standard FID network (torch-fidelity's Inception-v3, 2048-d pool features),
  from a local weights file only (pip install fairaug[inception]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from fairaug.errors import ConfigError
from fairaug.models.tested import load_tested_classifier


class ClassifierFeatures(nn.Module):
    """What the classifier's final linear layer reads."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval()
        self.head = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        captured = {}
        handle = self.head.register_forward_hook(lambda module, args, output: captured.update(x=args[0]))
        try:
            self.net(images)
        finally:
            handle.remove()
        return captured["x"].flatten(1)


class InceptionFeatures(nn.Module):
    """torch-fidelity's FID Inception-v3 on [0, 1] images, from a local weights file."""

    def __init__(self, weights: str | None):
        super().__init__()
        if not weights or not Path(weights).is_file():
            raise ConfigError(
                "quality.features=inception needs quality.inception_weights=<local file> "
                "(torch-fidelity's weights-inception-2015-12-05-6726825d.pth), "
                f"got {weights!r}: nothing is downloaded"
            )
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError as error:  # torchmetrics raises this without torch-fidelity
            raise ConfigError(
                "quality.features=inception needs torch-fidelity: pip install -e '.[inception]'"
            ) from error
        try:
            self.inception = NoTrainInceptionV3(
                name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights)
            )
        except Exception as error:  # torch.load's many ways to fail on a corrupt or foreign file
            raise ConfigError(
                f"quality.inception_weights={weights} is not torch-fidelity's Inception-v3 weights file: "
                f"{type(error).__name__}: {error}"
            ) from error

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inception((images.clamp(0, 1) * 255).to(torch.uint8)).flatten(1)


def classifier_features(run_dir: Path, input_shape: tuple[int, ...]) -> ClassifierFeatures:
    """The checkpoint a task=classify run tested (as its metrics.json records it)."""
    try:
        module = load_tested_classifier(Path(run_dir), input_shape)
    except ConfigError as error:
        raise ConfigError(f"quality.classifier: {error}") from error
    return ClassifierFeatures(module.net)


def extract(network: nn.Module, dataset, name: str, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, images and masks of every item of `dataset` (in order); `name` labels the progress bar."""
    features, images, masks = [], [], []
    for batch in tqdm(
        DataLoader(dataset, batch_size=batch_size, shuffle=False), desc=f"features of {name}", unit="batch"
    ):
        features.append(network(batch["image"]).double().numpy())
        images.append(batch["image"].numpy())
        masks.append(batch["masks"].numpy())
    return np.concatenate(features), np.concatenate(images), np.concatenate(masks)
