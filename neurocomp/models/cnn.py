"""Convolutional networks: per-step 2D (``cnn``) and whole-volume 3D (``cnn3d``); logits averaged over time.

With the ``static`` encoder ``cnn`` is a plain CNN; with ``slices`` it is the per-slice CNN of the
MedMNIST3D study (one shared 2D CNN per depth slice, slice logits averaged). ``cnn3d`` convolves the
whole volume (Conv3d blocks), as the MedMNIST 3D baselines do.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..core.registry import register_model
from .layers import (StepwiseClassifier, fully_connected, output_shape, relu_conv_blocks, require_image_steps,
                     require_volume_steps)
from .options import with_options


class ConvFeatures(nn.Sequential):
    """Conv blocks (conv -> [BN] -> ReLU -> [max-pool]) then flatten: ``(N, C, *spatial) -> (N, F)``,
    over as many spatial axes as ``step_shape`` has after its channels (2 or 3)."""

    def __init__(self, step_shape, **conv_options):
        super().__init__(*relu_conv_blocks(step_shape[0], dims=len(step_shape) - 1, **conv_options), nn.Flatten())
        self.out_features = output_shape(self, step_shape)[0]


@dataclass(frozen=True)
class Convolutions:
    """Options of a convolutional classifier: conv blocks (one value per layer, or one for all), then
    fully connected ``hidden`` layers."""

    channels: tuple[int, ...] = (16, 32)
    kernels: tuple[int, ...] = (3,)
    strides: tuple[int, ...] = (1,)
    paddings: tuple[int, ...] = (0,)
    pools: tuple[int, ...] = (2,)
    batch_norm: tuple[bool, ...] = (False,)
    hidden: tuple[int, ...] = (64,)

    def classifier(self, step_shape: tuple[int, ...], num_outputs: int) -> StepwiseClassifier:
        """The network ``(T, B, *step_shape) -> (B, num_outputs)``: features of every step, then the head."""
        features = ConvFeatures(step_shape, channels=self.channels, kernels=self.kernels, strides=self.strides,
                                paddings=self.paddings, pools=self.pools, batch_norm=self.batch_norm)
        return StepwiseClassifier(features, fully_connected(features.out_features, self.hidden, num_outputs))


# floor 3: conv feature maps, not neurons of a recurrent core. The 10k-parameter CNN (3 and 6 maps) is
# no collapsed model: it led the budget benchmark; LeNet-1 had 4 and 12 maps.
@register_model("cnn", default_encoder="static", width="channels", floor=3, family="convolutional",
                space={"batch_norm": [[False], [True]]})
@with_options(Convolutions)
def cnn(*, step_shape: tuple[int, ...], num_outputs: int, convolutions: Convolutions) -> nn.Module:
    """Convolutional network applied to every step, logits averaged over time (plain CNN with 'static')."""
    return convolutions.classifier(require_image_steps("cnn", step_shape), num_outputs)


@register_model("cnn3d", default_encoder="static", volume_encoder="static", width="channels", floor=3,
                family="convolutional", space={"batch_norm": [[False], [True]]})
@with_options(Convolutions)
def cnn3d(*, step_shape: tuple[int, ...], num_outputs: int, convolutions: Convolutions) -> nn.Module:
    """3D convolutional network on whole volumes (Conv3d blocks, then fully connected layers)."""
    return convolutions.classifier(require_volume_steps("cnn3d", step_shape), num_outputs)
