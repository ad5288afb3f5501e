"""Leaky integrate-and-fire spiking network (snnTorch ``Leaky``): conv-LIF blocks, then FC-LIF layers.

Each block is conv -> [BN] -> [max-pool] -> LIF, the order of the snnTorch PneumoniaMNIST study.
Layers run one after the other over all T steps: a layer's input current does not depend on its own
state, so its conv/linear part runs once on ``(T*B, ...)`` and only the LIF update loops over time.
That is the same computation as stepping the whole network per time step, with fewer, larger ops.
"""

from __future__ import annotations

from typing import Literal

import snntorch
import torch
from snntorch import surrogate
from torch import nn

from ..registry import register_model
from .layers import conv_block, output_shape, per_layer, require_image_steps


class SpikingNetwork(nn.Module):
    """Stateless-between-calls LIF network.

    forward: ``(T, B, *step_shape) -> (B, num_outputs)`` logits; ``forward_with_spikes`` also returns
    the output spikes ``(T, B, num_outputs)`` for the rate loss.
    """

    def __init__(self, layers: list[nn.Module], neurons: list[snntorch.Leaky], readout: str):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.neurons = nn.ModuleList(neurons)
        self.readout = readout

    @staticmethod
    def _integrate(neuron: snntorch.Leaky, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LIF over time: current ``(T, B, ...)`` -> spikes and membrane potentials, both ``(T, B, ...)``."""
        membrane = torch.zeros_like(current[0])  # a fresh state every call: no leak across batches
        spikes, membranes = [], []
        for step_current in current:
            spike, membrane = neuron(step_current, membrane)
            spikes.append(spike)
            membranes.append(membrane)
        return torch.stack(spikes), torch.stack(membranes)

    def forward_with_spikes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T, B, *step_shape)`` -> logits ``(B, K)`` and output spikes ``(T, B, K)``."""
        steps, batch = x.shape[:2]
        activity = x
        for layer, neuron in zip(self.layers, self.neurons):
            current = layer(activity.reshape(steps * batch, *activity.shape[2:]))
            activity, membrane = self._integrate(neuron, current.view(steps, batch, *current.shape[1:]))
        if self.readout == "membrane":
            return membrane.mean(dim=0), activity
        # Spike counts decide; the mean membrane, squashed into (-0.5, 0.5), orders equal counts
        # (0:0 included) instead of argmax silently picking class 0, and makes the score continuous.
        return activity.sum(dim=0) + 0.5 * torch.tanh(membrane.mean(dim=0)), activity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_spikes(x)[0]


@register_model("snn", default_encoder="rate")
def snn(
    *,
    step_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[int, ...] = (12, 32),
    kernels: tuple[int, ...] = (5, 3),
    pools: tuple[int, ...] = (2,),
    batch_norm: tuple[bool, ...] = (False,),
    hidden: tuple[int, ...] = (),
    beta: float = 0.6,
    threshold: float = 1.0,
    slope: float = 25.0,
    reset: Literal["subtract", "zero", "none"] = "subtract",
    learn_beta: bool = False,
    learn_threshold: bool = False,
    readout: Literal["count", "membrane"] = "count",
) -> nn.Module:
    """Leaky integrate-and-fire SNN (snnTorch): conv-LIF blocks, FC-LIF layers, spike-count readout."""

    def neuron() -> snntorch.Leaky:
        return snntorch.Leaky(
            beta=beta, threshold=threshold, spike_grad=surrogate.fast_sigmoid(slope=slope),
            reset_mechanism=reset, learn_beta=learn_beta, learn_threshold=learn_threshold,
        )

    layers: list[nn.Module] = []
    shape = tuple(step_shape)
    if channels:
        in_channels = require_image_steps("snn", step_shape)[0]
        options = zip(
            channels,
            per_layer(kernels, len(channels), "kernels"),
            per_layer(pools, len(channels), "pools"),
            per_layer(batch_norm, len(channels), "batch_norm"),
        )
        for width, kernel, pool, norm in options:
            layers.append(conv_block(in_channels, width, kernel=kernel, batch_norm=norm, pool=pool))
            shape = output_shape(layers[-1], shape)
            in_channels = width
    in_features = int(torch.Size(shape).numel())
    for index, width in enumerate((*hidden, num_outputs)):
        # The first FC layer flattens the last conv map (or the vector step) itself.
        layers.append(nn.Sequential(nn.Flatten(), nn.Linear(in_features, width)) if index == 0 else nn.Linear(in_features, width))
        in_features = width
    return SpikingNetwork(layers, [neuron() for _ in layers], readout)
