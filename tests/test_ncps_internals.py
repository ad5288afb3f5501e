"""ncps' private attributes that the kernels and the cost count read (neurocomp/kernels/ncps_internals.py)
still exist with the meaning we read them with. A failure here means an ncps release renamed them:
update ncps_internals.py and the pin in pyproject.toml together."""

import torch
from ncps.torch import CfC, LTC
from ncps.wirings import AutoNCP

from neurocomp.kernels import ncps_internals as ncps


def test_ltc_cell_internals():
    cell = LTC(5, AutoNCP(8, 2, seed=1), ode_unfolds=4, epsilon=1e-7).rnn_cell
    params = ncps.ltc_parameters(cell)
    for name in ("sensory_w", "sensory_mu", "sensory_sigma", "sensory_erev", "sensory_sparsity_mask", "w", "mu",
                 "sigma", "erev", "sparsity_mask", "cm", "gleak", "vleak", "output_w", "output_b"):
        assert isinstance(params[name], torch.Tensor), f"ncps LTCCell._params lost {name!r}"
    assert params["sparsity_mask"].shape == (8, 8) and params["sensory_sparsity_mask"].shape == (5, 8)
    assert ncps.ltc_unfolds(cell) == 4
    assert ncps.ltc_epsilon(cell) == 1e-7
    assert ncps.ltc_output_mapping(cell) == "affine"
    assert ncps.ltc_map_inputs(cell, torch.zeros(3, 5)).shape == (3, 5)


def test_wired_cfc_cell_internals():
    cell = CfC(5, AutoNCP(8, 2, seed=1), mode="no_gate").rnn_cell
    layers = ncps.cfc_layers(cell)
    assert len(layers) == 3  # inter, command, motor
    for layer in layers:
        assert layer.mode == "no_gate"
        for name in ("ff1", "ff2", "time_a", "time_b"):
            assert isinstance(getattr(layer, name), torch.nn.Linear), f"ncps CfCCell lost {name!r}"
        assert isinstance(layer.sparsity_mask, torch.Tensor)
