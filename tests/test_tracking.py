"""``neurocomp export RESULTS --mlflow``: one MLflow run per record in a real SQLite-backed tracking
store, read back through MLflow's client; a second export adds nothing; a half-exported run left by a
kill is redone; a store that cannot be opened is one line."""

from __future__ import annotations

import shutil

import pytest

from conftest import make_npz
from neurocomp.cli import main
from neurocomp.runs.record import load_runs

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    npz = make_npz(root / "tiny.npz")
    sweep = root / "s.yaml"
    sweep.write_text(f"base: {{dataset: {{name: {npz}}}, train: {{epochs: 2, batch_size: 32}}}}\n"
                     "variants:\n  - {model.name: cnn}\n  - {model.name: mlp}\ngrid: {train.seed: [0]}\n")
    assert main(["sweep", str(sweep), "--out", str(root / "results"), "--quiet"]) == 0
    return root / "results"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def exported_runs(store: str) -> list:
    client = mlflow.tracking.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("neurocomp")
    return client.search_runs([experiment.experiment_id])


def test_each_record_is_one_mlflow_run_with_its_metrics_params_history_and_artifacts(results, store, capsys):
    assert main(["export", str(results), "--mlflow", "--tracking-uri", store]) == 0
    records = {record.run_id: record for record in load_runs(results)}
    runs = exported_runs(store)
    assert sorted(run.data.tags["neurocomp.run_id"] for run in runs) == sorted(records)
    client = mlflow.tracking.MlflowClient(tracking_uri=store)
    for run in runs:
        record = records[run.data.tags["neurocomp.run_id"]]
        assert run.info.status == "FINISHED" and run.info.run_name == record.run_id
        assert run.data.metrics["test.auc"] == pytest.approx(record.value("test.auc"))
        assert run.data.params["train.epochs"] == "2" and run.data.params["model.name"] == record.identity[1]
        assert run.data.tags["neurocomp.dataset_md5"] == record.dataset["md5"]
        assert run.data.tags["neurocomp.code_commit"] == str(record.code["commit"])
        history = client.get_metric_history(run.info.run_id, "history.val_loss")
        assert [point.step for point in history] == [1, 2]
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"run.json", "history.csv", "predictions.npz"}


def test_exporting_again_adds_nothing(results, store, capsys):
    assert main(["export", str(results), "--mlflow", "--tracking-uri", store]) == 0
    assert main(["export", str(results), "--mlflow", "--tracking-uri", store]) == 0
    assert "already there  2" in capsys.readouterr().out
    assert len(exported_runs(store)) == 2


def test_a_run_left_half_exported_by_a_kill_is_redone(results, store, monkeypatch):
    def killed(self, run_id, local_path, artifact_path=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow.tracking.MlflowClient, "log_artifact", killed)
    assert main(["export", str(results), "--mlflow", "--tracking-uri", store]) == 130
    assert [run.info.status for run in exported_runs(store)] == ["FAILED"]
    monkeypatch.undo()
    assert main(["export", str(results), "--mlflow", "--tracking-uri", store]) == 0
    runs = exported_runs(store)
    assert len(runs) == 2 and {run.info.status for run in runs} == {"FINISHED"}


def test_a_store_that_cannot_be_opened_is_one_line(results, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["export", str(results), "--mlflow", "--tracking-uri", f"sqlite:///{blocker}/mlflow.db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurocomp: error: cannot open the MLflow tracking store") and err.count("\n") == 1


def test_one_run_folder_exports_alone(results, store, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(load_runs(results)[0].directory, single)
    assert main(["export", str(single), "--mlflow", "--tracking-uri", store]) == 0
    assert len(exported_runs(store)) == 1
