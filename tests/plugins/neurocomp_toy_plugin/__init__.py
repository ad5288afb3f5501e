"""An outside package's model, registered through the ``neurocomp.models`` entry point (see the dist-info)."""

import math

import torch
from torch import nn

from neurocomp import register_model


class LeakyIntegrator(nn.Module):
    """``(T, B, *step) -> (B, K)``: a linear map of each step, leaky-summed over time."""

    def __init__(self, in_features: int, num_outputs: int, leak: float):
        super().__init__()
        self.linear = nn.Linear(in_features, num_outputs)
        self.leak = leak

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = torch.zeros(x.shape[1], self.linear.out_features, device=x.device)
        for step in x:
            state = self.leak * state + self.linear(step.flatten(1))
        return state


@register_model("toy-leaky")
def toy_leaky(*, step_shape: tuple, num_outputs: int, leak: float = 0.5) -> nn.Module:
    """Leaky integrator of linear step features (test plug-in)."""
    return LeakyIntegrator(math.prod(step_shape), num_outputs, leak)
