"""A stochastic encoder (rate coding) is scored over several draws of spike trains: the recorded
metric is their mean, their spread is recorded beside it, and every draw's predictions are saved so
the numbers can be recomputed."""

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.training.metrics import classification_metrics
from neurocomp.runs.record import load_runs
from neurocomp.analysis.table import build_table

FAST = ["--epochs", "1", "--batch-size", "32", "--quiet"]


def test_rate_coded_runs_are_scored_over_k_draws(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "snn", "--out", str(tmp_path), "--set", "eval.draws=3",
                 "--set", "encoder.steps=4", *FAST]) == 0
    (run,) = load_runs(tmp_path)
    labels, draws = run.predictions(draws=True)
    assert draws.shape == (3, 16, 2)
    assert np.array_equal(run.predictions()[1], draws[0])  # the first draw, as a single evaluation gives
    assert not np.array_equal(draws[0], draws[1])  # new spike trains each draw
    per_draw = [classification_metrics(labels, probs, run.dataset["positive"]) for probs in draws]
    for name in ("accuracy", "auc", "sensitivity"):
        values = [m[name] for m in per_draw]
        assert run.metrics["test"][name] == pytest.approx(np.mean(values))
        assert run.metrics["test"]["draws"]["std"][name] == pytest.approx(np.std(values, ddof=1), nan_ok=True)
    assert run.metrics["test"]["draws"]["n"] == 3
    headers, rows, _ = build_table([run], ("test.accuracy",))
    assert "(draws ± " in rows[0][headers.index("test.accuracy")]


def test_deterministic_encoders_are_scored_once(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--set", "eval.draws=5", *FAST]) == 0
    (run,) = load_runs(tmp_path)
    assert run.predictions(draws=True)[1].shape == (1, 16, 2)
    assert run.metrics["test"]["draws"]["n"] == 1
    headers, rows, _ = build_table([run], ("test.accuracy",))
    assert "draws" not in rows[0][headers.index("test.accuracy")]


def test_draws_must_be_positive(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--out", str(tmp_path), "--set", "eval.draws=0", *FAST]) == 2
    assert "eval.draws must be at least 1" in capsys.readouterr().err
