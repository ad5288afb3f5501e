"""Leaky integrate-and-fire spiking network (snnTorch ``Leaky``): conv-LIF blocks, then FC-LIF layers.

Each block is conv -> [BN] -> [max-pool] -> LIF, the order of the snnTorch PneumoniaMNIST study.
Layers run one after the other over all T steps: a layer's input current does not depend on its own
state, so its conv/linear part runs once on ``(T*B, ...)`` and only the LIF update loops over time.
That is the same computation as stepping the whole network per time step, with fewer, larger ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Optional

import snntorch
import torch
from snntorch import surrogate
from torch import nn

from .. import kernels
from ..core.abilities import DescribesItself, EmitsSpikes, HoldsNeuronState
from ..core.registry import register_model
from .layers import conv_block, output_shape, per_layer, require_image_steps, require_volume_steps
from .options import with_options


class LeakyLayer(nn.Module, HoldsNeuronState):
    """A layer of snnTorch ``Leaky`` neurons run over time (reset delayed, as snnTorch does).

    forward: input current ``(T, B, ...)`` -> spikes and membrane potentials, both ``(T, B, ...)``.
    Any module with this contract can be a spiking layer of :class:`SpikingNetwork`. Where the
    native LIF kernel computes exactly this ``neuron`` (the kernels' check), it runs; otherwise
    snnTorch steps the neuron, so changing ``neuron`` (its surrogate, reset, ...) is always honoured.
    """

    state_accesses = 3  # per neuron and step: read and write the membrane, write the spike

    def __init__(self, *, beta: float, threshold: float, slope: float, reset: str, learn_beta: bool, learn_threshold: bool):
        super().__init__()
        self.neuron = snntorch.Leaky(
            beta=beta, threshold=threshold, spike_grad=surrogate.fast_sigmoid(slope=slope),
            reset_mechanism=reset, learn_beta=learn_beta, learn_threshold=learn_threshold,
        )

    def forward(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused = kernels.lif.leaky_over_time(self.neuron, current)
        if fused is not None:
            return fused
        membrane = torch.zeros_like(current[0])  # a fresh state every call: no leak across batches
        spikes, membranes = [], []
        for step_current in current:
            spike, membrane = self.neuron(step_current, membrane)
            spikes.append(spike.to(current.dtype))  # snnTorch's surrogates return float32 even in fp64
            membranes.append(membrane)
        return torch.stack(spikes), torch.stack(membranes)


def _leaky(neurons: nn.Module) -> Optional[nn.Module]:
    """The snnTorch ``Leaky`` a spiking layer steps, for the kernels to check; None for other layers."""
    return neurons.neuron if isinstance(neurons, LeakyLayer) else None


class SpikingNetwork(nn.Module, EmitsSpikes, DescribesItself):
    """Synaptic layers, each followed by a spiking layer; stateless between calls.

    ``layers[i]`` maps ``(N, ...)`` to ``(N, ...)`` and runs once on all ``T*B`` steps;
    ``neurons[i]`` maps its current ``(T, B, ...)`` to spikes and membranes ``(T, B, ...)``.
    forward: ``(T, B, *step_shape) -> (B, num_outputs)`` logits; ``forward_with_spikes`` also returns
    the output spikes ``(T, B, num_outputs)`` for the rate loss.
    """

    def __init__(self, layers: list[nn.Module], neurons: list[nn.Module], readout: str):
        super().__init__()
        if readout not in ("count", "membrane"):
            raise ValueError(f"readout must be 'count' or 'membrane', got {readout!r}")
        self.layers = nn.ModuleList(layers)
        self.neurons = nn.ModuleList(neurons)
        self.readout = readout

    def forward_with_spikes(self, x: torch.Tensor, rates: Optional[list] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T, B, *step_shape)`` -> logits ``(B, K)`` and output spikes ``(T, B, K)``.

        ``rates``, when given, receives each spiking layer's rate (spikes per neuron per step).
        """
        steps, batch = x.shape[:2]
        activity, fused = x, None
        for index, (layer, neuron) in enumerate(zip(self.layers, self.neurons)):
            after_fused, fused = fused is not None, None
            if index < len(self.layers) - 1:
                fused = kernels.conv_pool_lif.conv_block_leaky(layer, _leaky(neuron), activity)
            if fused is not None:
                activity, membrane = fused
            else:
                # An FC layer reads the spikes of a fused block before it in their channels-last order.
                current = kernels.conv_pool_lif.flatten_linear(layer, activity) if after_fused else None
                if current is None:
                    current = layer(activity.reshape(steps * batch, *activity.shape[2:]))
                activity, membrane = neuron(current.view(steps, batch, *current.shape[1:]))
            if rates is not None:
                rates.append(activity.mean().item())
        if self.readout == "membrane":
            return membrane.mean(dim=0), activity
        # Spike counts decide; the mean membrane, squashed into (-0.5, 0.5), orders equal counts
        # (0:0 included) instead of argmax silently picking class 0, and makes the score continuous.
        return activity.sum(dim=0) + 0.5 * torch.tanh(membrane.mean(dim=0)), activity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_spikes(x)[0]

    def spike_fed(self, input_spikes: bool) -> list[nn.Module]:
        """Every synaptic layer after the first reads the spikes of the layer before it; the first
        reads the encoder's, spikes only when it emits them (rate coding)."""
        fed = self.layers if input_spikes else self.layers[1:]
        return [module for layer in fed for module in layer.modules() if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear))]

    def describe(self) -> dict:
        """Which path computes each spiking layer, and why the library runs where it does."""
        parameter = next(self.parameters())
        paths = []
        for index, (layer, neuron) in enumerate(zip(self.layers, self.neurons)):
            decision = None
            if index < len(self.layers) - 1:
                decision = kernels.conv_pool_lif.plan(layer, _leaky(neuron), parameter.device, parameter.dtype)
            if decision is None or not decision.native:
                decision = kernels.lif.plan(_leaky(neuron), parameter.device, parameter.dtype)
            paths.append(decision.describe(f"spiking layer {index}"))
        return {"kernels": paths}


@dataclass(frozen=True)
class Spiking:
    """Options every spiking network here shares: its synaptic layers (conv -> [BN] -> [max-pool]
    blocks, then FC layers: ``hidden`` widths, then one per output), its neurons' decay, threshold
    and surrogate slope, and its readout. A spiking model takes them with ``@with_options(Spiking)``
    and builds with :meth:`network`, giving only its own neuron layer."""

    channels: tuple[int, ...] = (12, 32)  # conv widths; () when steps are vectors
    kernels: tuple[int, ...] = (5, 3)
    pools: tuple[int, ...] = (2,)
    batch_norm: tuple[bool, ...] = (False,)
    hidden: tuple[int, ...] = ()
    beta: float = 0.6  # membrane decay per step
    threshold: float = 1.0
    slope: float = 25.0  # of the fast-sigmoid surrogate gradient
    readout: Literal["count", "membrane"] = "count"

    def network(self, step_shape: tuple[int, ...], num_outputs: int, model: str,
                neurons: Callable[[], nn.Module], *, volumes: bool = False) -> SpikingNetwork:
        """The network ``(T, B, *step_shape) -> (B, num_outputs)``: each synaptic layer followed by a
        spiking layer from ``neurons()``; UsageError (naming ``model``) when its conv layers do not
        fit the steps (2D images, or 3D volumes where ``volumes``)."""
        layers = self.layers(step_shape, num_outputs, model, volumes=volumes)
        return SpikingNetwork(layers, [neurons() for _ in layers], self.readout)

    def layers(self, step_shape: tuple[int, ...], num_outputs: int, model: str, *, volumes: bool = False) -> list[nn.Module]:
        """One module per spiking layer, mapping ``(N, ...)`` to that layer's input current; the
        first FC layer flattens the last conv map (or the vector step), the last has ``num_outputs``
        units. ``volumes``: Conv3d blocks on ``(C, D, H, W)`` steps instead of Conv2d on ``(C, H, W)``."""
        layers: list[nn.Module] = []
        shape = tuple(step_shape)
        if self.channels:
            in_channels = (require_volume_steps if volumes else require_image_steps)(model, step_shape)[0]
            options = zip(
                self.channels,
                per_layer(self.kernels, len(self.channels), "kernels"),
                per_layer(self.pools, len(self.channels), "pools"),
                per_layer(self.batch_norm, len(self.channels), "batch_norm"),
            )
            for width, kernel, pool, norm in options:
                layers.append(conv_block(in_channels, width, kernel=kernel, batch_norm=norm, pool=pool,
                                         dims=len(step_shape) - 1))
                shape = output_shape(layers[-1], shape)
                in_channels = width
        in_features = math.prod(shape)
        for index, width in enumerate((*self.hidden, num_outputs)):
            linear = nn.Linear(in_features, width)
            layers.append(nn.Sequential(nn.Flatten(), linear) if index == 0 else linear)
            in_features = width
        return layers


@dataclass(frozen=True)
class SpikingVolumes(Spiking):
    """:class:`Spiking` with narrower, smaller-kernel default conv blocks for whole volumes: at 28^3 and
    20 rate-coded steps the 2D defaults (12 and 32 maps, 5 and 3 wide) cost ~240 s per epoch on two CPU
    cores, these ~40 s."""

    channels: tuple[int, ...] = (4, 8)
    kernels: tuple[int, ...] = (3,)


@dataclass(frozen=True)
class Leaky:
    """Options of snnTorch ``Leaky`` neurons beyond :class:`Spiking`'s: the reset after a spike and
    whether the decay and the threshold learn."""

    reset: Literal["subtract", "zero", "none"] = "subtract"
    learn_beta: bool = False
    learn_threshold: bool = False

    def network(self, model: str, spiking: Spiking, step_shape: tuple[int, ...], num_outputs: int, *,
                volumes: bool = False) -> SpikingNetwork:
        """A :class:`SpikingNetwork` of these neurons ``(T, B, *step_shape) -> (B, num_outputs)``."""
        return spiking.network(step_shape, num_outputs, model, lambda: LeakyLayer(
            beta=spiking.beta, threshold=spiking.threshold, slope=spiking.slope, reset=self.reset,
            learn_beta=self.learn_beta, learn_threshold=self.learn_threshold), volumes=volumes)


_SPACE = {"beta": {"low": 0.5, "high": 0.95}, "slope": {"low": 5.0, "high": 50.0, "log": True}}


@register_model("snn", default_encoder="rate", width="channels", family="spiking", space=_SPACE)
@with_options(Spiking, Leaky)
def snn(*, step_shape: tuple[int, ...], num_outputs: int, spiking: Spiking, leaky: Leaky) -> nn.Module:
    """Leaky integrate-and-fire SNN (snnTorch): conv-LIF blocks, FC-LIF layers, spike-count readout."""
    return leaky.network("snn", spiking, step_shape, num_outputs)


@register_model("snn3d", default_encoder="rate", volume_encoder="rate", width="channels", family="spiking", space=_SPACE)
@with_options(SpikingVolumes, Leaky)
def snn3d(*, step_shape: tuple[int, ...], num_outputs: int, spikingvolumes: SpikingVolumes, leaky: Leaky) -> nn.Module:
    """3D leaky integrate-and-fire SNN (snnTorch): Conv3d-LIF blocks on whole volumes (rate- or
    direct-coded), FC-LIF layers, spike-count readout."""
    return leaky.network("snn3d", spikingvolumes, step_shape, num_outputs, volumes=True)
