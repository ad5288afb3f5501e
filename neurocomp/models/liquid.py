"""Liquid time-constant networks from ncps: LTC and CfC cells on NCP, fully connected or random wirings.

The wiring is built with its seed, so the same config gives the same synapses on every run; the
record holds the wiring and its effective synapse count (the unmasked ones) next to the parameter
count, since ncps keeps dense weight matrices and masks them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Optional

import torch
from ncps import torch as ncps_torch
from ncps import wirings
from torch import nn

from .. import kernels
from ..kernels import ncps_internals as ncps
from ..core.abilities import CountsOwnCost, DescribesItself
from ..core.errors import UsageError
from ..core.registry import register_model
from .options import with_options
from .sequence import Backbone, sequence_model


@dataclass(frozen=True)
class Wiring:
    """Options of the NCP wiring; ``outputs`` (motor neurons) defaults to the number of logits."""

    wiring: Literal["autoncp", "ncp", "fully-connected", "random"] = "autoncp"
    units: int = 19  # autoncp, fully-connected, random: all neurons
    outputs: Optional[int] = None  # motor neurons; None: one per logit
    sparsity: float = 0.5  # autoncp, random
    wiring_seed: int = 22222
    inter: int = 12  # ncp: explicit layer sizes and fan-outs (defaults: the NCP paper)
    command: int = 6
    sensory_fanout: int = 6
    inter_fanout: int = 4
    recurrent_command: int = 6
    motor_fanin: int = 6

    def cell(self, cell_class: type, in_features: int, num_outputs: int, **options) -> tuple[nn.Module, wirings.Wiring]:
        """An ncps cell (LTC or CfC) on this wiring; UsageError when the sizes cannot work.

        The cell builds the wiring for ``in_features`` itself: building it twice would draw a second
        set of synapses on top of the first.
        """
        outputs = self.outputs or num_outputs
        if self.wiring in ("fully-connected", "random") and outputs > self.units:
            raise UsageError(f"cannot build the {self.wiring} wiring: {outputs} outputs exceed its {self.units} units")
        try:
            if self.wiring == "autoncp":
                wiring = wirings.AutoNCP(self.units, outputs, sparsity_level=self.sparsity, seed=self.wiring_seed)
            elif self.wiring == "ncp":
                wiring = wirings.NCP(self.inter, self.command, outputs, self.sensory_fanout, self.inter_fanout,
                                     self.recurrent_command, self.motor_fanin, seed=self.wiring_seed)
            elif self.wiring == "fully-connected":
                wiring = wirings.FullyConnected(self.units, outputs, erev_init_seed=self.wiring_seed)
            else:
                wiring = wirings.Random(self.units, outputs, sparsity_level=self.sparsity, random_seed=self.wiring_seed)
            return cell_class(in_features, wiring, batch_first=True, **options), wiring
        except ValueError as error:
            raise UsageError(f"cannot build the {self.wiring} wiring: {error}") from None


class NcpCore(nn.Module, DescribesItself, CountsOwnCost):
    """An ncps LTC or CfC on a time-major sequence: ``(T, B, F) -> (T, B, motor neurons)``.

    ncps is batch-first; the transposes live here so the rest of the suite stays time-major.
    """

    def __init__(self, cell: nn.Module, wiring: wirings.Wiring, options: Wiring):
        super().__init__()
        self.cell = cell
        self.wiring = wiring
        self.options = options

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = kernels.liquid_sequence(self.cell, x)
        if fused is not None:
            return fused
        outputs, _ = self.cell(x.transpose(0, 1))
        return outputs.transpose(0, 1)

    def own_cost(self, inputs: torch.Tensor) -> dict:
        """Synapse evaluations of one call on ``inputs`` ``(T, B, F)``, counted from the cell's masks
        (ncps computes them with raw masked parameters, which no hook sees). An LTC synapse (sigmoid,
        product, two sums) per ODE unfold, and a CfC masked weight of ff1 and ff2, each count as one
        MAC: a lower bound. The CfC's time gates are linear layers, counted by their hooks. Memory
        accesses as :mod:`neurocomp.training.cost` counts them, without reuse."""
        calls = inputs.shape[0] * inputs.shape[1]
        if isinstance(self.cell, ncps_torch.LTC):
            p = ncps.ltc_parameters(self.cell.rnn_cell)
            unfolds = ncps.ltc_unfolds(self.cell.rnn_cell)
            masks = [(p["sensory_sparsity_mask"], 1), (p["sparsity_mask"], unfolds)]
        else:
            masks = [(layer.sparsity_mask, 2) for layer in ncps.cfc_layers(self.cell.rnn_cell)]
        dense = sum(mask.numel() * times for mask, times in masks) * calls
        effective = sum(int((mask != 0).sum()) * times for mask, times in masks) * calls
        units = self.wiring.units
        if isinstance(self.cell, ncps_torch.LTC):
            # Per synapse evaluation: w, mu, sigma, erev and the presynaptic value read; per neuron and
            # unfold: cm, gleak, vleak and the state read, the state written.
            accesses = 5 * effective + 5 * units * unfolds * calls
        else:
            # Per masked ff1/ff2 weight: the weight and its input read; per neuron and step: the state
            # written (the time gates are linear layers, counted by their hooks).
            accesses = 2 * effective + units * calls
        return {"layer": type(self.cell).__name__, "dense_macs": dense, "macs": effective, "memory_accesses": accesses}

    def describe(self) -> dict:
        """The wiring and its synapse counts.

        ``effective`` counts the unmasked entries of the cell's sparsity masks: the synapses the
        cell computes with. For LTC that equals the wiring's synapses; ncps' wired CfC also keeps
        every recurrent synapse inside a layer, so its effective count exceeds the wiring's.
        """
        parameter = next(self.cell.parameters())
        masks = [p for name, p in self.cell.named_parameters() if name.endswith("sparsity_mask")]
        sensory = int((self.wiring.sensory_adjacency_matrix != 0).sum())
        internal = int((self.wiring.adjacency_matrix != 0).sum())
        return {
            "kernels": [kernels.plan_liquid(self.cell, parameter.device, parameter.dtype).describe(type(self.cell).__name__)],
            "wiring": {**asdict(self.options), "units": self.wiring.units, "outputs": self.wiring.output_dim,
                       "input_dim": self.wiring.input_dim},
            "synapses": {"wiring_sensory": sensory, "wiring_internal": internal,
                         "effective": int(sum((m != 0).sum() for m in masks)),
                         "dense": int(sum(m.numel() for m in masks))},
        }


# lr 1e-2: chosen on the validation splits of breast, pneumonia-balanced and retina over 1e-3, 3e-3
# and 1e-2, seeds 0-2 (configs/defaults/ltc-lr.yaml); at 1e-3 it predicted one class on BreastMNIST.
@register_model("ltc", default_encoder="rows", width="units", family="liquid", lr=1e-2,
                space={"ode_unfolds": {"low": 2, "high": 8}, "sparsity": {"low": 0.2, "high": 0.8}})
@with_options(Backbone, Wiring)
def ltc(*, step_shape: tuple[int, ...], steps: int, num_outputs: int, backbone: Backbone, wiring: Wiring,
        ode_unfolds: int = 6, input_mapping: Literal["affine", "linear", "none"] = "affine",
        output_mapping: Literal["affine", "linear", "none"] = "affine", mixed_memory: bool = False) -> nn.Module:
    """Liquid time-constant network (ncps LTC) on an NCP / fully connected / random wiring.

    ``input_mapping`` / ``output_mapping``: ncps' per-input and per-motor-neuron scale (linear) and
    shift (affine) around the cell; ``mixed_memory``: ncps' LSTM beside the cell (no native kernel:
    the library path runs it)."""

    def make_core(in_features: int):
        cell, built = wiring.cell(ncps_torch.LTC, in_features, num_outputs, ode_unfolds=ode_unfolds,
                                  input_mapping=input_mapping, output_mapping=output_mapping, mixed_memory=mixed_memory)
        return NcpCore(cell, built, wiring), built.output_dim

    return sequence_model(step_shape, steps, num_outputs, backbone, make_core)


@register_model("cfc", default_encoder="rows", width="units", family="liquid",
                space={"mode": ["default", "no_gate"], "sparsity": {"low": 0.2, "high": 0.8}})
@with_options(Backbone, Wiring)
def cfc(*, step_shape: tuple[int, ...], steps: int, num_outputs: int, backbone: Backbone, wiring: Wiring,
        mode: Literal["default", "pure", "no_gate"] = "default") -> nn.Module:
    """Closed-form continuous-time network (ncps CfC) on an NCP / fully connected / random wiring."""

    def make_core(in_features: int):
        cell, built = wiring.cell(ncps_torch.CfC, in_features, num_outputs, mode=mode)
        return NcpCore(cell, built, wiring), built.output_dim

    return sequence_model(step_shape, steps, num_outputs, backbone, make_core)
