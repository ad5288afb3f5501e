"""The seam between the models and the native kernels: models ask it to run a layer fast and it
answers with a kernel only where the kernel computes exactly the module's maths (:mod:`.policy`);
otherwise the caller runs the library (snnTorch, ncps, torch) and :class:`Decision` says why.

Each kernel module holds its C++ binding, its autograd Function and the one check of what it
covers: :mod:`.lif` (snnTorch ``Leaky`` over time), :mod:`.conv_pool_lif` (conv -> max-pool -> LIF
blocks), :mod:`.ltc` and :mod:`.cfc` (ncps cells over a sequence), :mod:`.rate` (rate coding).
"""

from __future__ import annotations

from typing import Optional

import torch

from . import cfc, conv_pool_lif, lif, ltc, rate
from .policy import BACKENDS, Decision, backend, current_backend

# ncps module type -> (kernel module, its sequence function over the module's cell)
_LIQUID = {ltc.LTC: (ltc, ltc.ltc_sequence), cfc.CfC: (cfc, cfc.cfc_sequence)}


def plan_liquid(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> Decision:
    """Whether a kernel computes the ncps ``LTC`` or ``CfC`` ``module`` on ``device`` / ``dtype``."""
    kernel = _LIQUID.get(type(module), (ltc, None))[0]
    return kernel.plan(module, device, dtype)


def liquid_sequence(module: torch.nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """The motor outputs ``(T, B, motor)`` of the ncps ``LTC``/``CfC`` ``module`` over the time-major
    ``x`` ``(T, B, inputs)`` from a zero state, by a kernel; None where none applies."""
    if not plan_liquid(module, x.device, x.dtype).native:
        return None
    return _LIQUID[type(module)][1](module.rnn_cell, x)


__all__ = ["BACKENDS", "Decision", "backend", "current_backend", "cfc", "conv_pool_lif", "lif", "liquid_sequence",
           "ltc", "plan_liquid", "rate"]
