"""Built-in models; importing this package registers them (timm's pattern).

A model builder is a function with keyword-only arguments, registered with ``@register_model``.
Those without defaults are inputs the suite supplies (any of ``step_shape``, ``steps``,
``num_outputs``); those with defaults are the model's options, settable from configs and ``--set``.
"""

from __future__ import annotations

import inspect

from torch import nn

from ..data.encoders import Encoder
from ..core.registry import MODELS
from . import alif, cnn, liquid, mlp, recurrent, resnet, snn  # noqa: F401  (registration side effect)


def build_model(name: str, *, encoder: Encoder, num_outputs: int, **options) -> nn.Module:
    """Build model ``name`` for the encoder's steps; the builder gets the inputs it declares."""
    builder = MODELS.get(name).builder
    declared = inspect.signature(builder).parameters
    inputs = {"step_shape": encoder.step_shape, "steps": encoder.steps, "num_outputs": num_outputs}
    return builder(**{key: value for key, value in inputs.items() if key in declared}, **options)
