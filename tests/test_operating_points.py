"""Operating points: a threshold chosen on validation by a rule (Youden, a sensitivity or specificity
to keep, a number) applied to test, and sensitivity at a fixed specificity, on hand-built scores."""

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.training.operating_points import (choose_threshold, operating_points, parse_rule, sensitivity_at_specificity,
                                       youden_threshold)
from neurocomp.runs.record import load_runs

OUTCOMES = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
SCORES = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])


def test_youden_threshold_by_hand():
    # J at 0.9: 1/3; at 0.7: 2/3 - 0 = 2/3; at 0.6: 2/3 - 1/3; at 0.4: 1 - 1/3 = 2/3; ties -> the highest
    assert youden_threshold(OUTCOMES, SCORES) == pytest.approx(0.7)


def test_sensitivity_at_specificity_by_hand():
    # 90% specificity of 3 negatives allows no false positive: the best is threshold 0.7, 2 of 3 found
    assert sensitivity_at_specificity(OUTCOMES, SCORES, 0.90) == pytest.approx(2 / 3)
    assert sensitivity_at_specificity(OUTCOMES, SCORES, 0.60) == pytest.approx(1.0)  # one false positive allowed


@pytest.mark.parametrize("rule, threshold", [
    ("youden", 0.7),
    ("sensitivity@0.9", 0.4),  # 3 of 3 positives needs 0.4 (sensitivity 2/3 at 0.7 is too little)
    ("sensitivity@0.6", 0.7),  # 2 of 3 is enough: the highest such threshold, so one false positive fewer
    ("specificity@0.9", 0.7),  # no false positive allowed: the lowest threshold keeping that is 0.7
    ("specificity@0.6", 0.4),  # one false positive (0.6) allowed: down to 0.4, every positive found
    (0.3, 0.3),
])
def test_each_rule_picks_its_threshold_by_hand(rule, threshold):
    assert choose_threshold(rule, OUTCOMES, SCORES) == pytest.approx(threshold)


@pytest.mark.parametrize("rule", ["yuden", "sensitivity@", "sensitivity@1.0", "specificity@0", "recall@0.9", 1.5, -0.1])
def test_unknown_rules_are_refused(rule):
    with pytest.raises(ValueError):
        parse_rule(rule)


def test_a_bad_threshold_rule_is_one_line_and_exit_2(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--set", "eval.threshold=sensitivity@2"]) == 2
    err = capsys.readouterr().err
    assert "eval.threshold must be one of: youden, sensitivity@<level>" in err and err.count("\n") == 1


def test_a_model_below_one_half_still_has_an_operating_point():
    # Every probability is under 0.5 (the 0.5 rule calls all negative), yet the scores rank perfectly
    # on validation: the validation-chosen threshold finds the positives on test.
    labels = np.array([0] * 8 + [1] * 4)
    scores = np.where(labels == 1, 0.35, 0.1) + np.linspace(0, 0.05, 12)
    probabilities = np.stack([1 - scores, scores], 1)[None]  # one draw
    points = operating_points((labels, probabilities), (labels, probabilities), positive=1, resamples=200)
    chosen = points["operating_point"]
    assert chosen["rule"] == "youden" and 0.15 < chosen["threshold"] < 0.5
    assert chosen["sensitivity"] == 1.0 and chosen["specificity"] == 1.0
    spec90 = points["sensitivity_at_specificity"]["0.90"]
    assert spec90["value"] == 1.0 and spec90["ci95"][0] <= spec90["value"] <= spec90["ci95"][1]


def test_binary_runs_record_them(npz_2d, tmp_path, capsys):
    args = ["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--epochs", "1", "--quiet"]
    assert main([*args, "--set", "eval.threshold=specificity@0.95"]) == 0
    (run,) = load_runs(tmp_path)
    chosen = run.metrics["test"]["operating_point"]
    assert chosen["rule"] == "specificity@0.95" and 0 <= chosen["threshold"] <= 1
    assert {"sensitivity", "specificity", "f1"} <= set(chosen)
    assert run.value("test.operating_point.sensitivity") is not None
    assert run.value("test.sensitivity_at_specificity.0.95.value") is None  # "0.95" is one key, not a path
    assert set(run.metrics["test"]["sensitivity_at_specificity"]) == {"0.90", "0.95"}
