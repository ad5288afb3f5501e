"""Liquid and recurrent backends: wirings, readouts, fair size, and the refusals."""

import json

import pytest
import torch

from neurocomp.cli import main
from neurocomp.data.encoders import rows
from neurocomp.core.errors import UsageError
from neurocomp.models import build_model
from neurocomp.core.sizing import fit_width, parse_count

ROWS = rows(sample_shape=(1, 28, 28))


def test_ncp_wiring_with_the_paper_defaults():
    model = build_model("ltc", encoder=ROWS, num_outputs=2, wiring="ncp", outputs=1)
    wiring = model.describe()["wiring"]
    assert wiring["units"] == 12 + 6 + 1 and wiring["outputs"] == 1
    assert model(ROWS(torch.rand(3, 1, 28, 28))).shape == (3, 2)  # 1 motor neuron -> Linear(1, 2)


@pytest.mark.parametrize("wiring", ["autoncp", "ncp", "fully-connected", "random"])
@pytest.mark.parametrize("model_name", ["ltc", "cfc"])
def test_every_wiring_builds_for_both_liquid_cells(model_name, wiring):
    model = build_model(model_name, encoder=ROWS, num_outputs=2, wiring=wiring, units=12)
    synapses = model.describe()["synapses"]
    assert 0 < synapses["effective"] <= synapses["dense"]


def test_the_wiring_seed_fixes_the_synapses():
    a, b, c = (build_model("ltc", encoder=ROWS, num_outputs=2, wiring_seed=s) for s in (1, 1, 2))
    mask = lambda m: m.core.cell.rnn_cell.sensory_sparsity_mask  # noqa: E731
    assert torch.equal(mask(a), mask(b)) and not torch.equal(mask(a), mask(c))


@pytest.mark.parametrize("readout, head", [("last", torch.nn.Identity), ("mean", torch.nn.Identity), ("flatten", torch.nn.Linear)])
def test_readouts(readout, head):
    model = build_model("cfc", encoder=ROWS, num_outputs=2, readout=readout)
    assert isinstance(model.head, head)
    assert model(ROWS(torch.rand(3, 1, 28, 28))).shape == (3, 2)


@pytest.mark.parametrize("mapping, parameters", [("affine", {"input_w", "input_b", "output_w", "output_b"}),
                                                 ("linear", {"input_w", "output_w"}), ("none", set())])
def test_the_ltc_mappings_are_ncps_own(mapping, parameters):
    model = build_model("ltc", encoder=ROWS, num_outputs=2, input_mapping=mapping, output_mapping=mapping)
    names = {name for name, _ in model.core.cell.rnn_cell.named_parameters()}
    assert names & {"input_w", "input_b", "output_w", "output_b"} == parameters


def test_mixed_memory_runs_on_the_library_path_and_says_so():
    model = build_model("ltc", encoder=ROWS, num_outputs=2, mixed_memory=True)
    assert model(ROWS(torch.rand(3, 1, 28, 28))).shape == (3, 2)
    assert model.describe()["kernels"][0]["path"] == "library"
    assert "mixed memory" in model.describe()["kernels"][0]["reason"]


def test_bidirectional_stacked_lstm():
    model = build_model("lstm", encoder=ROWS, num_outputs=3, hidden_size=8, layers=2, bidirectional=True, dropout=0.1,
                        readout="last")
    assert model.head.in_features == 16  # both directions' last hidden states
    assert model(ROWS(torch.rand(2, 1, 28, 28))).shape == (2, 3)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"units": 4}, "Output size must be less than the number of units-2"),
        ({"wiring": "ncp", "inter": 3}, "Sensory fanout parameter is 6 but there are only 3 inter neurons"),
        ({"wiring": "ncp", "motor_fanin": 60}, "Motor fanin parameter is 60"),
        ({"wiring": "fully-connected", "units": 3, "outputs": 5}, "5 outputs exceed its 3 units"),
        ({"sequence": "rows"}, "needs the 'static' encoder"),
    ],
)
def test_impossible_models_are_refused(options, message):
    with pytest.raises(UsageError, match=message):
        build_model("ltc", encoder=ROWS, num_outputs=2, **options)


def test_lstm_dropout_needs_stacked_layers():
    with pytest.raises(UsageError, match="model.layers to 2"):
        build_model("lstm", encoder=ROWS, num_outputs=2, dropout=0.2)


def test_batch_independence_check_catches_a_batch_first_mixup():
    """The contract test's check fails for the MedMNIST3D study's bug: nn.LSTM fed (B, T, F)."""
    lstm = torch.nn.LSTM(28, 8)  # expects (T, B, F)
    x = torch.rand(5, 28, 28)  # (B, T, F), fed as if time-major
    changed = x.clone()
    changed[:-1] = torch.rand(4, 28, 28)  # all samples but the last
    assert not torch.allclose(lstm(x)[0][-1], lstm(changed)[0][-1])  # yet the last one's output moves


@pytest.mark.parametrize("text, count", [("20k", 20_000), ("1.5M", 1_500_000), ("300", 300), (512, 512)])
def test_parse_count(text, count):
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["many", "-5", "0"])
def test_parse_count_refuses_nonsense(text):
    with pytest.raises(UsageError, match="--params"):
        parse_count(text)


def test_fit_width_finds_the_closest_width():
    assert fit_width(lambda w: 10 * w * w, 4_000, "units") == (20, 4_000)
    assert fit_width(lambda w: None if w < 5 else 100 * w, 1_010, "units") == (10, 1_000)
    with pytest.raises(UsageError, match="within 5%: units=3 gives 9,000, units=4 gives 16,000"):
        fit_width(lambda w: 1_000 * w * w, 12_000, "units")


def test_a_wider_tolerance_accepts_the_closest_width_and_never_changes_it():
    assert fit_width(lambda w: 1_000 * w * w, 12_000, "units", tolerance=0.3) == (3, 9_000)
    with pytest.raises(UsageError, match="within 20%"):
        fit_width(lambda w: 1_000 * w * w, 12_000, "units", tolerance=0.2)
    assert fit_width(lambda w: 10 * w * w, 4_000, "units", tolerance=0.5) == (20, 4_000)


def test_params_tolerance_is_checked_and_not_part_of_the_run_id():
    from neurocomp.core.config import resolve
    from neurocomp.runs.identity import run_id

    raw = {"dataset": {"name": "breast"}, "model": {"name": "lstm"}, "params": "10k"}
    assert run_id(resolve({**raw, "params_tolerance": 0.2}).to_dict()) == run_id(resolve(raw).to_dict())
    with pytest.raises(UsageError, match="params_tolerance must be a fraction"):
        resolve({**raw, "params_tolerance": 5})


@pytest.mark.parametrize("model_name", ["ltc", "lstm", "cnn", "snn"])
def test_params_budget_lands_within_5_percent(model_name, npz_2d, tmp_path, capsys):
    encoder = "rows" if model_name in ("ltc", "lstm") else "static"
    code = main(["run", str(npz_2d), "--model", model_name, "--encoder", encoder, "--params", "20k",
                 "--epochs", "1", "--out", str(tmp_path), "--quiet"])
    assert code == 0, capsys.readouterr().err
    record = json.loads(next(tmp_path.glob("runs/*/run.json")).read_text())
    assert abs(record["params"]["trainable"] - 20_000) <= 1_000
    assert record["params"]["target"] == 20_000
    parts = record["params"]["parts"]  # how the budget was split: front end, core, head
    assert sum(parts.values()) == record["params"]["trainable"] and set(parts) <= {"features", "core", "head", "layers", "neurons"}


def test_unreachable_budget_is_refused(npz_2d, tmp_path, capsys):
    code = main(["run", str(npz_2d), "--model", "ltc", "--params", "50", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    assert "--params 50 is under this model's floor" in capsys.readouterr().err


def test_a_budget_between_two_widths_runs_with_a_wider_tolerance(npz_2d, tmp_path, capsys):
    # hidden (8, 8) has 6,370 parameters and (9, 8) 7,163: 6,766 is 5.9% from either
    arguments = ["run", str(npz_2d), "--model", "mlp", "--params", "6766", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    assert main(arguments) == 2
    assert "within 5%" in capsys.readouterr().err
    assert main([*arguments, "--set", "params_tolerance=0.5"]) == 0, capsys.readouterr().err
    record = json.loads(next(tmp_path.glob("runs/*/run.json")).read_text())
    assert record["config"]["params_tolerance"] == 0.5 and record["params"]["target"] == 6_766


def test_a_budget_never_narrows_a_layer_under_the_models_floor():
    from neurocomp.core.config import resolve
    from neurocomp.training.assemble import build

    config = resolve({"dataset": {"name": "breast"}, "model": "mlp", "params": "10k"})
    build(config, (1, 28, 28), 2)
    first, second = config.model.options["hidden"]
    assert second >= 8 and first >= 8  # (1024, 128) scaled to 10k once left (12, 2): one class on 2 of 3 seeds


def test_a_budget_under_the_floor_is_one_line_naming_the_smallest_budget_reached(npz_2d, tmp_path, capsys):
    code = main(["run", str(npz_2d), "--model", "lstm", "--params", "300", "--epochs", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "under this model's floor" in err and "model.hidden_size=8" in err and "nearest budget it reaches is --params" in err


def test_scaled_keeps_the_ratio_above_the_floor():
    from neurocomp.core.sizing import scaled

    assert scaled((1024, 128), 16, 8) == (16, 8) and scaled((1024, 128), 160, 8) == (160, 20)
    assert scaled((12, 32), 6) == (6, 16) and scaled(19, 40, 8) == 40
