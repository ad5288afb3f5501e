"""The run record: one typed object that reads today's and older run.json files, refuses what is not
one with a single line, and keeps what it does not know when it rewrites a record."""

import json

import pytest

from neurocomp.cli import main
from neurocomp.core.errors import UsageError
from neurocomp.runs.record import SCHEMA, RunRecord, code_version, load_runs

CONFIG = {"dataset": {"name": "breast"}, "model": {"name": "cnn"}, "encoder": {"name": "static"},
          "train": {"seed": 1}, "out": "results"}
# A completed record as the suite wrote them before the schema was versioned (schema 1).
SCHEMA_1 = {
    "run_id": "breast-cnn-static-s1-0123abcd", "status": "completed", "config": CONFIG,
    "dataset": {"name": "breast", "positive": 0, "positive_name": "malignant", "class_names": ["malignant", "benign"]},
    "params": {"trainable": 1000, "total": 1000, "target": None},
    "model": {"backend": ["native"], "fused_blocks": [0, 1]},
    "metrics": {"val": {"auc": 0.8}, "test": {"auc": 0.9, "accuracy": 0.8}},
    "seed": 1, "device": "cpu", "epoch_time_s": 1.5,
}


def write(root, name, data):
    folder = root / "runs" / name
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(data))
    return folder


def test_a_schema_1_record_loads_and_keeps_its_values(tmp_path):
    record = RunRecord.read(write(tmp_path, "old", SCHEMA_1))
    assert record.schema == 1 and record.identity == ("breast", "cnn", "static", 1)
    assert record.value("test.auc") == 0.9 and record.value("params") == 1000 and record.value("epoch_time_s") == 1.5
    assert record.model["fused_blocks"] == [0, 1]


def test_round_trip_keeps_unknown_keys(tmp_path):
    data = {**SCHEMA_1, "schema": SCHEMA, "note": "from a later tool"}
    folder = write(tmp_path, "r", data)
    record = RunRecord.read(folder)
    assert record.extra == {"note": "from a later tool"}
    record.write()
    assert json.loads((folder / "run.json").read_text()) == {**RunRecord.from_dict(data).to_dict()}
    assert RunRecord.read(folder) == record


@pytest.mark.parametrize("data, message", [
    ({**SCHEMA_1, "schema": SCHEMA + 1}, "newer than this neurocomp reads"),
    ({**SCHEMA_1, "config": {}}, "lacks config.dataset.name"),
    ({**SCHEMA_1, "status": "done"}, "needs run_id and a status"),
    ({**SCHEMA_1, "metrics": None}, "says completed but has no metrics"),
    ([1, 2], "not a JSON object"),
])
def test_what_is_not_a_record_is_refused_in_one_line(tmp_path, data, message):
    with pytest.raises(UsageError, match=message) as error:
        RunRecord.read(write(tmp_path, "bad", data))
    assert "\n" not in str(error.value)


def test_a_table_over_one_valid_and_one_partial_record_tabulates_the_valid_one(tmp_path, capsys):
    write(tmp_path, "good", SCHEMA_1)
    write(tmp_path, "partial", {"run_id": "partial", "status": "completed", "config": {}})
    with pytest.warns(UserWarning, match="lacks config.dataset.name"):
        assert [run.run_id for run in load_runs(tmp_path)] == ["breast-cnn-static-s1-0123abcd"]
    with pytest.warns(UserWarning):
        assert main(["table", str(tmp_path), "--metric", "test.auc"]) == 0
    assert "0.9000" in capsys.readouterr().out


def test_code_version_names_a_commit_or_says_it_cannot():
    code = code_version()
    assert set(code) == {"commit", "dirty"}
    assert code["commit"] is None or (len(code["commit"]) == 40 and isinstance(code["dirty"], bool))
