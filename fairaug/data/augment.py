"""Classical augmentation of real subjects (flips, elastic deformation, intensity): the control
that fills the scarce cells with altered copies of their own real subjects instead of
synthetic ones.

Each subject's changes are drawn from its own seed, so a subject comes out the same whatever
batch it is in. Geometric changes hit the ED/ES/ED image and its stacked masks alike (the masks
resampled with nearest neighbours, so they keep labels 0-3); intensity changes the image only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F


@dataclass(frozen=True)
class AugmentationRanges:
    """Modest ranges: an augmented heart is still the same subject's heart, of the same size."""

    flip: float = 0.5  # probability of a horizontal flip, and separately of a vertical one
    elastic_smoothness: float = 0.12  # Gaussian sigma of the displacement field, as a fraction of the side
    elastic_displacement: float = 0.015  # its RMS displacement, as a fraction of the side
    gamma: tuple[float, float] = (0.75, 1.33)  # image ** gamma
    contrast: tuple[float, float] = (0.8, 1.2)  # blend with the image's mean grey level
    brightness: tuple[float, float] = (0.9, 1.1)  # multiplies the image


def _uniform(low_high: tuple[float, float], generator: torch.Generator) -> float:
    low, high = low_high
    return low + (high - low) * torch.rand((), generator=generator).item()


def _displacement(height: int, width: int, ranges: AugmentationRanges, generator: torch.Generator) -> torch.Tensor:
    """A smooth random field (1, H, W, 2) in the normalised coordinates F.elastic expects."""
    field = torch.rand(2, 1, height, width, generator=generator) * 2 - 1  # x and y displacements
    sigma = ranges.elastic_smoothness * min(height, width)
    kernel = 2 * int(4 * sigma) + 1
    for size in ([kernel, 1], [1, kernel]):  # separable: one 2-D kernel is slow at 256 px
        field = F.gaussian_blur(field, size, [sigma, sigma])
    field = field / field.pow(2).mean().sqrt().clamp_min(1e-12)
    field = field * ranges.elastic_displacement * 2  # a side spans 2 in normalised coordinates
    return field[:, 0].permute(1, 2, 0).unsqueeze(0)


def _augment_one(
    image: torch.Tensor, mask: torch.Tensor, seed: int, ranges: AugmentationRanges
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(int(seed))
    image, mask = tv_tensors.Image(image), tv_tensors.Mask(mask)
    flips = torch.rand(2, generator=generator) < ranges.flip
    if flips[0]:
        image, mask = F.horizontal_flip(image), F.horizontal_flip(mask)
    if flips[1]:
        image, mask = F.vertical_flip(image), F.vertical_flip(mask)
    displacement = _displacement(*image.shape[-2:], ranges, generator).to(image.device)
    image, mask = F.elastic(image, displacement, fill=[0.0]), F.elastic(mask, displacement, fill=[0.0])
    image = F.adjust_gamma(image, _uniform(ranges.gamma, generator))
    image = F.adjust_contrast(image, _uniform(ranges.contrast, generator))
    image = F.adjust_brightness(image, _uniform(ranges.brightness, generator))
    return image.as_subclass(torch.Tensor).clamp(0, 1), mask.as_subclass(torch.Tensor)


def classical_augment(
    images: torch.Tensor, masks: torch.Tensor, seeds: list[int], ranges: AugmentationRanges = AugmentationRanges()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of real subjects: `images` (B, 3, H, W) ED/ES/ED floats in [0, 1],
    `masks` (B, 3, H, W) integer labels 0-3 stacked the same way, one seed per subject."""
    if images.ndim != 4 or images.shape != masks.shape:
        raise ValueError(f"images and masks must both be (B, 3, H, W); got {tuple(images.shape)}, {tuple(masks.shape)}")
    if len(seeds) != len(images):
        raise ValueError(f"one seed per subject: {len(seeds)} seeds for {len(images)} subjects")
    if masks.is_floating_point():
        raise ValueError(f"masks must hold integer labels, got {masks.dtype}")
    pairs = [_augment_one(image, mask, seed, ranges) for image, mask, seed in zip(images, masks, seeds)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
