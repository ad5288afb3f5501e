"""Adaptive LIF (``alif``): the worked example of adding a neuron model with the public API only.

An adaptive leaky integrate-and-fire neuron raises its own threshold by ``adaptation`` after each
spike; the raise decays back with factor ``rho`` per step (Bellec et al. 2018, "LSNN"):

    a[t]   = rho * a[t-1] + s[t-1]                       adaptation trace
    v[t]   = beta * v[t-1] + I[t] - s[t-1] * theta[t-1]  membrane, reset by subtraction
    theta  = threshold + adaptation * a[t]
    s[t]   = H(v[t] - theta[t])                          fast-sigmoid surrogate gradient

It reuses the suite's spiking network (conv/FC synapses, spike-count readout, rate loss), so it
gets the trainer, metrics, run records and the model contract test without further code.
"""

from __future__ import annotations

import torch
from snntorch import surrogate
from torch import nn

from neurocomp import HoldsNeuronState, Spiking, register_model, with_options


class AdaptiveLayer(nn.Module, HoldsNeuronState):
    """ALIF neurons over time: current ``(T, B, ...)`` -> spikes and membranes ``(T, B, ...)``."""

    state_accesses = 7  # per neuron and step: read and write membrane, trace and threshold; write the spike

    def __init__(self, beta: float, threshold: float, adaptation: float, rho: float, slope: float):
        super().__init__()
        self.beta, self.threshold, self.adaptation, self.rho = beta, threshold, adaptation, rho
        self.spike = surrogate.fast_sigmoid(slope=slope)

    def forward(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        membrane = torch.zeros_like(current[0])
        trace = torch.zeros_like(current[0])
        spike = torch.zeros_like(current[0])
        theta = torch.full_like(current[0], self.threshold)
        spikes, membranes = [], []
        for step_current in current:
            trace = self.rho * trace + spike
            membrane = self.beta * membrane + step_current - spike * theta
            theta = self.threshold + self.adaptation * trace
            spike = self.spike(membrane - theta)
            spikes.append(spike)
            membranes.append(membrane)
        return torch.stack(spikes), torch.stack(membranes)


@register_model("alif", default_encoder="rate", width="channels", family="spiking",
                space={"beta": {"low": 0.5, "high": 0.95}, "adaptation": {"low": 0.05, "high": 1.0, "log": True},
                       "rho": {"low": 0.5, "high": 0.99}})
@with_options(Spiking)
def alif(*, step_shape: tuple[int, ...], num_outputs: int, spiking: Spiking, adaptation: float = 0.2,
         rho: float = 0.9) -> nn.Module:
    """Adaptive LIF SNN: the threshold rises after each spike and decays back (worked plug-in example)."""
    return spiking.network(step_shape, num_outputs, "alif", lambda: AdaptiveLayer(
        spiking.beta, spiking.threshold, adaptation, rho, spiking.slope))
