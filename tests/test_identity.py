"""A run id names what was trained: adding a key with a behaviour-preserving default moves no id,
and the ids of the records committed under results/ are the ids their configs give today."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from neurocomp.runs import identity
from neurocomp.core.config import TrainConfig, resolve
from neurocomp.runs.identity import asked_config, canonical, completed_config, run_id
from neurocomp.core.registry import MODELS, ModelInfo, Registry

RESULTS = Path(__file__).resolve().parents[1] / "results"
CONFIGS = [
    {"dataset": {"name": "breast"}, "model": "mlp"},
    {"dataset": {"name": "pneumonia"}, "model": {"name": "snn", "beta": 0.9}, "train": {"epochs": 3}},
    {"dataset": {"name": "breast"}, "model": "ltc", "encoder": "rows", "params": "10k", "train": {"class_weight": "none"}},
]


def ids(configs: list[dict]) -> list[str]:
    return [run_id(resolve(raw).to_dict()) for raw in configs]


def test_runtime_keys_and_keys_at_their_neutral_value_are_not_in_the_id():
    config = resolve({"dataset": {"name": "breast"}, "model": "mlp", "train": {"class_weight": "none"}}).to_dict()
    form = canonical(config)
    assert form["model"] == {"name": "mlp"} and form["train"] == {"seed": 0}
    assert "device" not in json.dumps(form) and "out" not in form
    faster = {**config, "train": {**config["train"], "device": "cpu", "threads": 1}, "out": "elsewhere"}
    assert run_id(faster) == run_id(config)


def test_a_key_away_from_its_neutral_value_moves_the_id():
    base, weighted = ids([{"model": "mlp", "train": {"class_weight": "none"}}, {"model": "mlp"}])
    assert base != weighted  # class_weight was added as none; its default is balanced now
    assert ids([{"model": {"name": "mlp", "hidden": [32, 8]}}]) != ids([{"model": "mlp"}])


def test_a_record_without_a_key_has_the_id_of_the_key_at_its_neutral_value():
    config = resolve({"dataset": {"name": "breast"}, "model": "mlp", "train": {"class_weight": "none"}}).to_dict()
    older = {**config, "train": {k: v for k, v in config["train"].items() if k not in ("class_weight", "sampler")}}
    assert run_id(older) == run_id(config)
    assert completed_config(older)["train"]["class_weight"] == "none" and run_id(completed_config(older)) == run_id(config)


def test_adding_a_train_key_with_a_behaviour_preserving_default_moves_no_id(monkeypatch):
    before = ids(CONFIGS)
    extended = dataclasses.make_dataclass("TrainConfig", [("label_smoothing", float, dataclasses.field(default=0.0))],
                                          bases=(TrainConfig,))
    monkeypatch.setattr("neurocomp.core.config.TrainConfig", extended)
    monkeypatch.setitem(identity._SECTIONS, "train", extended)
    after = ids(CONFIGS)
    assert "label_smoothing" in resolve(CONFIGS[0]).to_dict()["train"]
    assert after == before
    assert ids([{**CONFIGS[0], "train": {"label_smoothing": 0.1}}]) != before[:1]


def test_adding_a_model_option_with_a_behaviour_preserving_default_moves_no_id(monkeypatch):
    raw = {"dataset": {"name": "breast"}, "model": {"name": "probe"}}

    def version_1(*, step_shape, steps, num_outputs, width: int = 8):
        """v1"""

    def version_2(*, step_shape, steps, num_outputs, width: int = 8, gate: float = 0.0):
        """v2: a new option whose default keeps v1's behaviour"""

    def registry_with(builder, **meta) -> Registry:
        registry = Registry("model", "neurocomp.models", ModelInfo, "neurocomp.models")
        registry._entries = {**MODELS._entries, "probe": type(MODELS.get("mlp"))("probe", builder, ModelInfo(**meta))}
        registry._plugins_loaded = True
        return registry

    for module in ("neurocomp.core.config", "neurocomp.runs.identity"):
        monkeypatch.setattr(f"{module}.MODELS", registry_with(version_1))
    old = resolve(raw).to_dict()
    for module in ("neurocomp.core.config", "neurocomp.runs.identity"):
        monkeypatch.setattr(f"{module}.MODELS", registry_with(version_2))
    new = resolve(raw).to_dict()
    assert "gate" in new["model"] and "gate" not in old["model"]
    assert run_id(new) == run_id(old)
    # A default that changes is declared at the registration, or the old runs' ids would move.
    changed = {**old, "model": {**old["model"], "gate": 0.5}}
    assert run_id(changed) != run_id(old)
    for module in ("neurocomp.core.config", "neurocomp.runs.identity"):
        monkeypatch.setattr(f"{module}.MODELS", registry_with(version_2, neutral={"gate": 0.5}))
    assert run_id(changed) == run_id(old)


def committed_records() -> list[Path]:
    # A sweep writing beside the tests stages each run in a hidden folder it renames when done.
    return sorted(path for path in (RESULTS / "runs").glob("*/run.json") if not path.parent.name.startswith("."))


@pytest.mark.skipif(not committed_records(), reason="no run records committed under results/runs")
def test_every_committed_record_keeps_its_id():
    """The guard for every later change: a default changed without declaring the old value as the
    option's neutral one, or a value whose meaning changed without a migration, fails here."""
    moved = []
    for path in committed_records():
        record = json.loads(path.read_text())
        if run_id(asked_config(record)) != record["run_id"] or record["run_id"] != path.parent.name:
            moved.append(path.parent.name)
    assert not moved, f"{len(moved)} committed run ids moved, e.g. {moved[:3]}: declare a neutral value or migrate"
