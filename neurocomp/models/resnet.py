"""MedMNIST v2's reference models: torchvision's ResNet-18 and ResNet-50, adapted as its experiments
adapt them (MedMNIST/experiments, ``MedMNIST2D``).

At 28 px the stem is CIFAR-style: a 3x3 stride-1 convolution and no max-pool, so the 28x28 image is
not cut to 7x7 before the first block (the MedMNIST v2 code's own 28-px ResNet, which a replication
found necessary to reproduce its numbers); at larger sizes (64, 128, 224) torchvision's ImageNet
stem (7x7 stride 2, max-pool) as it is. The first convolution takes the dataset's channels (1 or 3).
Trained with ``configs/reference/``'s recipe (Adam 1e-3, batch 128, 100 epochs, lr x0.1 at epochs 50
and 75, selection on validation AUC), these are the rows MedMNIST's published table compares against.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..core.registry import register_model
from .layers import StepwiseClassifier, require_image_steps

CIFAR_STEM_MAX_SIDE = 32  # up to this side the image is too small for an ImageNet stem's 4x reduction


def _resnet(name: str, torchvision_builder: Callable[..., nn.Module], step_shape, num_outputs: int) -> nn.Module:
    """torchvision's ResNet for image steps ``(C, H, W)`` -> logits ``(num_outputs,)`` per step."""
    channels, height, width = require_image_steps(name, step_shape)
    network = torchvision_builder(weights=None, num_classes=num_outputs)
    if max(height, width) <= CIFAR_STEM_MAX_SIDE:
        network.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        network.maxpool = nn.Identity()
    else:
        network.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    head, network.fc = network.fc, nn.Identity()  # features then head, like every other classifier here
    return StepwiseClassifier(network, head)


@register_model("resnet18", default_encoder="static", family="convolutional")
def resnet18(*, step_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """ResNet-18 (torchvision), MedMNIST v2's reference model: CIFAR stem at 28 px, ImageNet stem above."""
    from torchvision.models import resnet18 as torchvision_resnet18  # here: torchvision costs ~1 s to import

    return _resnet("resnet18", torchvision_resnet18, step_shape, num_outputs)


@register_model("resnet50", default_encoder="static", family="convolutional")
def resnet50(*, step_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """ResNet-50 (torchvision), MedMNIST v2's reference model: CIFAR stem at 28 px, ImageNet stem above."""
    from torchvision.models import resnet50 as torchvision_resnet50

    return _resnet("resnet50", torchvision_resnet50, step_shape, num_outputs)
