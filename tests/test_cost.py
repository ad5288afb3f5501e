"""Cost per inference, checked against counts done by hand on small models."""

import pytest
import torch

from neurocomp.training.cost import PICOJOULES, inference_cost
from neurocomp.data.encoders import rate, rows, static
from neurocomp.models import build_model


def test_mlp_on_real_inputs_counts_every_weight_once():
    encoder = static(sample_shape=(1, 28, 28))
    model = build_model("mlp", encoder=encoder, num_outputs=2, hidden=(16,))
    cost = inference_cost(model, encoder(torch.rand(4, 1, 28, 28)))
    assert cost["dense_macs"] == cost["macs"] == 784 * 16 + 16 * 2
    assert cost["acs"] == 0
    assert cost["energy_pj"] == pytest.approx(cost["macs"] * PICOJOULES["mac"])


def test_spiking_inputs_cost_one_accumulate_per_spike_and_target():
    encoder = rate(sample_shape=(1, 28, 28), steps=3)
    model = build_model("snn", encoder=encoder, num_outputs=2, channels=(), hidden=(10,))
    spikes = encoder(torch.rand(5, 1, 28, 28), torch.Generator().manual_seed(0))
    cost = inference_cost(model, spikes, input_spikes=True)
    first_layer = spikes.sum().item() / 5 * 10  # each input spike reaches 10 hidden neurons
    assert cost["layers"][0]["acs"] == pytest.approx(first_layer)
    assert cost["dense_macs"] == 3 * (784 * 10 + 10 * 2)
    assert cost["macs"] == 0 and cost["acs"] <= cost["dense_macs"]


def test_conv_accumulates_count_the_targets_of_each_spike():
    encoder = rate(sample_shape=(1, 6, 6), steps=1)
    model = build_model("snn", encoder=encoder, num_outputs=2, channels=(2,), kernels=(3,), pools=(1,))
    x = torch.zeros(1, 1, 1, 6, 6)
    x[0, 0, 0, 0, 0] = 1  # a corner spike reaches one output position per output channel
    x[0, 0, 0, 3, 3] = 1  # an inner spike reaches all 3 x 3 positions around it
    assert inference_cost(model, x, input_spikes=True)["layers"][0]["acs"] == 2 * (1 + 9)


def test_a_3d_conv_multiplies_each_output_by_its_cubic_kernel_and_a_3d_snn_accumulates_per_spike():
    encoder = static(sample_shape=(1, 5, 5, 5))
    model = build_model("cnn3d", encoder=encoder, num_outputs=2, channels=(2,), pools=(1,), hidden=())
    cost = inference_cost(model, encoder(torch.rand(1, 1, 5, 5, 5)))
    assert cost["layers"][0]["macs"] == 2 * 3**3 * 27  # 2 maps of 3^3 outputs, 27 weights each
    spikes = torch.zeros(1, 1, 1, 5, 5, 5)
    spikes[0, 0, 0, 0, 0, 0] = 1  # a corner spike reaches one output position per map
    spikes[0, 0, 0, 2, 2, 2] = 1  # the centre spike reaches all 3^3 output positions
    snn = build_model("snn3d", encoder=rate(sample_shape=(1, 5, 5, 5), steps=1), num_outputs=2, channels=(2,), pools=(1,))
    assert inference_cost(snn, spikes, input_spikes=True)["layers"][0]["acs"] == 2 * (1 + 27)


def test_every_layer_of_the_study_snn_is_counted():
    # The fused blocks and the FC layer reading their spikes in place compute without module calls;
    # the count runs the library path, where every layer is a module the hooks see.
    encoder = rate(sample_shape=(1, 28, 28), steps=2)
    model = build_model("snn", encoder=encoder, num_outputs=2)
    cost = inference_cost(model, encoder(torch.rand(3, 1, 28, 28), torch.Generator().manual_seed(0)), input_spikes=True)
    assert [layer["layer"] for layer in cost["layers"]] == ["Conv2d", "LeakyLayer", "Conv2d", "LeakyLayer", "Linear",
                                                            "LeakyLayer"]
    assert cost["dense_macs"] == 2 * (24 * 24 * 12 * 25 + 10 * 10 * 32 * 12 * 9 + 800 * 2)
    # Each LIF layer: 3 accesses per neuron and step, after pooling (12 x 12 x 12, 32 x 5 x 5, 2 outputs).
    states = [layer["memory_accesses"] for layer in cost["layers"] if layer["layer"] == "LeakyLayer"]
    assert states == [3 * 2 * 12 * 12 * 12, 3 * 2 * 32 * 5 * 5, 3 * 2 * 2]


def test_memory_accesses_by_hand_for_an_mlp():
    # Every MAC reads a weight and an input; every output is written once.
    encoder = static(sample_shape=(1, 28, 28))
    model = build_model("mlp", encoder=encoder, num_outputs=2, hidden=(16,))
    cost = inference_cost(model, encoder(torch.rand(4, 1, 28, 28)))
    assert cost["memory_accesses"] == 2 * (784 * 16 + 16 * 2) + (16 + 2)
    assert cost["energy_with_memory_pj"] == pytest.approx(cost["energy_pj"] + cost["memory_accesses"] * PICOJOULES["access"])


def test_memory_accesses_by_hand_for_a_spiking_network():
    # Rate-coded input spikes reach 10 hidden LIF neurons, whose spikes reach 2 output neurons: both
    # layers accumulate. Every accumulate reads its weight and its spike, every output is written
    # once per step, and every LIF neuron reads and writes its membrane and writes its spike per step.
    encoder = rate(sample_shape=(1, 28, 28), steps=3)
    model = build_model("snn", encoder=encoder, num_outputs=2, channels=(), hidden=(10,))
    spikes = encoder(torch.rand(5, 1, 28, 28), torch.Generator().manual_seed(0))
    rates: list = []
    model.forward_with_spikes(spikes, rates)
    hidden_spikes = rates[0] * 3 * 5 * 10
    cost = inference_cost(model, spikes, input_spikes=True)
    assert cost["acs"] == pytest.approx((spikes.sum().item() * 10 + hidden_spikes * 2) / 5)
    assert cost["macs"] == 0
    assert cost["memory_accesses"] == pytest.approx(2 * cost["acs"] + 3 * (10 + 2) + 3 * 3 * (10 + 2))
    assert cost["energy_pj"] == pytest.approx(cost["acs"] * PICOJOULES["ac"])


def test_a_direct_coded_snn_multiplies_in_its_first_layer_and_accumulates_after():
    encoder = static(sample_shape=(1, 28, 28))
    model = build_model("snn", encoder=encoder, num_outputs=2, channels=(), hidden=(10,))
    cost = inference_cost(model, encoder(torch.rand(5, 1, 28, 28)))
    assert cost["macs"] == 784 * 10 and cost["layers"][0]["macs"] == 784 * 10
    assert "acs" in cost["layers"][2] and cost["acs"] <= 10 * 2


def test_a_dead_relu_layer_still_multiplies_every_input():
    # The first layer's outputs are all negative, so ReLU gives zeros: 0/1 inputs, but no spikes.
    encoder = static(sample_shape=(1, 28, 28))
    model = build_model("mlp", encoder=encoder, num_outputs=2, hidden=(16,))
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.weight.zero_()
        first.bias.fill_(-1.0)
    cost = inference_cost(model, encoder(torch.rand(4, 1, 28, 28)))
    assert cost["macs"] == cost["dense_macs"] == 784 * 16 + 16 * 2 and cost["acs"] == 0
    assert cost["memory_accesses"] == 2 * (784 * 16 + 16 * 2) + (16 + 2)
    assert cost["energy_pj"] == pytest.approx((784 * 16 + 16 * 2) * PICOJOULES["mac"])


def test_lstm_gates_times_inputs_and_state():
    encoder = rows(sample_shape=(1, 28, 28))
    model = build_model("lstm", encoder=encoder, num_outputs=2, hidden_size=8, readout="last")
    cost = inference_cost(model, encoder(torch.rand(2, 1, 28, 28)))
    assert cost["dense_macs"] == 28 * 4 * (28 + 8) * 8 + 8 * 2
    # Weight and input reads per MAC, h and c written at every step, the head's 2 outputs written.
    assert cost["memory_accesses"] == 2 * cost["dense_macs"] + 2 * 28 * 8 + 2


def test_ltc_counts_kept_synapses_times_unfolds():
    encoder = rows(sample_shape=(1, 28, 28))
    model = build_model("ltc", encoder=encoder, num_outputs=2, ode_unfolds=6, readout="last")  # no head: the core alone
    cell = model.core.cell.rnn_cell
    kept = int((cell._params["sensory_sparsity_mask"] != 0).sum()) + 6 * int((cell._params["sparsity_mask"] != 0).sum())
    assert inference_cost(model, encoder(torch.rand(2, 1, 28, 28)))["macs"] == 28 * kept
