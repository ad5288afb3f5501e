import pytest

from neurocomp.core.config import TrainConfig, coerce, load_yaml, parse_assignment, resolve, set_dotted
from neurocomp.core.errors import UsageError


def test_defaults_resolve_with_the_models_usual_encoder():
    config = resolve({"model": {"name": "snn"}})
    assert config.encoder.name == "rate"
    assert config.model.options["beta"] == 0.6
    assert config.encoder.options["steps"] == 20


def test_options_are_coerced_to_the_builder_annotations():
    config = resolve({"model": {"name": "snn", "channels": [8, 16], "beta": 1}})
    assert config.model.options["channels"] == (8, 16)
    assert config.model.options["beta"] == 1.0 and isinstance(config.model.options["beta"], float)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"train": {"epoch": 3}}, "unknown key train.epoch"),
        ({"model": {"name": "snn", "betta": 0.5}}, "unknown key model.betta for model 'snn'"),
        ({"train": {"epochs": "many"}}, "train.epochs: expected int"),
        ({"train": {"epochs": True}}, "train.epochs: expected int"),
        ({"model": {"name": "snn", "reset": "sometimes"}}, "model.reset: 'sometimes' is not one of"),
        ({"train": {"optimizer": "lbfgs"}}, "train.optimizer"),
        ({"trian": {}}, "unknown key 'trian'"),
        ({"model": {"name": "transformer"}}, "unknown model 'transformer'; choose one of: .*snn"),
        ({"encoder": {"name": "morse"}}, "unknown encoder 'morse'; choose one of:"),
        ({"train": {"monitor": "test.auc"}}, "unknown quantity 'test.auc'; choose one of: val.loss"),
    ],
)
def test_bad_config_is_a_usage_error(raw, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(raw)


def test_yaml_sets_defaults_and_assignments_win(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("model: {name: snn, beta: 0.5}\ntrain: {epochs: 7, lr: 0.01}\n")
    raw = load_yaml(path)
    set_dotted(raw, *parse_assignment("train.epochs=5"))
    set_dotted(raw, *parse_assignment("model.beta=0.9"))
    config = resolve(raw)
    assert config.train.epochs == 5 and config.train.lr == 0.01
    assert config.model.options["beta"] == 0.9


def test_resolved_config_round_trips_through_its_dict_form():
    config = resolve({"model": {"name": "cnn"}, "encoder": {"name": "rows"}})
    assert resolve(config.to_dict()) == config


@pytest.mark.parametrize("text", ["train.epochs", "=3"])
def test_assignment_needs_key_and_value(text):
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_assignment(text)


def test_missing_and_malformed_config_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_yaml(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_yaml(bad)


def test_coerce_optional_and_tuple():
    from typing import Optional

    assert coerce(None, Optional[int], "k") is None
    assert coerce(3, Optional[int], "k") == 3
    assert coerce(5, tuple[int, ...], "k") == (5,)
    with pytest.raises(UsageError):
        coerce(["a"], tuple[int, ...], "k")


def test_exponent_floats_are_floats_although_yaml_reads_them_as_strings():
    config = resolve({"train": {"lr": "1e-3"}})
    assert config.train.lr == 1e-3
    with pytest.raises(UsageError):
        resolve({"train": {"lr": "fast"}})


@pytest.mark.parametrize("stopping, losses, stops_after", [
    # Keras' rule: 0.50 then four epochs within min_delta of it count, so patience 3 stops at epoch 4.
    ("no_improvement", [0.50, 0.5005, 0.4995, 0.5008, 0.5001, 0.49], 4),
    # The LTC study's: only epochs worse than best + min_delta count; 0.4995 is a new best (any gain).
    ("worse_than_best", [0.50, 0.5005, 0.4995, 0.5008, 0.5001, 0.52, 0.53, 0.54], 7),
])
def test_the_two_early_stopping_rules(stopping, losses, stops_after):
    from neurocomp.training.trainer import _patience_step

    config = TrainConfig(patience=3, min_delta=0.001, stopping=stopping)
    best, waiting = float("nan"), 0
    for epoch, loss in enumerate(losses, start=1):
        better, count = _patience_step(loss, best, True, config)
        best = loss if better else best
        waiting = 0 if count is None else waiting + count
        if waiting >= config.patience:
            break
    assert epoch == stops_after


def test_a_model_declared_learning_rate_is_the_default_and_an_explicit_one_wins():
    from neurocomp.core.registry import MODELS

    declared = MODELS.get("ltc").meta.lr
    assert declared is not None and resolve({"model": "ltc"}).train.lr == declared
    assert resolve({"model": "ltc", "train": {"lr": 1.0e-3}}).train.lr == 1.0e-3
    assert resolve({"model": "cnn"}).train.lr == 1.0e-3  # no declaration: the training default
