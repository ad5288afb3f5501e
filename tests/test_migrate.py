"""``neurocomp migrate``: records made by older code reach the current schema and id, so their sweeps
find them done; twice changes nothing; foreign files and unplaceable records are left alone; a kill
between the two steps of a run's migration is finished by the next call.

tests/data/records-c082883 holds three real records (run.json, history.csv) made by commit c082883,
the last before ``train.class_weight`` and operating points existed, from its ``sweep.yaml`` on
the synthetic set of conftest.make_npz (1 epoch).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import make_npz
from neurocomp.runs import migrate as migrate_module
from neurocomp.cli import main
from neurocomp.runs.identity import run_id
from neurocomp.runs.migrate import migrate
from neurocomp.runs.record import SCHEMA, load_runs

OLD = Path(__file__).parent / "data" / "records-c082883"


@pytest.fixture
def old_results(tmp_path, monkeypatch) -> Path:
    """A copy of the old records, and the synthetic set they were trained on, in the working folder
    (their configs name it by a relative path)."""
    monkeypatch.chdir(tmp_path)
    make_npz(tmp_path / "synthetic2d.npz")
    shutil.copytree(OLD / "runs", tmp_path / "results" / "runs")
    return tmp_path / "results"


def sweep_states(sweep: Path, results: Path, capsys) -> list[str]:
    assert main(["sweep", str(sweep), "--dry-run", "--out", str(results)]) == 0
    return [line.split()[0] for line in capsys.readouterr().out.splitlines()]


def test_migrated_records_from_before_class_weight_are_found_done_by_their_sweep(old_results, tmp_path, capsys):
    then = yaml.safe_load((OLD / "sweep.yaml").read_text())
    now = tmp_path / "now.yaml"  # the same runs asked for today: the unweighted loss and last-step readout they trained with
    variants = [{**v, "model.readout": "last"} if v["model.name"] == "lstm" else v for v in then["variants"]]
    now.write_text(yaml.safe_dump({**then, "variants": variants,
                                   "base": {**then["base"], "train": {**then["base"]["train"], "class_weight": "none"}}}))
    assert sweep_states(now, old_results, capsys) == ["to", "to", "to"]

    assert main(["migrate", str(old_results), "--dry-run"]) == 0
    assert "would migrate" in capsys.readouterr().out
    assert sorted(p.name for p in (old_results / "runs").iterdir()) == sorted(p.name for p in (OLD / "runs").iterdir())

    assert main(["migrate", str(old_results)]) == 0
    assert "3 migrated" in capsys.readouterr().out
    assert sweep_states(now, old_results, capsys) == ["completed"] * 3
    # The file that was run then asks for class weights today (the default changed): not the same runs.
    assert sweep_states(OLD / "sweep.yaml", old_results, capsys) == ["to", "to", "to"]

    for record in load_runs(old_results):
        assert record.schema == SCHEMA and record.run_id == record.directory.name == run_id(record.config)
        assert record.config["train"]["class_weight"] == "none" and record.config["train"]["sampler"] == "shuffle"
        assert record.migrations[0]["from_id"] in {p.name for p in (OLD / "runs").iterdir()}
        assert record.files["history.csv"]["shipped"] and len(record.files["history.csv"]["sha256"]) == 64
        assert record.metrics == json.loads((OLD / "runs" / record.migrations[0]["from_id"] / "run.json").read_text())["metrics"]


def test_migrating_twice_changes_nothing(old_results, capsys):
    migrate(old_results)
    before = {p: p.read_bytes() for p in sorted(old_results.rglob("*")) if p.is_file()}
    outcome = migrate(old_results)
    assert not outcome.migrated and len(outcome.current) == 3
    assert {p: p.read_bytes() for p in sorted(old_results.rglob("*")) if p.is_file()} == before


def test_foreign_and_corrupt_records_are_skipped_with_a_warning_and_left_as_they_are(old_results):
    corrupt, foreign = old_results / "runs" / "corrupt", old_results / "runs" / "foreign"
    corrupt.mkdir()
    foreign.mkdir()
    (corrupt / "run.json").write_text("{not json")
    (foreign / "run.json").write_text(json.dumps({"experiment": "someone else's"}))
    with pytest.warns(UserWarning, match="corrupt/run.json"):
        outcome = migrate(old_results)
    assert len(outcome.skipped) == 2 and len(outcome.migrated) == 3
    assert (corrupt / "run.json").read_text() == "{not json"


def test_a_record_whose_new_id_is_taken_is_left_as_it_is_and_named(old_results, capsys):
    first = sorted((old_results / "runs").iterdir())[0]
    twin = old_results / "runs" / f"{first.name}-copy"
    shutil.copytree(first, twin)
    data = json.loads((twin / "run.json").read_text())
    (twin / "run.json").write_text(json.dumps({**data, "run_id": twin.name}))
    assert main(["migrate", str(old_results)]) == 1
    captured = capsys.readouterr()
    assert "is taken by another run folder" in captured.err and "1 left as they are" in captured.out
    assert json.loads((twin / "run.json").read_text())["schema"] == 2


def test_a_kill_between_writing_the_record_and_renaming_its_folder_is_finished_next_time(old_results, monkeypatch):
    def killed(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(migrate_module.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        migrate(old_results)
    halfway = [p for p in (old_results / "runs").iterdir() if json.loads((p / "run.json").read_text())["run_id"] != p.name]
    assert len(halfway) == 1  # the record names its new id; its folder still has the old name
    assert len(load_runs(old_results)) == 3  # every record still reads
    monkeypatch.undo()
    outcome = migrate(old_results)
    assert len(outcome.migrated) == 3 and not outcome.refused
    assert all(record.run_id == record.directory.name for record in load_runs(old_results))


def test_migrate_on_a_folder_without_runs_is_one_line(tmp_path, capsys):
    assert main(["migrate", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


BUDGET = Path(__file__).parent / "data" / "records-19e16fa-budget"  # two real 10k-budget runs of the cross-paradigm sweep


def test_a_budget_run_keeps_its_place_only_where_the_floors_fit_it_the_same_widths(tmp_path):
    """Made at 19e16fa (before floors): the LSTM's fitted width is the same under the floors, so it
    is today's run; the MLP's second layer was 2 units (now 8): it stays a run of the old rule."""
    shutil.copytree(BUDGET / "runs", tmp_path / "runs")
    assert len(migrate(tmp_path).migrated) == 2
    records = {record.identity[1]: record for record in load_runs(tmp_path)}
    lstm, mlp = records["lstm"], records["mlp"]
    assert lstm.params["asked"] == {"hidden_size": 40} and lstm.config["sizing"] == "floors"
    assert mlp.params["asked"] == {"hidden": [1024, 128]} and mlp.config["sizing"] == "scaled"
    today = {"dataset": {"name": "breast"}, "params": "10k", "train": {"epochs": 15, "lr": 1.0e-3}}
    from neurocomp.core.config import resolve

    asked = resolve({**today, "model": {"name": "lstm", "readout": "last"}, "encoder": "rows"}).to_dict()
    assert run_id(asked) == lstm.run_id  # it read the last step then; today's default readout is another run
    assert run_id(resolve({**today, "model": "mlp", "encoder": "static"}).to_dict()) != mlp.run_id
    assert run_id(resolve({**today, "model": "mlp", "encoder": "static", "sizing": "scaled"}).to_dict()) == mlp.run_id
