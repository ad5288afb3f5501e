"""An outside package's model, registered through the ``neurocomp.models`` entry point (see the
dist-info), written with the public API only (``from neurocomp import ...``)."""

import math

import torch
from torch import nn

from neurocomp import HoldsNeuronState, register_model


class LeakyState(nn.Module, HoldsNeuronState):
    """Leaky integrators: current ``(T, B, K)`` -> their state after the last step ``(B, K)``."""

    state_accesses = 2  # per integrator and step: read and write the state

    def __init__(self, leak: float):
        super().__init__()
        self.leak = leak

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        state = torch.zeros_like(current[0])
        for step in current:
            state = self.leak * state + step
        return state


class LeakyIntegrator(nn.Module):
    """``(T, B, *step) -> (B, K)``: a linear map of each step, leaky-summed over time."""

    def __init__(self, in_features: int, num_outputs: int, leak: float):
        super().__init__()
        self.linear = nn.Linear(in_features, num_outputs)
        self.state = LeakyState(leak)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.state(self.linear(x.flatten(2)))


@register_model("toy-leaky")
def toy_leaky(*, step_shape: tuple, num_outputs: int, leak: float = 0.5) -> nn.Module:
    """Leaky integrator of linear step features (test plug-in)."""
    return LeakyIntegrator(math.prod(step_shape), num_outputs, leak)
