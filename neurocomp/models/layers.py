"""Building blocks shared by the models: conv blocks, fully connected heads, per-layer options."""

from __future__ import annotations

from typing import Optional, Sequence, TypeVar

import torch
from torch import nn

from ..core.errors import UsageError

T = TypeVar("T")


def per_layer(values: Sequence[T], layers: int, key: str) -> list[T]:
    """One value per layer: a single value is broadcast, otherwise the lengths must match."""
    values = list(values)
    if len(values) == 1:
        return values * layers
    if len(values) != layers:
        raise UsageError(f"model.{key} has {len(values)} values for {layers} conv layers; give 1 or {layers}")
    return values


# Per spatial rank: the layers a conv block is built from, and the memory format that makes the CPU
# (oneDNN) convolutions and max-pool pick their fast channels-last kernels (~1.5x per step, same values).
_CONV_LAYERS = {
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, torch.channels_last),
    3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, torch.channels_last_3d),
}


def conv_block(
    in_channels: int,
    out_channels: int,
    *,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    batch_norm: bool = False,
    activation: Optional[nn.Module] = None,
    pool: int = 1,
    dims: int = 2,
) -> nn.Sequential:
    """Conv -> [BatchNorm] -> [activation] -> [MaxPool] over ``dims`` spatial axes:
    ``(N, C_in, H, W) -> (N, C_out, H', W')`` (dims 2) or ``(N, C_in, D, H, W) -> (N, C_out, D', H', W')`` (dims 3)."""
    conv, norm, max_pool, memory_format = _CONV_LAYERS[dims]
    layers: list[nn.Module] = [conv(in_channels, out_channels, kernel, stride=stride, padding=padding)]
    if batch_norm:
        layers.append(norm(out_channels))
    if activation is not None:
        layers.append(activation)
    if pool > 1:
        layers.append(max_pool(pool))
    return nn.Sequential(*layers).to(memory_format=memory_format)


def relu_conv_blocks(
    in_channels: int,
    *,
    channels: Sequence[int],
    kernels: Sequence[int],
    strides: Sequence[int],
    paddings: Sequence[int],
    pools: Sequence[int],
    batch_norm: Sequence[bool],
    dims: int = 2,
) -> list[nn.Module]:
    """One conv -> [BN] -> ReLU -> [max-pool] block per entry of ``channels`` over ``dims`` spatial
    axes; the other options give one value per layer or a single value for all."""
    layers = len(channels)
    options = zip(
        channels,
        per_layer(kernels, layers, "kernels"),
        per_layer(strides, layers, "strides"),
        per_layer(paddings, layers, "paddings"),
        per_layer(pools, layers, "pools"),
        per_layer(batch_norm, layers, "batch_norm"),
    )
    blocks = []
    for width, kernel, stride, padding, pool, norm in options:
        blocks.append(conv_block(in_channels, width, kernel=kernel, stride=stride, padding=padding,
                                 batch_norm=norm, activation=nn.ReLU(), pool=pool, dims=dims))
        in_channels = width
    return blocks


def output_shape(module: nn.Module, in_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of one sample after ``module`` (batch dimension dropped); UsageError if it shrinks to nothing."""
    training = module.training
    module.eval()  # BatchNorm must not update its statistics on the probe
    try:
        with torch.no_grad():
            shape = tuple(module(torch.zeros(1, *in_shape)).shape[1:])
    except RuntimeError as error:
        raise UsageError(f"the conv layers do not fit a {tuple(in_shape)} input: {str(error).splitlines()[0]}") from None
    finally:
        module.train(training)
    return shape


def fully_connected(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear -> ReLU for each hidden width, then Linear: ``(N, in_features) -> (N, out_features)``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU()]
        in_features = width
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


def require_image_steps(model: str, step_shape: Sequence[int]) -> tuple[int, int, int]:
    """``step_shape`` as (C, H, W), or a UsageError naming the encoders that give image steps."""
    if len(step_shape) == 4:
        raise UsageError(f"model {model!r} convolves 2D images, and the encoder gives it whole 3D volumes "
                         f"{tuple(step_shape)}; feed them one 2D slice per step with --encoder slices")
    if len(step_shape) != 3:
        raise UsageError(
            f"model {model!r} has conv layers and needs image steps (C, H, W), but the encoder gives steps of "
            f"shape {tuple(step_shape)}; use an image encoder (static, repeat, rate, slices)"
        )
    return tuple(step_shape)


def require_volume_steps(model: str, step_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """``step_shape`` as (C, D, H, W), or a UsageError saying what the model needs instead."""
    if len(step_shape) != 4:
        raise UsageError(
            f"model {model!r} convolves 3D volumes (C, D, H, W), but the encoder gives steps of shape "
            f"{tuple(step_shape)}; give it a 3D set (adrenal3d, ...) with a volume encoder (static, repeat, rate), "
            f"or use {model.removesuffix('3d').removesuffix('-')!r} on 2D images"
        )
    return tuple(step_shape)


class StepwiseClassifier(nn.Module):
    """Applies ``features`` then ``head`` to every step at once and averages the logits over time.

    forward: ``(T, B, *step_shape) -> (B, num_outputs)``.
    """

    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        logits = self.head(self.features(x.reshape(steps * batch, *x.shape[2:])))
        return logits.view(steps, batch, -1).mean(dim=0)
