"""The command line end to end, on synthetic data in a temp dir, and every bad input it refuses."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import SHARED_MEDMNIST
from neurocomp.cli import main

FAST = ["--epochs", "2", "--batch-size", "32", "--quiet"]


def run_ok(capsys, *args):
    code = main(["run", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def only_record(out_dir):
    records = list(out_dir.glob("runs/*/run.json"))
    assert len(records) == 1
    return records[0].parent, json.loads(records[0].read_text())


def test_run_writes_a_complete_record(npz_2d, tmp_path, capsys):
    out = run_ok(capsys, str(npz_2d), "--model", "cnn", "--out", str(tmp_path / "res"), *FAST)
    assert "| accuracy" in out and "trainable parameters" in out and "positive class" in out
    run_dir, record = only_record(tmp_path / "res")
    assert record["status"] == "completed"
    assert record["config"]["train"]["epochs"] == 2 and record["config"]["encoder"]["name"] == "static"
    assert set(record["metrics"]) == {"val", "test"}
    for name in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "gmean", "auc"):
        assert name in record["metrics"]["test"]
    assert record["metrics"]["test"]["accuracy"] > 0.9  # the synthetic classes differ in brightness
    assert sum(map(sum, record["metrics"]["test"]["confusion_matrix"])) == 16
    assert record["params"]["trainable"] > 0 and record["best_epoch"] in (1, 2)
    assert {"torch", "snntorch", "ncps", "medmnist", "neurocomp"} <= set(record["versions"])
    assert record["device"] == "cpu" and record["seed"] == 0
    assert record["schema"] == 3 and set(record["code"]) == {"commit", "dirty"}
    assert record["config"]["model"]["backend"] == "auto"
    assert run_dir.name.startswith("synthetic2d-cnn-static-s0-")
    assert (run_dir / "history.csv").read_text().count("\n") == 3
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == record["params"]["total"]
    assert not list(run_dir.glob("*.tmp"))


def test_same_seed_gives_the_same_metrics(npz_2d, tmp_path, capsys):
    metrics = []
    for out in ("a", "b"):
        run_ok(capsys, str(npz_2d), "--model", "snn", "--set", "encoder.steps=4", "--out", str(tmp_path / out), *FAST)
        metrics.append(only_record(tmp_path / out)[1]["metrics"])
    assert metrics[0] == metrics[1]


def test_config_file_with_overrides(npz_2d, tmp_path, capsys):
    config = tmp_path / "x.yaml"
    config.write_text(f"dataset: {{name: {npz_2d}}}\nmodel: {{name: mlp, hidden: [32]}}\ntrain: {{epochs: 5}}\n")
    run_ok(capsys, "--config", str(config), "--set", "train.epochs=1", "--set", "model.hidden=[16, 8]",
           "--out", str(tmp_path / "res"), "--quiet")
    _, record = only_record(tmp_path / "res")
    assert record["epochs_run"] == 1 and record["config"]["model"]["hidden"] == [16, 8]


def test_3d_volumes_through_the_per_slice_cnn(npz_3d, tmp_path, capsys):
    run_ok(capsys, str(npz_3d), "--model", "cnn", "--encoder", "slices", "--out", str(tmp_path), *FAST)
    _, record = only_record(tmp_path)
    assert record["encoder"] == {"steps": 16, "step_shape": [1, 16, 16]}


def test_early_stopping_restores_the_best_epoch(npz_2d, tmp_path, capsys):
    run_ok(capsys, str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--epochs", "30", "--quiet",
           "--set", "train.patience=2", "--set", "train.lr=0.05")
    run_dir, record = only_record(tmp_path)
    assert record["stopped_early"] and record["epochs_run"] == record["best_epoch"] + 2
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == record["epochs_run"] + 1


def test_nan_loss_stops_the_run_and_marks_the_record_failed(npz_2d, tmp_path, capsys):
    code = main(["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--quiet", "--epochs", "3",
                 "--set", "train.optimizer=sgd", "--set", "train.lr=1e30"])
    err = capsys.readouterr().err
    assert code == 1
    assert "loss became" in err and err.count("\n") == 1
    _, record = only_record(tmp_path)
    assert record["status"] == "failed" and "loss became" in record["error"]


BAD_INPUTS = [
    (["nonexistent-set"], "unknown dataset 'nonexistent-set'; choose one of:"),
    (["{npz}", "--model", "transformer"], "unknown model 'transformer'; choose one of:"),
    (["{npz}", "--encoder", "morse"], "unknown encoder 'morse'; choose one of:"),
    (["{npz}", "--model", "cnn", "--encoder", "rows"], "needs image steps"),
    (["{npz}", "--encoder", "slices"], "needs 3D volumes"),
    (["{npz}", "--model", "cnn", "--set", "train.loss=rate"], "needs a spiking model"),
    (["{npz}", "--set", "train.epochz=3"], "unknown key train.epochz"),
    (["{npz}", "--set", "train.epochs=three"], "train.epochs: expected int"),
    (["pneumonia", "--data-dir", "{tmp}", "--set", "dataset.download=false"], "pneumoniamnist.npz is not in"),
    (["{corrupt}"], "not a readable .npz"),
    (["breast", "--size", "100"], "not 100"),
    (["{npz}", "--config", "{tmp}/missing.yaml"], "does not exist"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[m.split(";")[0][:40] for _, m in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(args, message, npz_2d, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not an archive")
    args = [a.format(npz=npz_2d, tmp=tmp_path, corrupt=corrupt) for a in args]
    code = main(["run", *args, "--out", str(tmp_path / "res"), *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "res" / "runs").exists()  # refused before any work: nothing written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--device", "cuda", "--out", str(tmp_path), *FAST]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_list_names_every_registered_part(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("pneumonia-balanced", "adrenal3d", "rate", "slices", "snn", "cnn", "mlp"):
        assert f"  {name} " in out


def test_console_entry_point_runs_as_a_module(npz_2d, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "neurocomp", "run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), *FAST],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("| metric") and "| accuracy" in result.stdout


@pytest.mark.slow
def test_snn_on_the_real_balanced_pneumonia_file(tmp_path, capsys):
    if not (SHARED_MEDMNIST / "pneumoniamnist_balanced.npz").exists():
        pytest.skip(f"{SHARED_MEDMNIST} has no pneumoniamnist_balanced.npz")
    run_ok(capsys, "pneumonia-balanced", "--config", "configs/studies/snn-pneumonia.yaml", "--data-dir",
           str(SHARED_MEDMNIST), "--epochs", "1", "--out", str(tmp_path), "--quiet")
    _, record = only_record(tmp_path)
    assert record["params"]["trainable"] == 5402
    assert record["dataset"]["sizes"] == {"train": 2428, "val": 270, "test": 468}


def test_bench_json_is_keyed_by_workload(capsys):
    assert main(["bench", "--model", "ltc", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"ltc"}
    assert result["ltc"]["unit"] == "train samples/s"
    assert result["ltc"]["ratio"] == pytest.approx(result["ltc"]["ours"] / result["ltc"]["reference"], rel=0.02)


def test_bench_unknown_workload_is_exit_2(capsys):
    assert main(["bench", "--model", "transformer"]) == 2
    assert "unknown bench workload 'transformer'; choose from: snn, ltc, cfc" in capsys.readouterr().err


@pytest.mark.parametrize("backend, path", [("auto", "native lif"), ("library", "library")])
def test_the_record_and_summary_say_which_kernel_path_ran(backend, path, npz_2d, tmp_path, capsys):
    out = run_ok(capsys, str(npz_2d), "--model", "snn", "--out", str(tmp_path), "--set", f"model.backend={backend}",
                 "--set", "model.channels=[]", "--set", "encoder.steps=3", *FAST)
    _, record = only_record(tmp_path)
    assert [entry["path"] for entry in record["model"]["kernels"]] == [path]
    assert "kernels" in out and path in out


def test_backend_native_where_no_kernel_applies_is_exit_2(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "snn", "--out", str(tmp_path), "--set", "model.backend=native",
                 "--set", "model.learn_beta=true", *FAST]) == 2
    err = capsys.readouterr().err
    assert "model.backend=native" in err and "beta is learnable" in err and err.count("\n") == 1
    assert not list(tmp_path.glob("runs/*"))  # refused before anything was written


@pytest.mark.parametrize("command, not_imported", [
    (["--help"], ["torch", "sklearn", "medmnist", "scipy.stats"]),  # start-up stays light
    (["list"], ["sklearn", "medmnist", "scipy.stats"]),  # list needs the models (torch), not the metrics
])
def test_commands_import_only_what_they_need(command, not_imported):
    probe = (f"import sys; from neurocomp.cli import main; main({command!r}); "
             f"print([m for m in {not_imported!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr[-2000:]
