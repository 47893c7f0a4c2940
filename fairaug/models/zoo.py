"""Classifier networks: a small CPU-sized CNN and torchvision's image and video models.

Every network maps a batch of views to one heart-failure logit per subject. Single-channel
views are repeated to three channels for torchvision models, so ImageNet or Kinetics
weights keep their meaning. Weights come only from local files: `model.weights=imagenet`
reads torchvision's own cache (never downloads), `model.weights=<file>` a state dict.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tv

from fairaug.errors import ConfigError

TORCHVISION_2D = ("resnet18", "densenet121")
TORCHVISION_3D = ("r3d_18", "r2plus1d_18", "mc3_18", "swin3d_t")
MODELS = ("small_cnn", *TORCHVISION_2D, *TORCHVISION_3D)
HEADS = ("fc", "classifier", "head")  # the final layer's name in torchvision models


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU-pool stages, global average pooling, dropout, one logit."""

    def __init__(self, in_channels: int, spatial_dims: int, width: int = 16, dropout: float = 0.2):
        super().__init__()
        conv, norm, pool = (
            (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)
            if spatial_dims == 2
            else (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d)
        )
        layers, channels = [], in_channels
        for stage in range(4):
            out = width * 2**stage
            layers += [conv(channels, out, 3, padding=1, bias=False), norm(out), nn.ReLU(inplace=True)]
            if stage < 3:
                layers.append(pool(2, ceil_mode=True))
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(2).mean(-1)).squeeze(-1)


class TorchvisionClassifier(nn.Module):
    """A torchvision network with a one-logit head; 1-channel input repeated to RGB."""

    def __init__(self, net: nn.Module, in_channels: int):
        super().__init__()
        self.net = net
        self.repeat = 3 if in_channels == 1 else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, *x.shape[2:])
        return self.net(x).squeeze(-1)


def _replace_head(net: nn.Module, dropout: float) -> None:
    for name in HEADS:
        layer = getattr(net, name, None)
        if isinstance(layer, nn.Linear):
            setattr(net, name, nn.Sequential(nn.Dropout(dropout), nn.Linear(layer.in_features, 1)))
            return
    raise ConfigError(f"no linear head found on {type(net).__name__}")


def _weights_file(name: str, weights: str) -> Path:
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.weights file not found: {path}")
        return path
    default = tv.get_model_weights(name).DEFAULT
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
    if not path.is_file():
        raise ConfigError(
            f"pretrained weights for {name} are not available offline: put {Path(default.url).name} "
            f"(from {default.url}) in {path.parent}, or set model.weights=<local file>"
        )
    return path


# torchvision's published DenseNet weights name layers 'norm.1'; the modules are 'norm1'.
LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"([12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def _load_backbone_weights(net: nn.Module, name: str, weights: str) -> None:
    path = _weights_file(name, weights)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    state = {LEGACY_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k.split(".")[0] not in HEADS}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k.split(".")[0] not in HEADS]
    if missing or unexpected:
        raise ConfigError(f"{path} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")


def build_model(cfg, input_shape: tuple[int, ...]) -> nn.Module:
    """The network for `cfg.name`, checked against the view's (C, ...) shape."""
    if cfg.name not in MODELS:
        raise ConfigError(f"unknown model '{cfg.name}'; known: {list(MODELS)}")
    channels, spatial_dims = input_shape[0], len(input_shape) - 1
    if cfg.name == "small_cnn":
        if cfg.weights:
            raise ConfigError("small_cnn has no pretrained weights; model.weights must be null")
        return SmallCNN(channels, spatial_dims, int(cfg.width), float(cfg.dropout))
    wanted = 2 if cfg.name in TORCHVISION_2D else 3
    if spatial_dims != wanted:
        kind = "2D views (slice, frame, edes)" if wanted == 2 else "3D views (cine, volume)"
        raise ConfigError(f"model {cfg.name} takes {kind}; this input is {spatial_dims}D with shape {input_shape}")
    if channels not in (1, 3):
        raise ConfigError(f"model {cfg.name} takes 1 or 3 channels, the input has {channels}")
    net = tv.get_model(cfg.name, weights=None)
    if cfg.weights:
        _load_backbone_weights(net, cfg.name, str(cfg.weights))
    _replace_head(net, float(cfg.dropout))
    return TorchvisionClassifier(net, channels)
