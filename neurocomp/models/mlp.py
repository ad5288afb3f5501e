"""Fully connected baseline (the DNN of the LNN study): each flattened step -> logits, averaged over time."""

from __future__ import annotations

import math

from torch import nn

from ..core.registry import register_model
from .layers import StepwiseClassifier, fully_connected


@register_model("mlp", default_encoder="static", width="hidden", family="fully connected")
def mlp(*, step_shape: tuple[int, ...], num_outputs: int, hidden: tuple[int, ...] = (1024, 128)) -> nn.Module:
    """Fully connected network on each flattened step, logits averaged over time (the DNN baseline)."""
    in_features = math.prod(step_shape)
    return StepwiseClassifier(nn.Flatten(), fully_connected(in_features, hidden, num_outputs))
