"""MedMNIST v2's reference models: torchvision's ResNet-18 and ResNet-50, adapted as its experiments
adapt them (MedMNIST/experiments, ``MedMNIST2D`` and ``MedMNIST3D``).

At 28 px the stem is CIFAR-style: a 3x3 stride-1 convolution and no max-pool, so the 28x28 image is
not cut to 7x7 before the first block (the MedMNIST v2 code's own 28-px ResNet, which a replication
found necessary to reproduce its numbers); at larger sizes (64, 128, 224) torchvision's ImageNet
stem (7x7 stride 2, max-pool) as it is. The first convolution takes the dataset's channels (1 or 3).
Trained with ``configs/reference/``'s recipe (Adam 1e-3, batch 128, 100 epochs, lr x0.1 at epochs 50
and 75, selection on validation AUC), these are the rows MedMNIST's published table compares against.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Callable, Literal

from torch import nn

from ..core.errors import UsageError
from ..core.registry import register_model
from .layers import StepwiseClassifier, require_image_steps, require_volume_steps

CIFAR_STEM_MAX_SIDE = 32  # up to this side the image is too small for an ImageNet stem's 4x reduction


def _resnet(name: str, torchvision_builder: Callable[..., nn.Module], step_shape, num_outputs: int,
            weights: str) -> nn.Module:
    """torchvision's ResNet for image steps ``(C, H, W)`` -> logits ``(num_outputs,)`` per step, with
    ``weights`` (``none``, ``imagenet`` or a state-dict file) loaded into everything but the head."""
    channels, height, width = require_image_steps(name, step_shape)
    model = _classifier(torchvision_builder, channels, num_outputs, cifar_stem=max(height, width) <= CIFAR_STEM_MAX_SIDE)
    if weights != "none":
        load_pretrained(model.features, _state_dict(name, weights), name, weights)
    return model


# torchvision's ImageNet weights of each reference model (downloaded on first use, then cached by torch).
_IMAGENET = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights"}


def _state_dict(name: str, weights: str) -> dict:
    """The state dict ``weights`` names: torchvision's ImageNet weights, or a file; UsageError (one
    line) when it cannot be had, naming how to get it."""
    import torch
    import torchvision.models

    enum = getattr(torchvision.models, _IMAGENET[name]).IMAGENET1K_V1
    if weights == "imagenet":
        try:
            return enum.get_state_dict(progress=False)
        except Exception as error:  # no network, a proxy, a full disk: the user needs the same advice
            raise UsageError(f"model.weights=imagenet: cannot download {enum.url} ({type(error).__name__}); download it "
                             f"where there is a network and pass model.weights=/path/to/{enum.url.rsplit('/', 1)[-1]}") from None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UsageError(f"model.weights={weights!r}: no such file; give none, imagenet or the path of a {name} "
                         f"state dict (e.g. {enum.url})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UsageError(f"model.weights={weights!r} is not a torch state dict ({type(error).__name__})") from None


def load_pretrained(network: nn.Module, state: dict, name: str, source: str) -> None:
    """Load ``state`` (a torchvision ResNet's, with or without its ``fc``) into ``network`` in place.
    The first convolution is adapted as MedMNIST's experiments feed gray images to RGB weights
    (``as_rgb``: one channel copied thrice, the same as summing the RGB kernels); where its shape
    still differs (the 3x3 stride-1 stem at 28 px against ImageNet's 7x7) it keeps its own
    initialisation. Any other missing or unexpected key: the file is another architecture, a UsageError."""
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    stem = network.conv1.weight
    pretrained = state.get("conv1.weight")
    if pretrained is not None and pretrained.shape[1] != stem.shape[1] and stem.shape[1] == 1:
        pretrained = state["conv1.weight"] = pretrained.sum(dim=1, keepdim=True)
    if pretrained is not None and pretrained.shape != stem.shape:
        del state["conv1.weight"]
    own = network.state_dict()
    missing = sorted(set(own) - set(state) - {"conv1.weight"})
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(key for key in set(own) & set(state) if own[key].shape != state[key].shape)
    if missing or unexpected or wrong:
        example = (missing or unexpected or wrong)[0]
        raise UsageError(f"model.weights={source!r} does not fit {name}: {len(missing)} missing, {len(unexpected)} "
                         f"unexpected and {len(wrong)} misshapen tensors (e.g. {example}); is it a {name} state dict?")
    network.load_state_dict(state, strict=False)


def _classifier(torchvision_builder: Callable[..., nn.Module], channels: int, num_outputs: int, *, cifar_stem: bool,
                volumes: Literal["3d", "acs", "2.5d"] | None = None) -> nn.Module:
    """The ResNet with its stem for ``channels`` inputs, features then head; ``volumes``: its 2D layers
    made volumetric by :func:`to_volumes`."""
    network = torchvision_builder(weights=None, num_classes=num_outputs)
    if cifar_stem:
        network.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        network.maxpool = nn.Identity()
    else:
        network.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    head, network.fc = network.fc, nn.Identity()  # features then head, like every other classifier here
    return StepwiseClassifier(to_volumes(network, volumes) if volumes else network, head)


def to_volumes(network: nn.Module, conv: Literal["3d", "acs", "2.5d"]) -> nn.Module:
    """``network`` with every 2D layer swapped in place for its volume counterpart: each Conv2d for a
    Conv3d (``3d``, cubic kernels), an ACS convolution (``acs``: the kernels split over the axial,
    coronal and sagittal planes) or a 2.5D one (``2.5d``: the 2D kernel per depth slice), from the
    ``acsconv`` package; BatchNorm, max- and adaptive average pools become their 3D versions.

    What acsconv's own converters do (MedMNIST3D's experiments call them); they are reimplemented here
    because acsconv 0.1.1's converters fail on torch >= 2.1 (they pass BatchNorm's locals as arguments).
    ``(N, C, H, W)`` networks become ``(N, C, D, H, W)`` ones; the head is untouched."""
    make_conv = _volume_conv(conv)
    for name, child in network.named_children():
        if isinstance(child, nn.Conv2d):
            replacement = make_conv(child.in_channels, child.out_channels, child.kernel_size[0], stride=child.stride[0],
                                    padding=child.padding[0], dilation=child.dilation[0], groups=child.groups,
                                    bias=child.bias is not None)
        elif isinstance(child, nn.BatchNorm2d):
            replacement = nn.BatchNorm3d(child.num_features, eps=child.eps, momentum=child.momentum, affine=child.affine,
                                         track_running_stats=child.track_running_stats)
        elif isinstance(child, nn.MaxPool2d):
            replacement = nn.MaxPool3d(child.kernel_size, child.stride, child.padding, child.dilation,
                                       ceil_mode=child.ceil_mode)
        elif isinstance(child, nn.AdaptiveAvgPool2d):
            replacement = nn.AdaptiveAvgPool3d(child.output_size if isinstance(child.output_size, int) else 1)
        else:
            to_volumes(child, conv)
            continue
        setattr(network, name, replacement)
    return network


def _volume_conv(conv: str) -> Callable[..., nn.Module]:
    if conv == "3d":
        return nn.Conv3d
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # acsconv announces its converters on import
            from acsconv.operators import ACSConv, Conv2_5d
    except ImportError:
        raise UsageError(f"model.conv={conv!r} needs the acsconv package: pip install 'neurocomp[acs]'") from None
    return ACSConv if conv == "acs" else Conv2_5d


# weights: none (from scratch), imagenet (torchvision's, downloaded) or the path of a state dict.
@register_model("resnet18", default_encoder="static", family="convolutional")
def resnet18(*, step_shape: tuple[int, ...], num_outputs: int, weights: str = "none") -> nn.Module:
    """ResNet-18 (torchvision), MedMNIST v2's reference model: CIFAR stem at 28 px, ImageNet stem above."""
    from torchvision.models import resnet18 as torchvision_resnet18  # here: torchvision costs ~1 s to import

    return _resnet("resnet18", torchvision_resnet18, step_shape, num_outputs, weights)


@register_model("resnet50", default_encoder="static", family="convolutional")
def resnet50(*, step_shape: tuple[int, ...], num_outputs: int, weights: str = "none") -> nn.Module:
    """ResNet-50 (torchvision), MedMNIST v2's reference model: CIFAR stem at 28 px, ImageNet stem above."""
    from torchvision.models import resnet50 as torchvision_resnet50

    return _resnet("resnet50", torchvision_resnet50, step_shape, num_outputs, weights)


# MedMNIST3D's ResNets: the same 2D networks with a CIFAR stem at every size (their models.py, after
# kuangliu/pytorch-cifar), made volumetric; trained with configs/reference/medmnist-v2-3d.yaml.
@register_model("resnet18-3d", default_encoder="static", volume_encoder="static", family="convolutional")
def resnet18_3d(*, step_shape: tuple[int, ...], num_outputs: int, conv: Literal["3d", "acs", "2.5d"] = "3d") -> nn.Module:
    """ResNet-18 on whole volumes, MedMNIST v2's 3D reference: 3D, ACS or 2.5D convolutions."""
    from torchvision.models import resnet18 as torchvision_resnet18

    channels = require_volume_steps("resnet18-3d", step_shape)[0]
    return _classifier(torchvision_resnet18, channels, num_outputs, cifar_stem=True, volumes=conv)


@register_model("resnet50-3d", default_encoder="static", volume_encoder="static", family="convolutional")
def resnet50_3d(*, step_shape: tuple[int, ...], num_outputs: int, conv: Literal["3d", "acs", "2.5d"] = "3d") -> nn.Module:
    """ResNet-50 on whole volumes, MedMNIST v2's 3D reference: 3D, ACS or 2.5D convolutions."""
    from torchvision.models import resnet50 as torchvision_resnet50

    channels = require_volume_steps("resnet50-3d", step_shape)[0]
    return _classifier(torchvision_resnet50, channels, num_outputs, cifar_stem=True, volumes=conv)
