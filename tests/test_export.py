"""Exports: the ONNX model gives PyTorch's outputs; the MedMNIST-Evaluator CSVs score as the run did;
bad run folders exit 2."""

import json

import numpy as np
import pytest

from neurocomp.cli import main

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("model", ["cnn", "snn", "ltc", "lstm"])
def test_exported_model_matches_pytorch(model, npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", model, "--set", "encoder.steps=4" if model == "snn" else "train.seed=0",
                 "--epochs", "1", "--out", str(tmp_path), "--quiet"]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    capsys.readouterr()
    assert main(["export", str(run_dir), "--onnx"]) == 0
    out = capsys.readouterr().out
    difference = float(next(line.split()[1] for line in out.splitlines() if line.startswith("max_abs_difference")))
    assert difference < 1e-4
    assert (run_dir / "model.onnx").stat().st_size > 1000


def test_export_of_a_missing_run_or_one_without_weights(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--onnx"]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    run_dir = tmp_path / "runs" / "failed"
    run_dir.mkdir(parents=True)
    config = {"dataset": {"name": "breast"}, "model": {"name": "mlp"}, "encoder": {"name": "static"}, "train": {"seed": 0}}
    (run_dir / "run.json").write_text(json.dumps({"run_id": "failed", "status": "failed", "config": config}))
    assert main(["export", str(run_dir), "--onnx"]) == 2
    assert "has no weights" in capsys.readouterr().err
    (run_dir / "run.json").write_text(json.dumps({"run_id": "failed", "status": "failed", "config": {}}))
    assert main(["export", str(run_dir), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert "lacks config.dataset.name" in err and err.count("\n") == 1


def test_predictions_export_for_medmnist_evaluator(tmp_path, capsys):
    # A file in the official layout under the official name: MedMNIST's own Evaluator scores the
    # exported predictions, and its AUC and accuracy equal the run's.
    from conftest import make_npz
    from medmnist import Evaluator

    data = tmp_path / "data"
    data.mkdir()
    make_npz(data / "breastmnist.npz")
    assert main(["run", "breast", "--model", "mlp", "--data-dir", str(data), "--out", str(tmp_path / "res"),
                 "--epochs", "1", "--quiet", "--set", "dataset.verify=false"]) == 0
    (run_dir,) = (tmp_path / "res" / "runs").iterdir()
    capsys.readouterr()
    assert main(["export", str(run_dir), "--medmnist"]) == 0
    (test_csv,) = run_dir.glob("breastmnist_test_[[]AUC[]]*@*.csv")
    record = json.loads((run_dir / "run.json").read_text())
    assert test_csv.name.endswith(f"@{record['run_id']}.csv")
    scores = np.loadtxt(test_csv, delimiter=",")[:, 1:]  # Evaluator's layout: index, then one column per class
    scored = Evaluator("breastmnist", "test", root=str(data)).evaluate(scores)
    assert scored.AUC == pytest.approx(record["metrics"]["test"]["auc"])
    assert scored.ACC == pytest.approx(record["metrics"]["test"]["accuracy"])


def test_medmnist_export_of_a_custom_file_is_refused(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--epochs", "1", "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert main(["export", str(run_dir), "--medmnist"]) == 2
    assert "not an official MedMNIST set" in capsys.readouterr().err


def test_medmnist_export_reads_the_file_the_run_read_and_refuses_a_failed_run(tmp_path, capsys, monkeypatch):
    from conftest import make_npz

    data = tmp_path / "data"
    data.mkdir()
    make_npz(data / "breastmnist.npz")
    monkeypatch.setenv("NEUROCOMP_DATA_DIR", str(data))  # found through the environment, not the config
    assert main(["run", "breast", "--model", "mlp", "--out", str(tmp_path / "res"), "--epochs", "1", "--quiet",
                 "--set", "dataset.verify=false"]) == 0
    monkeypatch.delenv("NEUROCOMP_DATA_DIR")
    (run_dir,) = (tmp_path / "res" / "runs").iterdir()
    capsys.readouterr()
    assert main(["export", str(run_dir), "--medmnist", "--output", str(tmp_path / "scored")]) == 0
    assert list((tmp_path / "scored").glob("breastmnist_test_*.csv"))

    failed = tmp_path / "failed"
    failed.mkdir()
    record = json.loads((run_dir / "run.json").read_text())
    (failed / "run.json").write_text(json.dumps({**record, "status": "failed", "metrics": {}}))
    assert main(["export", str(failed), "--medmnist", "--output", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "failed run with no saved predictions" in err and not (tmp_path / "none").exists()
