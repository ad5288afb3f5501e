"""Operating points: a threshold chosen on validation (Youden) applied to test, and sensitivity at a
fixed specificity, on hand-built scores."""

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.operating_points import operating_points, sensitivity_at_specificity, youden_threshold
from neurocomp.record import load_runs

OUTCOMES = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
SCORES = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])


def test_youden_threshold_by_hand():
    # J at 0.9: 1/3; at 0.7: 2/3 - 0 = 2/3; at 0.6: 2/3 - 1/3; at 0.4: 1 - 1/3 = 2/3; ties -> the highest
    assert youden_threshold(OUTCOMES, SCORES) == pytest.approx(0.7)


def test_sensitivity_at_specificity_by_hand():
    # 90% specificity of 3 negatives allows no false positive: the best is threshold 0.7, 2 of 3 found
    assert sensitivity_at_specificity(OUTCOMES, SCORES, 0.90) == pytest.approx(2 / 3)
    assert sensitivity_at_specificity(OUTCOMES, SCORES, 0.60) == pytest.approx(1.0)  # one false positive allowed


def test_a_model_below_one_half_still_has_an_operating_point():
    # Every probability is under 0.5 (the 0.5 rule calls all negative), yet the scores rank perfectly
    # on validation: the validation-chosen threshold finds the positives on test.
    labels = np.array([0] * 8 + [1] * 4)
    scores = np.where(labels == 1, 0.35, 0.1) + np.linspace(0, 0.05, 12)
    probabilities = np.stack([1 - scores, scores], 1)[None]  # one draw
    points = operating_points((labels, probabilities), (labels, probabilities), positive=1, resamples=200)
    assert 0.15 < points["youden"]["threshold"] < 0.5
    assert points["youden"]["sensitivity"] == 1.0 and points["youden"]["specificity"] == 1.0
    spec90 = points["sensitivity_at_specificity"]["0.90"]
    assert spec90["value"] == 1.0 and spec90["ci95"][0] <= spec90["value"] <= spec90["ci95"][1]


def test_binary_runs_record_them(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--epochs", "1", "--quiet"]) == 0
    (run,) = load_runs(tmp_path)
    youden = run.metrics["test"]["youden"]
    assert 0 <= youden["threshold"] <= 1 and {"sensitivity", "specificity", "f1"} <= set(youden)
    assert run.value("test.youden.sensitivity") is not None
    assert run.value("test.sensitivity_at_specificity.0.95.value") is None  # "0.95" is one key, not a path
    assert set(run.metrics["test"]["sensitivity_at_specificity"]) == {"0.90", "0.95"}
