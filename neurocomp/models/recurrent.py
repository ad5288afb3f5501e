"""Gated and plain recurrent networks (torch ``nn.LSTM``, ``nn.GRU``, ``nn.RNN``) on time-major input."""

from __future__ import annotations

from typing import Callable

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


def _recurrent(layer_class: type[nn.RNNBase], summary: str) -> Callable[..., nn.Module]:
    @with_options(Backbone)
    def build(*, step_shape: tuple[int, ...], steps: int, num_outputs: int, backbone: Backbone,
              hidden_size: int = 40, layers: int = 1, bidirectional: bool = False, dropout: float = 0.0) -> nn.Module:
        if dropout and layers < 2:
            raise UsageError("model.dropout acts between stacked layers; set model.layers to 2 or more")

        def make_core(in_features: int):
            layer = layer_class(in_features, hidden_size, num_layers=layers, bidirectional=bidirectional, dropout=dropout)
            return RecurrentCore(layer), hidden_size * (2 if bidirectional else 1)

        return sequence_model(step_shape, steps, num_outputs, backbone, make_core)

    build.__doc__ = summary
    return build


for _name, _layer, _summary in (
    ("lstm", nn.LSTM, "Long short-term memory network (torch LSTM), time-major."),
    ("gru", nn.GRU, "Gated recurrent unit network (torch GRU), time-major."),
    ("rnn", nn.RNN, "Elman recurrent network with tanh (torch RNN), time-major."),
):
    register_model(_name, default_encoder="rows", width="hidden_size", family="recurrent", space={"layers": [1, 2]})(_recurrent(_layer, _summary))
