"""What one inference costs: dense multiply-accumulates, the operations actually triggered (spike
inputs make accumulates, and only for the spikes that occurred), the memory accesses they need, and
two energy estimates: arithmetic only, and arithmetic plus memory.

Memory decides whether a spiking network saves energy (Lemaire et al. 2022, "An analytical
estimation of spiking neural networks energy efficiency"; Yan et al. 2024, arXiv 2409.08290): its
accumulates are cheap, but every neuron's state is read and written at every step. Counted, with
no reuse of any value (an upper bound for both paradigms), and one accumulator model for both
kinds of operation (ours to choose, stated so the comparison is even): every operation reads its
weight and its input, the running sum of each output stays in a register, and each output is
written once. A multiply-accumulate happens for every weight; an accumulate only for an input
spike, times its fan-out. A spiking layer (:class:`HoldsNeuronState`) reads and writes each
neuron's state and writes its spike at every step; a recurrent layer writes its state at every step.

A layer is event-driven because the model declares it so (:meth:`EmitsSpikes.spike_fed`: the
layers fed by its spiking layers, and its first layer when the encoder emits spikes), never
because its inputs happen to be 0 or 1: a dead ReLU layer of an ANN still multiplies every input.

Counted on real inputs (a test batch, all time steps), divided by the batch size, so spiking
models are charged for the spikes they fired. Conv and linear layers are counted by hooks, recurrent
torch layers from their structure, and a module that declares :class:`CountsOwnCost` (the ncps
cores, whose masked synapses are raw parameters no hook sees) counts itself.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from .. import kernels
from ..core.abilities import CountsOwnCost, EmitsSpikes, HoldsNeuronState

# 45 nm CMOS, 32-bit float (Horowitz, ISSCC 2014): what neuromorphic papers use for estimates. An
# access is a 32-bit read or write of an 8 KB SRAM (half of the 10 pJ Horowitz gives for 64 bits).
PICOJOULES = {"mac": 4.6, "ac": 0.9, "access": 5.0}
KEYS = ("dense_macs", "macs", "acs", "memory_accesses")
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_CONVS = {nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}  # a conv layer and the function that counts its triggered synapses


def inference_cost(model: nn.Module, inputs: torch.Tensor, *, input_spikes: bool = False) -> dict:
    """Per-sample costs of ``model`` on ``inputs`` ``(T, B, *step_shape)``, spikes where
    ``input_spikes`` (the encoder's ``spikes``).

    Returns ``dense_macs`` (every weight used as if all inputs were non-zero), ``macs`` (real-valued
    inputs), ``acs`` (accumulates triggered by spikes: a spike times its fan-out),
    ``memory_accesses`` (see the module's docstring), per-layer counts, ``energy_pj`` (arithmetic
    only), ``energy_with_memory_pj`` and the per-operation energies they assume.
    """
    batch = inputs.shape[1]
    counts = defaultdict(float)
    layers = []
    spike_fed = {id(module) for module in model.spike_fed(input_spikes)} if isinstance(model, EmitsSpikes) else set()

    def linear_or_conv(module, args, output):
        x = args[0]
        if isinstance(module, tuple(_CONVS)):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            dense = output.numel() * per_output
            convolve = _CONVS[type(module)]
            triggered = lambda: convolve((x != 0).to(x.dtype), torch.ones_like(module.weight), None, module.stride,  # noqa: E731
                                         module.padding, module.dilation, module.groups).sum().item()
        else:
            dense = output.numel() * module.in_features
            triggered = lambda: (x != 0).sum().item() * module.out_features  # noqa: E731
        counts["dense_macs"] += dense
        if id(module) in spike_fed:  # each spike adds a weight to every target, no multiplication
            operations = triggered()
            accesses = 2 * operations + output.numel()  # weight and spike reads, one write per output
            counts["acs"] += operations
            layers.append({"layer": type(module).__name__, "dense_macs": dense / batch, "acs": operations / batch,
                           "memory_accesses": accesses / batch})
        else:
            accesses = 2 * dense + output.numel()  # weight and input reads, one write per output
            counts["macs"] += dense
            layers.append({"layer": type(module).__name__, "dense_macs": dense / batch, "macs": dense / batch,
                           "memory_accesses": accesses / batch})
        counts["memory_accesses"] += accesses

    def recurrent(module, args, output):
        steps, rows = args[0].shape[:2]
        total = 0
        for layer in range(module.num_layers):
            in_features = module.input_size if layer == 0 else module.hidden_size * (2 if module.bidirectional else 1)
            total += _GATES[module.mode.split("_")[0]] * (in_features + module.hidden_size) * module.hidden_size
        directions = 2 if module.bidirectional else 1
        total *= directions * steps * rows
        states = (2 if module.mode == "LSTM" else 1) * module.num_layers * directions * module.hidden_size * steps * rows
        accesses = 2 * total + states  # weight and input reads; hidden (and cell) state writes
        counts["dense_macs"] += total
        counts["macs"] += total
        counts["memory_accesses"] += accesses
        layers.append({"layer": type(module).__name__, "dense_macs": total / batch, "macs": total / batch,
                       "memory_accesses": accesses / batch})

    def neuron_state(module, args, output):
        accesses = module.state_accesses * args[0].numel()  # current (T, B, ...): one per neuron and step
        counts["memory_accesses"] += accesses
        layers.append({"layer": type(module).__name__, "memory_accesses": accesses / batch})

    def own(module, args, output):
        counted = module.own_cost(args[0])
        for key in KEYS:
            counts[key] += counted.get(key, 0)
        layers.append({**counted, **{key: counted[key] / batch for key in KEYS if key in counted}})

    hooks = []
    for module in model.modules():
        if isinstance(module, CountsOwnCost):
            hooks.append(module.register_forward_hook(own))
        elif isinstance(module, (*_CONVS, nn.Linear)):
            hooks.append(module.register_forward_hook(linear_or_conv))
        elif isinstance(module, nn.RNNBase):
            hooks.append(module.register_forward_hook(recurrent))
        elif isinstance(module, HoldsNeuronState):
            hooks.append(module.register_forward_hook(neuron_state))
    try:
        # The library path (snnTorch, ncps) calls every layer as a module, so the hooks see them all;
        # the fused kernels compute the same values without those calls.
        with torch.no_grad(), kernels.backend("library"):
            model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    per_sample = {key: counts[key] / batch for key in KEYS}
    energy = per_sample["macs"] * PICOJOULES["mac"] + per_sample["acs"] * PICOJOULES["ac"]
    return {
        **per_sample,
        "energy_pj": energy,
        "energy_with_memory_pj": energy + per_sample["memory_accesses"] * PICOJOULES["access"],
        "energy_basis": "estimate: 45 nm, 4.6 pJ per 32-bit float MAC, 0.9 pJ per accumulate (Horowitz 2014); "
                        "with memory: 5 pJ per 32-bit access to an 8 KB SRAM (Horowitz 2014), every weight, input, "
                        "output and neuron-state access counted without reuse (an upper bound)",
        "layers": layers,
    }
