"""Plug-in models: the decorator, entry points (a working and a broken outside package), duplicates."""

import json

import pytest

from neurocomp import MODELS
from neurocomp.cli import main
from neurocomp.core.errors import UsageError
from neurocomp.core.registry import ModelInfo, Registry


def test_entry_point_plugin_is_registered_next_to_the_built_ins():
    assert "toy-leaky" in MODELS.names() and "snn" in MODELS.names()
    assert MODELS.get("toy-leaky").summary.startswith("Leaky integrator")


def test_plugin_trains_for_one_epoch_through_the_cli(npz_2d, tmp_path, capsys):
    code = main(["run", str(npz_2d), "--model", "toy-leaky", "--encoder", "rows", "--set", "model.leak=0.8",
                 "--epochs", "1", "--out", str(tmp_path), "--quiet"])
    assert code == 0, capsys.readouterr().err
    record = json.loads(next(tmp_path.glob("runs/*/run.json")).read_text())
    assert record["status"] == "completed" and record["config"]["model"] == {"name": "toy-leaky", "backend": "auto", "leak": 0.8}


def test_broken_plugin_is_named_with_its_error_and_the_rest_stay_usable(npz_2d, tmp_path, capsys):
    assert "broken-model" in MODELS.broken
    assert "ModuleNotFoundError" in MODELS.broken["broken-model"]
    assert main(["run", str(npz_2d), "--model", "broken-model", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "plug-in 'broken-model'" in err and "failed to load" in err and err.count("\n") == 1
    assert main(["list"]) == 0
    assert "broken-model" in capsys.readouterr().out


def test_duplicate_registration_fails():
    registry = Registry("model", "neurocomp.tests-nothing", ModelInfo, "neurocomp.models")
    registry.register("same")(lambda: None)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("same")(lambda: None)


def test_a_misspelt_registration_key_fails():
    registry = Registry("model", "neurocomp.tests-nothing", ModelInfo, "neurocomp.models")
    with pytest.raises(TypeError, match="defualt_encoder"):
        registry.register("typo", defualt_encoder="rate")


def test_a_broken_plugin_named_like_a_built_in_does_not_hide_it(monkeypatch):
    monkeypatch.setitem(MODELS.broken, "cnn", "plug-in 'cnn' (elsewhere) failed to load")
    assert MODELS.get("cnn").meta.family == "convolutional"


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UsageError, match="unknown model 'nope'; choose one of: alif, cfc, cnn"):
        MODELS.get("nope")


def test_alif_is_an_adaptive_lif():
    import torch

    from neurocomp.models.alif import AdaptiveLayer

    constant = torch.full((30, 1, 1), 0.6)  # a constant drive that makes a plain LIF fire regularly
    plain, _ = AdaptiveLayer(beta=0.9, threshold=1.0, adaptation=0.0, rho=0.9, slope=25.0)(constant)
    adaptive, _ = AdaptiveLayer(beta=0.9, threshold=1.0, adaptation=0.5, rho=0.9, slope=25.0)(constant)
    assert plain.sum() > adaptive.sum() > 0  # the raised threshold slows firing


@pytest.mark.parametrize("registry", ["ENCODERS", "MODELS"])
def test_the_built_ins_listed_from_source_are_the_registered_ones(registry):
    """`neurocomp list` reads the built-ins' names and summaries from their source, without torch:
    they must be exactly what importing them registers."""
    from neurocomp.core import registry as module

    entries = getattr(module, registry)
    from_source = module._registered_in_source(entries.builtins)
    assert from_source == {name: entries.get(name).summary for name in from_source}
    assert set(from_source) == {name for name in entries.names() if entries.get(name).builder.__module__.startswith("neurocomp.")}
