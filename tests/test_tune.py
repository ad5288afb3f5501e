"""neurocomp tune: search spaces checked before any trial, the same budget of epochs per (dataset,
model), trials scored on the mean of several seeds, validation only, the best re-run with every seed
and its selection optimism measured on fresh seeds, and a killed tune resumed with every finished
trial kept once."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
import yaml

from neurocomp.cli import main
from neurocomp.core.errors import UsageError
from neurocomp.runs.record import load_runs
from neurocomp.core.registry import MODELS
from neurocomp.runs.space import Choice, Range, from_trial_params, parse_spec, suggest
from neurocomp.runs.tune import ONE_CLASS, best_values, load_tune

from conftest import make_npz


def write_tune(path, npz, **overrides):
    tune = {"base": {"train": {"epochs": 2, "batch_size": 16}}, "datasets": [str(npz)],
            "models": ["mlp", {"model.name": "cnn", "model.hidden": [8]}], "trials": 3, "seeds": [0, 1],
            "space": {"train.lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True}, "train.class_weight": ["none", "balanced"]}}
    tune.update(overrides)
    path.write_text(yaml.safe_dump(tune))
    return path


def test_ranges_and_choices_parse_and_round_trip_through_a_trial():
    assert parse_spec("k", {"low": 1, "high": 4}) == Range(1, 4, integer=True)
    assert parse_spec("k", {"low": 1e-4, "high": 1e-2, "log": True}) == Range(1e-4, 1e-2, log=True)
    choice = parse_spec("model.batch_norm", [[False], [True]])
    assert choice == Choice(((False,), (True,)))
    trial = optuna.trial.FixedTrial({"model.batch_norm": "[true]", "k": 3})
    assert suggest(trial, "model.batch_norm", choice) == (True,)
    assert from_trial_params("model.batch_norm", choice, "[true]") == (True,)
    assert suggest(trial, "k", parse_spec("k", {"low": 1, "high": 4})) == 3


@pytest.mark.parametrize("change, says", [
    ({"space": {"train.lrr": {"low": 0.1, "high": 0.2}}}, "unknown key train.lrr"),
    ({"space": {"train.lr": {"low": "a", "high": 0.1}}}, "low, high and step must be numbers"),
    ({"space": {"train.lr": {"low": 0.1, "high": 0.01}}}, "needs low < high"),
    ({"space": {"train.class_weight": ["none", "inverse"]}}, "train.class_weight = 'inverse'"),
    ({"space": {"train.lr": 0.1}}, "expected a non-empty list of choices"),
    ({"objective": "val.aucc"}, "objective ['val.aucc']"),
    ({"objective": ["cost.energy_pj", "val.auc"]}, "the first objective must be a validation quantity"),
    ({"models": ["snnn"]}, "unknown model 'snnn'"),
    ({"trials": 0}, "trials must be a whole number of at least 1"),
    ({"colour": "blue"}, "unknown key 'colour'"),
])
def test_a_bad_tune_file_is_one_line_and_exit_2_before_any_trial(npz_2d, tmp_path, capsys, change, says):
    path = write_tune(tmp_path / "t.yaml", npz_2d, **change)
    assert main(["tune", str(path), "--out", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err
    assert not (tmp_path / "res" / "tune").exists() or not list((tmp_path / "res" / "tune").glob("*.db"))


@pytest.mark.parametrize("args, says", [(["--trials", "0"], "--trials must be at least 1"),
                                        (["--storage", "sqlite:////no/such/folder/x.db"], "cannot be opened")])
def test_bad_tune_arguments_are_one_line_and_exit_2(npz_2d, tmp_path, capsys, args, says):
    path = write_tune(tmp_path / "t.yaml", npz_2d)
    assert main(["tune", str(path), "--out", str(tmp_path / "res"), *args]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_every_built_in_model_declares_a_space_the_config_accepts(npz_2d, tmp_path):
    models = [name for name in MODELS.names() if name in ("snn", "alif", "ltc", "cfc", "lstm", "gru", "rnn", "cnn", "mlp")]
    tune = load_tune(write_tune(tmp_path / "t.yaml", npz_2d, models=models))  # resolves every end of every range
    assert all(tune.model_space(name) for name in models if name != "mlp")


def test_a_tune_gives_every_paradigm_the_same_trials_and_reruns_the_best_with_every_seed(npz_2d, tmp_path, capsys):
    path = write_tune(tmp_path / "t.yaml", npz_2d)
    out = tmp_path / "res"
    assert main(["tune", str(path), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "tune" / "t.json").read_text())
    assert [(s["model"], s["finished"]) for s in summary["studies"]] == [("mlp", 3), ("cnn", 3)]
    storage = summary["storage"]
    for study in summary["studies"]:
        trials = optuna.load_study(study_name=study["study"], storage=storage).trials
        assert all(t.user_attrs["scores"]["val.auc"] is not None for t in trials if t.state.name == "COMPLETE")
        assert all(0 < t.params["train.lr"] < 1e-2 for t in trials)
    runs = load_runs(out)
    assert sorted((run.identity[1], run.seed) for run in runs) == [("cnn", 0), ("cnn", 1), ("mlp", 0), ("mlp", 1)]
    best = {s["model"]: s["best"] for s in summary["studies"]}
    for run in runs:
        assert run.config["train"]["lr"] == pytest.approx(best[run.identity[1]]["train.lr"])
    assert (out / "tune" / "t" / "synthetic2d-mlp.png").exists()
    # Run again: nothing to tune, nothing to re-run.
    assert main(["tune", str(path), "--out", str(out), "--quiet"]) == 0
    assert "all 4 runs are already recorded" in capsys.readouterr().out


def _study_of(trials):
    """A study whose trials score (val AUC, one class on validation?) as given, in that order."""
    study = optuna.create_study(direction="maximize")
    scores = iter(trials)

    def objective(trial):
        trial.suggest_float("train.lr", 1e-4, 1e-2, log=True)
        trial.suggest_categorical("train.class_weight", ["none", "balanced"])
        auc, one_class = next(scores)
        trial.set_constraint(ONE_CLASS, float(one_class))
        return auc

    study.optimize(objective, n_trials=len(trials))
    return study


def test_a_trial_that_predicts_one_class_on_validation_is_never_chosen_however_high_its_auc(npz_2d, tmp_path):
    tune = load_tune(write_tune(tmp_path / "t.yaml", npz_2d))
    study = _study_of([(0.70, False), (0.90, True), (0.75, False), (0.80, True)])
    values, front, one_class_everywhere = best_values(tune, study, tune.variants[0])
    assert values["train.lr"] == study.trials[2].params["train.lr"] and not one_class_everywhere
    assert [f["values"] for f in front] == [[0.75]]
    # Every trial one class: the best is kept, and said to be one class everywhere.
    study = _study_of([(0.60, True), (0.65, True)])
    values, _, one_class_everywhere = best_values(tune, study, tune.variants[0])
    assert values["train.lr"] == study.trials[1].params["train.lr"] and one_class_everywhere


def test_the_tuned_sweep_labels_its_rows_in_the_report(npz_2d, tmp_path):
    path = write_tune(tmp_path / "t.yaml", npz_2d, models=["mlp"], trials=1, seeds=[0])
    out = tmp_path / "res"
    assert main(["tune", str(path), "--out", str(out), "--quiet"]) == 0
    best = out / "tune" / "t.best.yaml"
    assert yaml.safe_load(best.read_text())["label"] == "tuned (1 trials)"
    report = tmp_path / "R.md"
    assert main(["report", str(best), "--results", str(out), "--output", str(report), "--allow-dirty"]) == 0
    row = next(line for line in report.read_text().splitlines() if "| mlp " in line)
    assert "tuned (1 trials)" in row


def _finished_count(database):
    # Read-only and without Optuna: opening the storage from here could create its schema while the
    # tune does (a race that crashed the tune in CI's emulation).
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return connection.execute("select count(*) from trials where state in ('COMPLETE', 'PRUNED')").fetchone()[0]
    except sqlite3.OperationalError:  # no file or no table yet
        return 0


def _finished_trials(storage):
    found = {}
    for name in optuna.get_all_study_names(storage):
        for trial in optuna.load_study(study_name=name, storage=storage).trials:
            if trial.state.name in ("COMPLETE", "PRUNED"):
                found[(name, trial.number)] = trial.params
    return found


def test_a_killed_tune_resumes_with_every_finished_trial_kept_once(tmp_path):
    npz = make_npz(tmp_path / "bigger.npz", sizes=(512, 64, 64))
    path = write_tune(tmp_path / "t.yaml", npz, trials=6, models=["cnn"], trial_seeds=[0],
                      base={"train": {"epochs": 4, "batch_size": 32, "threads": 1}})
    out = tmp_path / "res"
    storage = f"sqlite:///{out / 'tune' / 't.db'}"
    command = [sys.executable, "-m", "neurocomp", "tune", str(path), "--out", str(out), "--quiet", "--no-rerun"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and _finished_count(out / "tune" / "t.db") < 1 and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()[1][-2000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = _finished_trials(storage)
    assert 1 <= len(before) < 6, "the tune was not killed mid-way"
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _finished_trials(storage)
    assert len(after) == 6  # the budget, counted once
    assert all(after[key] == params for key, params in before.items())  # what finished before is kept as it was


def _tune_command(path, out):
    return [sys.executable, "-m", "neurocomp", "tune", str(path), "--out", str(out), "--quiet", "--no-rerun"]


def test_two_processes_on_one_new_storage_finish_exactly_the_trials_with_no_duplicate(tmp_path):
    """Both create the storage at once (one waits on the other's lock), reserve trials in it before
    training them (no overshoot), and draw values seeded by trial number (no duplicate)."""
    npz = make_npz(tmp_path / "tiny.npz")
    path = write_tune(tmp_path / "t.yaml", npz, trials=6, models=["mlp"], trial_seeds=[0],
                      base={"train": {"epochs": 1, "batch_size": 32, "threads": 1}})
    out = tmp_path / "res"
    processes = [subprocess.Popen(_tune_command(path, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
    finished = _finished_trials(f"sqlite:///{out / 'tune' / 't.db'}")
    assert len(finished) == 6
    values = [tuple(sorted(params.items())) for params in finished.values()]
    assert len(set(values)) == len(values)


@pytest.mark.parametrize("heartbeat", [True, False], ids=["heartbeat stopped", "killed before its first heartbeat"])
def test_a_trial_left_running_by_a_killed_process_is_failed_and_replaced(npz_2d, tmp_path, monkeypatch, heartbeat):
    """Optuna fails a running trial whose heartbeat went stale, but never one without a heartbeat row:
    a process killed between creating a trial and its first beat left it running forever."""
    from neurocomp.runs import tune as tune_module

    monkeypatch.setattr(tune_module, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(tune_module, "GRACE_SECONDS", 1)
    monkeypatch.setattr(tune_module, "POLL_SECONDS", 0.5)
    path = write_tune(tmp_path / "t.yaml", npz_2d, trials=2, models=["mlp"], base={"train": {"epochs": 1, "batch_size": 32}})
    storage_url = f"sqlite:///{tmp_path / 't.db'}"
    tune = load_tune(path)
    name = tune_module.study_name(tune, str(npz_2d), tune.variants[0])
    storage = tune_module.open_storage(storage_url)
    orphan = optuna.create_study(study_name=name, storage=storage, direction="maximize").ask()  # its process was killed
    if heartbeat:
        storage.record_heartbeat(orphan._trial_id)
    time.sleep(2.5)
    outcome = tune_module.tune_study(str(path), str(npz_2d), 0, 2, storage_url, 1)
    states = [t.state.name for t in optuna.load_study(study_name=name, storage=storage_url).trials]
    assert outcome["finished"] == 2 and states[0] == "FAIL" and states.count("RUNNING") == 0


def test_fewer_trials_than_a_study_has_finished_is_one_line(npz_2d, tmp_path, capsys):
    path = write_tune(tmp_path / "t.yaml", npz_2d, trials=2, models=["mlp"], base={"train": {"epochs": 1, "batch_size": 32}})
    out = tmp_path / "res"
    assert main(["tune", str(path), "--out", str(out), "--quiet", "--no-rerun"]) == 0
    capsys.readouterr()
    assert main(["tune", str(path), "--out", str(out), "--quiet", "--no-rerun", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trials 1 is fewer than the 2 full-length trials" in err


def test_a_trial_is_scored_by_the_mean_of_its_seeds(npz_2d, tmp_path):
    path = write_tune(tmp_path / "t.yaml", npz_2d, trials=2, models=["mlp"], base={"train": {"epochs": 1, "batch_size": 32}})
    out = tmp_path / "res"
    assert main(["tune", str(path), "--out", str(out), "--quiet", "--no-rerun"]) == 0
    summary = json.loads((out / "tune" / "t.json").read_text())
    (study,) = summary["studies"]
    assert study["epochs"] == study["budget_epochs"] == 2 * 1 * 2  # trials x epochs x trial seeds
    for trial in optuna.load_study(study_name=study["study"], storage=summary["storage"]).trials:
        assert len(trial.user_attrs["seed_scores"]) == 2 and trial.user_attrs["epochs_run"] == 2
        assert trial.value == pytest.approx(sum(trial.user_attrs["seed_scores"]) / 2)


def test_a_pruned_trial_spends_the_epochs_it_ran_and_a_live_one_reserves_a_full_trial():
    from neurocomp.runs.tune import EPOCHS_RUN, _committed

    study = optuna.create_study(direction="maximize")
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for state, epochs in [("COMPLETE", 10), ("PRUNED", 3), ("COMPLETE", None)]:
        study.add_trial(optuna.trial.create_trial(
            state=getattr(optuna.trial.TrialState, state), value=0.5 if state == "COMPLETE" else None,
            params={"x": 0.5}, distributions=distributions, user_attrs={EPOCHS_RUN: epochs} if epochs else {}))
    study.ask()  # a live trial
    assert _committed(study, None, 10, live=False) == 10 + 3 + 10  # a trial from before epochs were counted: a full one
    assert _committed(study, None, 10) == 10 + 3 + 10 + 10
    assert _committed(study, 2, 10) == 13


def test_the_selection_optimism_compares_the_best_trial_with_fresh_seeds(npz_2d, tmp_path):
    path = write_tune(tmp_path / "t.yaml", npz_2d, trials=2, models=["mlp"], seeds=[0, 1, 2], trial_seeds=[0],
                      base={"train": {"epochs": 1, "batch_size": 32}})
    out = tmp_path / "res"
    assert main(["tune", str(path), "--out", str(out), "--quiet"]) == 0
    (study,) = json.loads((out / "tune" / "t.json").read_text())["studies"]
    fresh = [run.value("val.auc") for run in load_runs(out) if run.seed in (1, 2)]
    assert study["optimism"]["fresh_seeds"] == [1, 2]
    assert study["optimism"]["fresh"] == pytest.approx(sum(fresh) / 2)
    assert study["optimism"]["optimism"] == pytest.approx(study["best_value"] - sum(fresh) / 2)


def test_resuming_a_study_scored_on_other_seeds_is_one_line(npz_2d, tmp_path, capsys):
    path = write_tune(tmp_path / "t.yaml", npz_2d, trials=1, models=["mlp"], trial_seeds=[0],
                      base={"train": {"epochs": 1, "batch_size": 32}})
    out = tmp_path / "res"
    assert main(["tune", str(path), "--out", str(out), "--quiet", "--no-rerun"]) == 0
    write_tune(path, npz_2d, trials=1, models=["mlp"], trial_seeds=[0, 1], base={"train": {"epochs": 1, "batch_size": 32}})
    capsys.readouterr()
    assert main(["tune", str(path), "--out", str(out), "--quiet", "--no-rerun"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scored its trials on seeds [0]" in err


def test_a_model_listed_twice_is_one_line(npz_2d, tmp_path, capsys):
    """Studies are named by dataset and model: two variants of one model would tune one shared study."""
    path = write_tune(tmp_path / "t.yaml", npz_2d, models=["mlp", {"model.name": "mlp", "model.hidden": [16]}])
    assert main(["tune", str(path), "--out", str(tmp_path / "res"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model 'mlp' is listed twice" in err
