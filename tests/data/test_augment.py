"""Classical augmentation: flips, elastic deformation and intensity, drawn per subject seed."""

from dataclasses import replace

import pytest
import torch

from fairaug.data.augment import AugmentationRanges, classical_augment

SIZE = 64


def _subjects(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Heart-like stacked masks off centre (cavity, myocardium ring, a right ventricle beside
    them; smaller at ES) and images bright where the masks are: nothing is symmetric."""
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    frames = []
    for cavity in (10, 7, 10):  # ED, ES, ED
        radius = ((y - 24) ** 2 + (x - 22) ** 2).sqrt()
        frame = torch.zeros(SIZE, SIZE, dtype=torch.uint8)
        frame[(radius >= cavity) & (radius < cavity + 4)] = 2
        frame[radius < cavity] = 1
        frame[((y - 24) ** 2 + (x - 44) ** 2).sqrt() < cavity] = 3
        frames.append(frame)
    masks = torch.stack(frames).expand(n, -1, -1, -1).clone()
    images = torch.where(masks > 0, 0.8, 0.1) + 0.05 * torch.rand(
        n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)
    )
    return images.clamp(0, 1), masks


def test_masks_keep_their_labels_and_areas_and_images_stay_in_range():
    images, masks = _subjects(16)
    augmented, augmented_masks = classical_augment(images, masks, list(range(16)))
    assert augmented.dtype == images.dtype and augmented_masks.dtype == masks.dtype
    assert 0 <= augmented.min() and augmented.max() <= 1
    assert set(augmented_masks.unique().tolist()) <= {0, 1, 2, 3}
    for label in (1, 2, 3):
        before = (masks == label).sum(dim=(2, 3)).float()
        after = (augmented_masks == label).sum(dim=(2, 3)).float()
        assert (after > 0).all()  # every class still present in every frame
        assert ((after / before - 1).abs() <= 0.3).all(), (label, (after / before).min(), (after / before).max())
    assert not torch.equal(augmented_masks, masks) and (augmented - images).abs().mean() > 0.01


def test_augmentation_depends_on_each_subjects_seed_only():
    images, masks = _subjects(4)
    batch = classical_augment(images, masks, [11, 12, 13, 14])
    again = classical_augment(images, masks, [11, 12, 13, 14])
    assert all(torch.equal(a, b) for a, b in zip(batch, again))
    for i, seed in enumerate([11, 12, 13, 14]):  # alone or in a batch: the same subject
        alone = classical_augment(images[i : i + 1], masks[i : i + 1], [seed])
        assert torch.equal(alone[0][0], batch[0][i]) and torch.equal(alone[1][0], batch[1][i])
    other = classical_augment(images, masks, [21, 22, 23, 24])
    assert all(not torch.equal(other[0][i], batch[0][i]) for i in range(4))
    assert not torch.equal(batch[0][0], batch[0][1])  # same input, other seed


def test_flips_and_deformation_move_image_and_masks_together():
    images, masks = _subjects(8)
    only_flips = AugmentationRanges(elastic_displacement=0.0, gamma=(1, 1), contrast=(1, 1), brightness=(1, 1))
    seeds = list(range(8))
    flipped, flipped_masks = classical_augment(images, masks, seeds, replace(only_flips, flip=1.0))
    assert torch.allclose(flipped, images.flip(-1, -2), atol=1e-5) and torch.equal(flipped_masks, masks.flip(-1, -2))
    kept, kept_masks = classical_augment(images, masks, seeds, replace(only_flips, flip=0.0))
    assert torch.allclose(kept, images, atol=1e-5) and torch.equal(kept_masks, masks)
    # the default ranges: both flips happen to some subjects (the right ventricle, right of centre,
    # moves left; the heart, above the centre, moves down) and not to others
    augmented, augmented_masks = classical_augment(images, masks, seeds)
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    rv = (augmented_masks[:, 0] == 3).float()
    rv_x = (rv * x).sum(dim=(1, 2)) / rv.sum(dim=(1, 2))
    heart = (augmented_masks[:, 0] > 0).float()
    heart_y = (heart * y).sum(dim=(1, 2)) / heart.sum(dim=(1, 2))
    assert 0 < (rv_x < SIZE / 2).sum() < 8 and 0 < (heart_y > SIZE / 2).sum() < 8
    bright = augmented > (augmented.amax(dim=(2, 3), keepdim=True) + augmented.amin(dim=(2, 3), keepdim=True)) / 2
    heart = augmented_masks > 0
    overlap = (bright & heart).sum(dim=(2, 3)) / (bright | heart).sum(dim=(2, 3))
    assert (overlap > 0.9).all(), overlap.min()


def test_bad_inputs_are_refused():
    images, masks = _subjects(2)
    with pytest.raises(ValueError, match="one seed per subject"):
        classical_augment(images, masks, [1])
    with pytest.raises(ValueError, match="integer labels"):
        classical_augment(images, masks.float(), [1, 2])
