"""Sequence models: the same per-step feature extractor, a recurrent core, a readout and a head.

Every core (LTC, CfC, LSTM, GRU, RNN) is wrapped by :class:`SequenceClassifier`, so two runs that
differ only in ``--model`` differ only in the neuron dynamics. Image steps go through a conv stack;
for a single-step (static) image the conv feature map itself can be read as a sequence of its rows,
columns, channels or patches, or of consecutive chunks of its flattened features.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..core.abilities import DescribesItself
from ..core.errors import UsageError
from ..core.registry import ENCODERS
from .layers import output_shape, relu_conv_blocks


@dataclass(frozen=True)
class Backbone:
    """Options shared by every sequence model: the per-step features and how a map becomes a sequence."""

    channels: tuple[int, ...] = (6, 16)  # conv widths, used when steps are images; () flattens the image
    kernels: tuple[int, ...] = (5, 3)
    strides: tuple[int, ...] = (1,)
    paddings: tuple[int, ...] = (0,)
    pools: tuple[int, ...] = (2,)
    batch_norm: tuple[bool, ...] = (False,)
    pool_last: int = 1  # an extra max-pool after the last block (the LNN study's head)
    sequence: Literal["steps", "rows", "columns", "channels", "patches", "chunks"] = "steps"
    patch: int = 2  # sequence=patches: patch side on the feature map
    chunk: int = 16  # sequence=chunks: features per step of the flattened map
    # flatten: every step's core output through one linear head. It beat the last step's output for the
    # LTC, CfC, LSTM, GRU and RNN on the validation splits of three sets (configs/defaults/ltc-recipe.yaml,
    # cfc-recipe.yaml, readout.yaml; results/RECIPES.md); under `last` an NCP's motor neurons were the
    # logits themselves. Added as last, which runs recorded before keep.
    readout: Literal["last", "mean", "flatten"] = field(default="flatten", metadata={"neutral": "last"})


class StepFeatures(nn.Module):
    """Per-step features as a time-major sequence.

    forward: ``(T, B, *step_shape) -> (T', B, F)``; T' = T for ``sequence='steps'``, otherwise the
    single step's feature map read as a sequence (T' = rows, channels, patches, ... of the map).
    """

    def __init__(self, step_shape: tuple[int, ...], backbone: Backbone, steps: int):
        super().__init__()
        self.sequence = backbone.sequence
        image_steps = len(step_shape) == 3
        if backbone.sequence != "steps" and (steps != 1 or not image_steps):
            raise UsageError(
                f"model.sequence={backbone.sequence!r} reads one image's feature map as a sequence; it needs the "
                f"'static' encoder (one image step), not {steps} steps of shape {tuple(step_shape)}"
            )
        blocks: list[nn.Module] = []
        if image_steps and backbone.channels:
            blocks = relu_conv_blocks(
                step_shape[0], channels=backbone.channels, kernels=backbone.kernels, strides=backbone.strides,
                paddings=backbone.paddings, pools=backbone.pools, batch_norm=backbone.batch_norm,
            )
            if backbone.pool_last > 1:
                blocks.append(nn.MaxPool2d(backbone.pool_last))
        self.convs = nn.Sequential(*blocks)
        map_shape = output_shape(self.convs, step_shape) if blocks else tuple(step_shape)
        if backbone.sequence == "steps":
            self.reader = None
            self.out_steps, self.out_features = steps, int(torch.Size(map_shape).numel())
        elif backbone.sequence == "chunks":
            total = int(torch.Size(map_shape).numel())
            if total % backbone.chunk:
                raise UsageError(f"model.chunk={backbone.chunk} does not divide the {total} features of the {map_shape} map")
            self.reader = None
            self.chunk = backbone.chunk
            self.out_steps, self.out_features = total // backbone.chunk, backbone.chunk
        else:
            options = {"size": backbone.patch} if backbone.sequence == "patches" else {}
            self.reader = ENCODERS.get(backbone.sequence).builder(sample_shape=map_shape, **options)
            self.out_steps, self.out_features = self.reader.steps, self.reader.step_shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        maps = self.convs(x.reshape(steps * batch, *x.shape[2:]))
        if self.sequence == "steps":
            return maps.reshape(steps, batch, -1)
        if self.sequence == "chunks":  # channel-major flattening, as ``x.view(-1, 32, 16)`` in the LNN study
            return maps.reshape(batch, -1, self.chunk).transpose(0, 1)
        return self.reader(maps)


class Readout(nn.Module):
    """Core outputs ``(T, B, H)`` -> ``(B, H)`` (last step or mean over time) or ``(B, T*H)`` (flatten)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.kind == "last":
            return outputs[-1]
        if self.kind == "mean":
            return outputs.mean(dim=0)
        return outputs.transpose(0, 1).reshape(outputs.shape[1], -1)


class SequenceClassifier(nn.Module, DescribesItself):
    """features -> core -> readout -> head.

    ``core`` maps a time-major ``(T, B, F)`` sequence to ``(T, B, H)``; each core adapts to its
    library inside itself (ncps is batch-first, ``nn.LSTM`` here is time-first).
    forward: ``(T, B, *step_shape) -> (B, num_outputs)``.
    """

    def __init__(self, features: StepFeatures, core: nn.Module, core_size: int, readout: str, num_outputs: int):
        super().__init__()
        self.features = features
        self.core = core
        self.readout = Readout(readout)
        read_size = core_size * (features.out_steps if readout == "flatten" else 1)
        # NCP motor neurons are the logits themselves when they match the classes (no extra layer).
        self.head = nn.Identity() if read_size == num_outputs and readout != "flatten" else nn.Linear(read_size, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.readout(self.core(self.features(x))))

    def describe(self) -> dict:
        """What the run record should hold about this model beyond its parameters."""
        return self.core.describe() if isinstance(self.core, DescribesItself) else {}


def sequence_model(
    step_shape: tuple[int, ...],
    steps: int,
    num_outputs: int,
    backbone: Backbone,
    make_core: typing.Callable[[int], tuple[nn.Module, int]],
) -> SequenceClassifier:
    """Assemble a SequenceClassifier; ``make_core(in_features)`` returns the core and its output size."""
    features = StepFeatures(step_shape, backbone, steps)
    core, core_size = make_core(features.out_features)
    return SequenceClassifier(features, core, core_size, backbone.readout, num_outputs)
