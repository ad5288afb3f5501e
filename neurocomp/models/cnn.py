"""Per-step convolutional network; logits averaged over time.

With the ``static`` encoder this is a plain CNN; with ``slices`` it is the per-slice CNN of the
MedMNIST3D study (one shared 2D CNN per depth slice, slice logits averaged).
"""

from __future__ import annotations

from torch import nn

from ..registry import register_model
from .layers import StepwiseClassifier, conv_block, fully_connected, output_shape, per_layer, require_image_steps


class ConvFeatures(nn.Sequential):
    """Conv blocks (conv -> [BN] -> ReLU -> [max-pool]) then flatten: ``(N, C, H, W) -> (N, F)``."""

    def __init__(self, step_shape, *, channels, kernels, strides, paddings, pools, batch_norm):
        layers = len(channels)
        options = zip(
            channels,
            per_layer(kernels, layers, "kernels"),
            per_layer(strides, layers, "strides"),
            per_layer(paddings, layers, "paddings"),
            per_layer(pools, layers, "pools"),
            per_layer(batch_norm, layers, "batch_norm"),
        )
        blocks, in_channels = [], step_shape[0]
        for width, kernel, stride, padding, pool, norm in options:
            blocks.append(
                conv_block(
                    in_channels, width, kernel=kernel, stride=stride, padding=padding,
                    batch_norm=norm, activation=nn.ReLU(), pool=pool,
                )
            )
            in_channels = width
        super().__init__(*blocks, nn.Flatten())
        self.out_features = output_shape(self, step_shape)[0]


@register_model("cnn", default_encoder="static", width="channels")
def cnn(
    *,
    step_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[int, ...] = (16, 32),
    kernels: tuple[int, ...] = (3,),
    strides: tuple[int, ...] = (1,),
    paddings: tuple[int, ...] = (0,),
    pools: tuple[int, ...] = (2,),
    batch_norm: tuple[bool, ...] = (False,),
    hidden: tuple[int, ...] = (64,),
) -> nn.Module:
    """Convolutional network applied to every step, logits averaged over time (plain CNN with 'static')."""
    features = ConvFeatures(
        require_image_steps("cnn", step_shape), channels=channels, kernels=kernels, strides=strides,
        paddings=paddings, pools=pools, batch_norm=batch_norm,
    )
    return StepwiseClassifier(features, fully_connected(features.out_features, hidden, num_outputs))
