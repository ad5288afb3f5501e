"""Train-time augmentation: a named policy applied to each training batch in [0, 1] before any
encoder, so every paradigm gets the same augmented images (rate coding then spikes the augmented
image). Validation and test images are never augmented.

Policies (``train.augment``):

    none     the images as they are (the default)
    flip     2D: a horizontal flip with probability .5
    affine   2D: flip as above, then a rotation within +-10 degrees and a shift within 10% of each side
             (torchvision's RandomAffine), the usual small-image policy
    volume   3D: a flip along each of depth, height and width with probability .5, then a rotation
             within +-10 degrees in each of the three planes

Each image draws its own transform (torchvision's v2 transforms, called per sample: called on a
batch they would draw one transform for all of it), from torch's random state, which the run seeds.
MedMNIST+ (Doerrich et al. 2024) is not a policy here: its released training script
(sdoerrich97/rethinking-model-prototyping-MedMNISTPlus, train.py) applies no augmentation, only
normalisation and padding, so there is no policy of theirs to copy.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..core.errors import UsageError

POLICIES = ("none", "flip", "affine", "volume")
_FOR_VOLUMES = ("volume",)
MAX_DEGREES, MAX_SHIFT = 10.0, 0.1


def augmenter(policy: str, sample_shape: tuple[int, ...]) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """The function that augments a training batch ``(B, *sample_shape)`` -> same shape, or None for
    ``none``; UsageError when the policy does not fit the samples (a 2D policy on volumes or the
    reverse) or is unknown."""
    if policy not in POLICIES:
        raise UsageError(f"unknown train.augment {policy!r}; choose one of: {', '.join(POLICIES)}")
    if policy == "none":
        return None
    volumes = len(sample_shape) == 4
    if volumes and policy not in _FOR_VOLUMES:
        raise UsageError(f"train.augment={policy!r} transforms 2D images; for 3D volumes use 'volume'")
    if not volumes and policy in _FOR_VOLUMES:
        raise UsageError(f"train.augment={policy!r} transforms 3D volumes; for 2D images use 'flip' or 'affine'")
    transform = _per_sample(policy)
    return lambda images: torch.stack([transform(image) for image in images])


def _per_sample(policy: str) -> Callable[[torch.Tensor], torch.Tensor]:
    from torchvision.transforms import v2  # here: torchvision costs ~1 s to import

    if policy == "flip":
        return v2.RandomHorizontalFlip(0.5)
    if policy == "affine":
        return v2.Compose([v2.RandomHorizontalFlip(0.5),
                           v2.RandomAffine(degrees=MAX_DEGREES, translate=(MAX_SHIFT, MAX_SHIFT))])
    flips = [v2.RandomVerticalFlip(0.5), v2.RandomHorizontalFlip(0.5)]  # height and width of each slice
    rotate = v2.RandomRotation(MAX_DEGREES)
    # v2 transforms act on the last two axes: each plane (H-W, D-W, D-H) is brought there and back.
    planes = [(order, tuple(order.index(axis) for axis in range(4))) for order in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2))]

    def volume(image: torch.Tensor) -> torch.Tensor:
        """``(C, D, H, W)`` -> the same, flipped per axis and rotated in each plane."""
        if torch.rand(()) < 0.5:
            image = image.flip(1)  # depth
        for flip in flips:
            image = flip(image)
        for order, back in planes:
            image = rotate(image.permute(order)).permute(back)
        return image

    return volume
