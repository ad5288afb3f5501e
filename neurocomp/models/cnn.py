"""Per-step convolutional network; logits averaged over time.

With the ``static`` encoder this is a plain CNN; with ``slices`` it is the per-slice CNN of the
MedMNIST3D study (one shared 2D CNN per depth slice, slice logits averaged).
"""

from __future__ import annotations

from torch import nn

from ..core.registry import register_model
from .layers import StepwiseClassifier, fully_connected, output_shape, relu_conv_blocks, require_image_steps


class ConvFeatures(nn.Sequential):
    """Conv blocks (conv -> [BN] -> ReLU -> [max-pool]) then flatten: ``(N, C, H, W) -> (N, F)``."""

    def __init__(self, step_shape, **conv_options):
        super().__init__(*relu_conv_blocks(step_shape[0], **conv_options), nn.Flatten())
        self.out_features = output_shape(self, step_shape)[0]


# floor 3: conv feature maps, not neurons of a recurrent core. The 10k-parameter CNN (3 and 6 maps) is
# no collapsed model: it led the budget benchmark; LeNet-1 had 4 and 12 maps.
@register_model("cnn", default_encoder="static", width="channels", floor=3, family="convolutional",
                space={"batch_norm": [[False], [True]]})
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
