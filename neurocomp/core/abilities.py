"""What a model (or a module inside it) can do beyond mapping ``(T, B, *step_shape)`` to logits,
declared by inheriting one of these classes, never guessed from its attributes.

The suite asks for an ability only where it is declared: the rate loss and the spike-rate record
need :class:`EmitsSpikes`, the record's model section :class:`DescribesItself`, and the cost count
asks any module that :class:`CountsOwnCost` for what its hooks cannot see and any layer that
:class:`HoldsNeuronState` for its state's memory accesses. The model contract test
(``tests/test_model_contract.py``) checks every declared ability of every registered model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

import torch


class EmitsSpikes(ABC):
    """A spiking model: its output spikes (for snnTorch's rate loss) and its spike rates."""

    @abstractmethod
    def forward_with_spikes(self, x: torch.Tensor, rates: Optional[list] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T, B, *step_shape)`` -> logits ``(B, K)`` and output spikes ``(T, B, K)`` (0/1);
        ``rates``, when given, receives each spiking layer's spikes per neuron per step."""

    def spike_fed(self, input_spikes: bool) -> list[torch.nn.Module]:
        """The conv and linear modules whose inputs are spikes, so that they add a weight per spike
        (an accumulate) instead of multiplying every input: the cost count charges exactly these
        accumulates, never a layer whose input merely happens to be 0/1. The first synaptic layer's
        inputs are spikes only when the encoder emits them (``input_spikes``). Default: none."""
        return []

    def spike_rates(self, x: torch.Tensor) -> list[float]:
        """Spikes per neuron per step of each spiking layer on the inputs ``x`` ``(T, B, *step_shape)``."""
        rates: list = []
        with torch.no_grad():
            self.forward_with_spikes(x, rates)
        return rates


class DescribesItself(ABC):
    """A model with more to record than its parameters: which kernel path each layer takes (the
    ``kernels`` list of :meth:`Decision.describe` entries), its wiring, its synapses."""

    @abstractmethod
    def describe(self) -> dict:
        """JSON-ready facts for the run record's ``model`` section."""


class CountsOwnCost(ABC):
    """A module whose operations the cost count's hooks (conv, linear and torch recurrent layers)
    cannot see, e.g. an ncps cell computing with raw masked parameters."""

    @abstractmethod
    def own_cost(self, inputs: torch.Tensor) -> dict:
        """Operations of one call on ``inputs`` (the module's own input) for the whole batch:
        ``{"layer": name, "dense_macs": n, "macs": n, "memory_accesses": n}`` (``acs`` too for
        spike-driven ones)."""


class HoldsNeuronState(ABC):
    """A layer of stateful neurons (a spiking layer): what it reads and writes per neuron and time
    step, for the memory-access count of the energy estimate (:mod:`neurocomp.training.cost`)."""

    @property
    @abstractmethod
    def state_accesses(self) -> int:
        """32-bit memory accesses per neuron per time step: state reads and writes, the spike write."""
