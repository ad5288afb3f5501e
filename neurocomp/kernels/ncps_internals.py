"""Every read of ncps' private attributes, in one place.

ncps exposes no public API for its cells' parameters, ODE unfolds or layers, yet the native kernels
and the cost count need them. pyproject.toml pins ncps to the minor version these names were read
from, and ``tests/test_ncps_internals.py`` fails loudly when an ncps release renames one.
"""

from __future__ import annotations

import torch
from torch import nn


def ltc_parameters(cell: nn.Module) -> dict[str, torch.Tensor]:
    """An ``LTCCell``'s parameters and 0/1 masks by name (``sensory_w``, ``sparsity_mask``, ...)."""
    return cell._params


def ltc_unfolds(cell: nn.Module) -> int:
    """ODE solver steps per input step of an ``LTCCell``."""
    return cell._ode_unfolds


def ltc_epsilon(cell: nn.Module) -> float:
    """The constant an ``LTCCell`` adds to its ODE denominator."""
    return float(cell._epsilon)


def ltc_output_mapping(cell: nn.Module) -> str:
    """``affine``, ``linear`` or ``none``: how an ``LTCCell`` maps its motor neurons to outputs."""
    return cell._output_mapping


def ltc_map_inputs(cell: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An ``LTCCell``'s input mapping applied to ``x`` ``(..., inputs)``."""
    return cell._map_inputs(x)


def cfc_layers(cell: nn.Module) -> list[nn.Module]:
    """The ``CfCCell`` layers (inter, command, motor) of a ``WiredCfCCell``."""
    return list(cell._layers)
