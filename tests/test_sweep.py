"""Sweeps: expansion, resume after a kill, failures recorded, executors, and bad sweep files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurocomp.cli import main
from neurocomp.runs.sweep import expand, load_sweep, record_status, run_sweep


def write_sweep(path, npz, *, extra="", grid="  train.seed: [0, 1]\n", epochs=1):
    path.write_text(
        f"base:\n  dataset: {{name: {npz}}}\n  train: {{epochs: {epochs}, batch_size: 32}}\n"
        f"variants:\n  - {{model.name: mlp, model.hidden: [16]}}\n  - {{model.name: cnn, model.channels: [4], model.hidden: []}}\n"
        f"{extra}grid:\n{grid}"
    )
    return path


def run_dirs(out):
    return sorted(p.name for p in (out / "runs").iterdir() if p.is_dir())


def test_expansion_is_variants_times_grid_with_stable_ids(npz_2d, tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s.yaml", npz_2d, grid="  train.seed: [0, 1, 2]\n  train.lr: [0.01, 0.001]\n"))
    configs = expand(sweep, out=str(tmp_path))
    assert len(configs) == 2 * 3 * 2
    assert {(c.model.name, c.train.seed, c.train.lr) for c in configs} == {
        (m, s, lr) for m in ("mlp", "cnn") for s in (0, 1, 2) for lr in (0.01, 0.001)
    }
    assert configs[0].model.options["hidden"] == (16,) and configs[-1].model.options["channels"] == (4,)
    ids = [c.to_dict() for c in expand(sweep, out=str(tmp_path))]
    assert ids == [c.to_dict() for c in configs]


def test_adjust_changes_only_the_runs_it_matches(npz_2d, npz_3d, tmp_path):
    (tmp_path / "s.yaml").write_text(
        "variants:\n  - {model.name: snn, encoder.name: rate, encoder.steps: 4}\n  - {model.name: cnn}\n"
        f"grid:\n  dataset.name: [{npz_2d}, {npz_3d}]\n"
        f"adjust:\n  - when: {{dataset.name: {npz_3d}, model.name: snn}}\n    set: {{encoder: {{name: slices}}, train.epochs: 2}}\n")
    encoders = {(Path(c.dataset.name).stem, c.model.name): (c.encoder.name, c.encoder.options, c.train.epochs)
                for c in expand(load_sweep(tmp_path / "s.yaml"))}
    assert encoders[("synthetic3d", "snn")][0::2] == ("slices", 2) and "steps" not in encoders[("synthetic3d", "snn")][1]
    assert encoders[("synthetic2d", "snn")][:2] == ("rate", {"steps": 4, "gain": 1.0})
    assert encoders[("synthetic2d", "snn")][2] == encoders[("synthetic3d", "cnn")][2] != 2
    # not adjusted: each gets its model's default for the data (volumes by slices)
    assert (encoders[("synthetic3d", "cnn")][0], encoders[("synthetic2d", "cnn")][0]) == ("slices", "static")


def test_base_can_be_a_config_file(tmp_path):
    (tmp_path / "base.yaml").write_text("model: {name: snn}\ntrain: {epochs: 3}\n")
    (tmp_path / "s.yaml").write_text("base: base.yaml\ngrid: {train.seed: [4]}\n")
    [config] = expand(load_sweep(tmp_path / "s.yaml"))
    assert config.model.name == "snn" and config.train.epochs == 3 and config.train.seed == 4


def test_sweep_runs_then_does_nothing_and_says_so(npz_2d, tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", npz_2d)
    out = tmp_path / "res"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert "4 completed now, 0 already recorded, 0 failed" in capsys.readouterr().out
    assert len(run_dirs(out)) == 4
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert "all 4 runs are already recorded; nothing to do" in capsys.readouterr().out


def test_resume_after_a_simulated_kill_runs_only_what_is_missing(npz_2d, tmp_path):
    path = write_sweep(tmp_path / "s.yaml", npz_2d)
    out = tmp_path / "res"
    configs = expand(load_sweep(path), out=str(out))
    run_sweep(configs, progress=False, echo=lambda line: None)
    before = {d: (out / "runs" / d / "run.json").stat().st_mtime_ns for d in run_dirs(out)}
    # What a kill leaves: one run never recorded, one record still "running" with a stray temp file.
    lost, interrupted = run_dirs(out)[:2]
    (out / "runs" / lost / "run.json").unlink()
    record = json.loads((out / "runs" / interrupted / "run.json").read_text())
    (out / "runs" / interrupted / "run.json").write_text(json.dumps({**record, "status": "running"}))
    (out / "runs" / interrupted / ".history.csv.123.tmp").write_text("half")
    summary = run_sweep(configs, progress=False, echo=lambda line: None)
    assert (summary.completed, summary.skipped) == (2, 2)
    assert all(record_status(c) == "completed" for c in configs)
    after = {d: (out / "runs" / d / "run.json").stat().st_mtime_ns for d in run_dirs(out)}
    assert set(after) == set(before)  # every run present once
    assert [d for d in after if after[d] != before[d]] == sorted([lost, interrupted])


def test_killing_a_real_sweep_and_restarting_finishes_the_grid(npz_2d, tmp_path):
    path = write_sweep(tmp_path / "s.yaml", npz_2d, grid="  train.seed: [0, 1, 2]\n", epochs=3)
    out = tmp_path / "res"
    command = [sys.executable, "-m", "neurocomp", "sweep", str(path), "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not any(
        json.loads(p.read_text()).get("status") == "completed" for p in out.glob("runs/*/run.json")
    ):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = sum(json.loads(p.read_text())["status"] == "completed" for p in out.glob("runs/*/run.json"))
    assert 1 <= done_before < 6
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{6 - done_before} completed now, {done_before} already recorded" in result.stdout
    statuses = [json.loads(p.read_text())["status"] for p in out.glob("runs/*/run.json")]
    assert statuses == ["completed"] * 6 and len(run_dirs(out)) == 6


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(npz_2d, tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", npz_2d, grid="  train.seed: [0]\n")
    text = path.read_text().replace("variants:\n", "variants:\n  - {model.name: mlp, train.optimizer: sgd, train.lr: 1.0e+30}\n")
    path.write_text(text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "res"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "2 completed now, 0 already recorded, 1 failed" in out
    records = [json.loads(p.read_text()) for p in (tmp_path / "res").glob("runs/*/run.json")]
    failed = [r for r in records if r["status"] == "failed"]
    assert len(records) == 3 and len(failed) == 1 and "loss became" in failed[0]["error"]


def test_a_run_refused_at_build_time_is_recorded_as_failed(npz_2d, tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", npz_2d, grid="  train.seed: [0]\n")
    path.write_text(path.read_text().replace("variants:\n", "variants:\n  - {model.name: cnn, encoder.name: rows}\n"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "res"), "--quiet"]) == 1
    [failed] = [r for r in (json.loads(p.read_text()) for p in (tmp_path / "res").glob("runs/*/run.json")) if r["status"] == "failed"]
    assert "needs image steps" in failed["error"]


def test_two_local_workers_give_the_same_records_as_one(npz_2d, tmp_path):
    path = write_sweep(tmp_path / "s.yaml", npz_2d)
    for workers, out in ((1, "one"), (2, "two")):
        assert main(["sweep", str(path), "--out", str(tmp_path / out), "--workers", str(workers), "--threads", "1", "--quiet"]) == 0
    metrics = {
        out: {p.parent.name: json.loads(p.read_text())["metrics"] for p in (tmp_path / out).glob("runs/*/run.json")}
        for out in ("one", "two")
    }
    assert metrics["one"] == metrics["two"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("base: {}\ngird: {train.seed: [0]}\n", "unknown key 'gird'"),
        ("base: {}\ngrid: {}\n", "the grid is empty"),
        ("base: {}\ngrid: {train.seed: []}\n", "grid key 'train.seed' needs a non-empty list"),
        ("variants:\n  - {model.name: transformer}\ngrid: {train.seed: [0]}\n", "unknown model 'transformer'; choose one of:"),
        ("variants: {model.name: cnn}\ngrid: {train.seed: [0]}\n", "variants must be a list"),
        ("grid: {train.epochz: [1]}\n", "unknown key train.epochz"),
        ("grid: {train.seed: [0]}\nadjust: [{when: {model.name: cnn}}]\n", "adjust must be a list of {when:"),
    ],
)
def test_bad_sweep_files_are_one_line_and_exit_2(text, message, tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(text)
    assert main(["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "res").exists()


def test_ray_executor_without_ray_says_how_to_install(npz_2d, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    path = write_sweep(tmp_path / "s.yaml", npz_2d, grid="  train.seed: [0]\n")
    assert main(["sweep", str(path), "--executor", "ray", "--out", str(tmp_path / "res"), "--quiet"]) == 2
    assert "pip install 'neurocomp[ray]'" in capsys.readouterr().err


def test_ray_executor_runs_a_two_run_sweep_on_a_local_instance(npz_2d, tmp_path, capsys):
    ray = pytest.importorskip("ray")
    path = write_sweep(tmp_path / "s.yaml", npz_2d, grid="  train.seed: [0]\n")
    try:
        code = main(["sweep", str(path), "--executor", "ray", "--threads", "1", "--out", str(tmp_path / "res"), "--quiet"])
    finally:
        ray.shutdown()
    assert code == 0, capsys.readouterr().err
    for run_dir in (tmp_path / "res" / "runs").iterdir():
        assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
        assert {"history.csv", "model.pt", "predictions.npz"} <= {p.name for p in run_dir.iterdir()}


def test_dry_run_lists_without_training(npz_2d, tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", npz_2d)
    assert main(["sweep", str(path), "--out", str(tmp_path / "res"), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("to run") == 4
    assert not (tmp_path / "res").exists()


def test_a_budget_no_width_reaches_stops_the_sweep_before_any_run(npz_2d, tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", npz_2d, grid="  params: [1300, 50]\n  train.seed: [0]\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "res"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budgets no width reaches" in err and "under this model's floor" in err
    assert not (tmp_path / "res" / "runs").exists() or not any((tmp_path / "res" / "runs").iterdir())
