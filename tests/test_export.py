"""ONNX export round trip: the exported model gives PyTorch's outputs; bad run folders exit 2."""

import json

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
