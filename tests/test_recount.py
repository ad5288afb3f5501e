"""`neurocomp recount`: older records gain the cost estimates they lack, from their saved weights."""

import json

from neurocomp.cli import main

NEW_FIELDS = ("memory_accesses", "energy_with_memory_pj")


def _train(npz, out, model="snn"):
    assert main(["run", str(npz), "--model", model, "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    return next(out.glob("runs/*/run.json"))


def _strip(path):
    """The record as it was before the estimate with memory accesses existed."""
    record = json.loads(path.read_text())
    original = dict(record["cost"])
    for key in NEW_FIELDS:
        del record["cost"][key]
    path.write_text(json.dumps(record))
    return original


def test_an_old_record_gains_the_estimate_it_would_have_had(npz_2d, tmp_path, capsys):
    path = _train(npz_2d, tmp_path)
    original = _strip(path)
    assert main(["recount", str(tmp_path)]) == 0
    assert "1 recounted" in capsys.readouterr().out
    cost = json.loads(path.read_text())["cost"]
    assert {key: cost[key] for key in NEW_FIELDS} == {key: original[key] for key in NEW_FIELDS}
    assert cost["recounted"]
    assert main(["recount", str(tmp_path)]) == 0  # nothing left to add
    assert "0 recounted, 1 had every estimate" in capsys.readouterr().out


def test_a_recount_that_disagrees_with_the_record_is_not_written(npz_2d, tmp_path, capsys):
    path = _train(npz_2d, tmp_path, model="cnn")
    _strip(path)
    record = json.loads(path.read_text())
    record["cost"]["macs"] *= 2  # counted some other way than this code counts
    path.write_text(json.dumps(record))
    assert main(["recount", str(tmp_path)]) == 1
    assert "the recount gives macs" in capsys.readouterr().err
    assert json.loads(path.read_text()) == record


def test_recount_of_an_empty_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["recount", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
