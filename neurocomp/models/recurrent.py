"""Gated and plain recurrent networks (torch ``nn.LSTM``, ``nn.GRU``, ``nn.RNN``) on time-major input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.errors import UsageError
from ..core.registry import register_model
from .options import with_options
from .sequence import Backbone, sequence_model


class RecurrentCore(nn.Module):
    """``(T, B, F) -> (T, B, H * directions)``; the torch layer is built time-first (batch_first=False)
    and fed time-first, the pairing the MedMNIST3D study got wrong."""

    def __init__(self, layer: nn.RNNBase):
        super().__init__()
        if layer.batch_first:
            raise ValueError("RecurrentCore takes time-major input; build the layer with batch_first=False")
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)[0]


@dataclass(frozen=True)
class Recurrent:
    """Options of a torch recurrent core: its width, stacked layers, directions and the dropout
    between stacked layers."""

    hidden_size: int = 40
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0

    def model(self, layer_class: type[nn.RNNBase], step_shape: tuple[int, ...], steps: int, num_outputs: int,
              backbone: Backbone) -> nn.Module:
        """The sequence model ``(T, B, *step_shape) -> (B, num_outputs)`` with a ``layer_class`` core."""
        if self.dropout and self.layers < 2:
            raise UsageError("model.dropout acts between stacked layers; set model.layers to 2 or more")

        def make_core(in_features: int):
            layer = layer_class(in_features, self.hidden_size, num_layers=self.layers, bidirectional=self.bidirectional,
                                dropout=self.dropout)
            return RecurrentCore(layer), self.hidden_size * (2 if self.bidirectional else 1)

        return sequence_model(step_shape, steps, num_outputs, backbone, make_core)


_REGISTRATION = {"default_encoder": "rows", "width": "hidden_size", "family": "recurrent", "space": {"layers": [1, 2]}}


@register_model("lstm", **_REGISTRATION)
@with_options(Backbone, Recurrent)
def lstm(*, step_shape: tuple[int, ...], steps: int, num_outputs: int, backbone: Backbone, recurrent: Recurrent) -> nn.Module:
    """Long short-term memory network (torch LSTM), time-major."""
    return recurrent.model(nn.LSTM, step_shape, steps, num_outputs, backbone)


@register_model("gru", **_REGISTRATION)
@with_options(Backbone, Recurrent)
def gru(*, step_shape: tuple[int, ...], steps: int, num_outputs: int, backbone: Backbone, recurrent: Recurrent) -> nn.Module:
    """Gated recurrent unit network (torch GRU), time-major."""
    return recurrent.model(nn.GRU, step_shape, steps, num_outputs, backbone)


@register_model("rnn", **_REGISTRATION)
@with_options(Backbone, Recurrent)
def rnn(*, step_shape: tuple[int, ...], steps: int, num_outputs: int, backbone: Backbone, recurrent: Recurrent) -> nn.Module:
    """Elman recurrent network with tanh (torch RNN), time-major."""
    return recurrent.model(nn.RNN, step_shape, steps, num_outputs, backbone)
