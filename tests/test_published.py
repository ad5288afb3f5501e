"""``neurocomp report --all [--check]``: every listed report regenerated from its records, and a
committed report, manifest or record file that drifts from them is found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import make_npz
from neurocomp.cli import main
from neurocomp.runs.record import load_runs

REPORTS = """reports:
  - output: results/TINY.md
    title: Tiny study
    sweeps: [tiny.yaml]
    metric: [test.auc, test.accuracy]
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A project folder: a tiny sweep (cnn, mlp; two seeds), its records and results/reports.yaml."""
    root = tmp_path_factory.mktemp("project")
    make_npz(root / "tiny.npz")
    (root / "tiny.yaml").write_text(
        "title: Tiny study\nbase: {dataset: {name: tiny.npz}, train: {epochs: 1, batch_size: 32}}\n"
        "variants:\n  - {model.name: cnn}\n  - {model.name: mlp}\ngrid: {train.seed: [0, 1]}\n"
        "description: The CNN reaches AUC {cnn:test.auc:pm} over {cnn:n} seeds.\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["sweep", "tiny.yaml", "--out", "results", "--quiet"]) == 0
    (root / "results" / "reports.yaml").write_text(REPORTS)
    return root


@pytest.fixture
def project(trained, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the trained project, as the working folder, with the code seen as committed
    (a developer's tree has uncommitted changes; CI's clean clone has none)."""
    copy = tmp_path / "project"
    shutil.copytree(trained, copy)
    monkeypatch.chdir(copy)
    monkeypatch.setattr("neurocomp.analysis.report.uncommitted_sources", lambda: [])
    return copy


def test_regenerated_reports_pass_the_check_and_a_drift_is_shown(project, capsys):
    assert main(["report", "--all"]) == 0
    text = (project / "results" / "TINY.md").read_text()
    assert "## Tiny study" in text and "4 of 4 runs recorded" in text and "over 2 seeds" in text
    manifest = (project / "results" / "MANIFEST.csv").read_text().splitlines()
    assert manifest[0] == "run_id,status,file,bytes,sha256,shipped" and len(manifest) == 1 + 4 * 4
    capsys.readouterr()
    assert main(["report", "--all", "--check"]) == 0
    assert "matches" in capsys.readouterr().out

    (project / "results" / "TINY.md").write_text(text.replace("over 2 seeds", "over 3 seeds"))
    assert main(["report", "--all", "--check"]) == 1
    out = capsys.readouterr().out
    assert "-The CNN reaches" in out and "+The CNN reaches" in out and "over 2 seeds" in out


def test_the_check_finds_a_record_file_that_is_not_what_the_record_hashed(project, capsys):
    assert main(["report", "--all"]) == 0
    run = load_runs(project / "results")[0]
    (run.directory / "history.csv").write_text((run.directory / "history.csv").read_text() + "\n")
    capsys.readouterr()
    assert main(["report", "--all", "--check"]) == 1
    assert f"runs/{run.run_id}/history.csv: sha256 differs" in capsys.readouterr().out


def test_the_check_writes_nothing(project):
    assert main(["report", "--all"]) == 0
    before = {p: p.stat().st_mtime_ns for p in project.rglob("*") if p.is_file()}
    main(["report", "--all", "--check"])
    assert {p: p.stat().st_mtime_ns for p in project.rglob("*") if p.is_file()} == before


def test_missing_records_are_one_line_and_exit_2(project, capsys):
    shutil.rmtree(load_runs(project / "results")[0].directory)
    assert main(["report", "--all", "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results/TINY.md: 1 runs of its sweeps have no completed record" in err


def test_no_reports_list_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--all", "--check", "--results", "nowhere"]) == 2
    assert "reports.yaml does not exist" in capsys.readouterr().err


def test_a_report_from_uncommitted_code_is_refused_unless_allowed_and_then_marked(project, capsys, monkeypatch):
    monkeypatch.setattr("neurocomp.analysis.report.uncommitted_sources", lambda: ["neurocomp/table.py"])
    assert main(["report", "--all"]) == 2
    assert "uncommitted changes to neurocomp/table.py" in capsys.readouterr().err
    assert main(["report", "--all", "--allow-dirty"]) == 0
    assert "uncommitted changes to code or configs (`--allow-dirty`)" in (project / "results" / "TINY.md").read_text()
    monkeypatch.setattr("neurocomp.analysis.report.uncommitted_sources", lambda: [])
    assert main(["report", "--all"]) == 0
    assert "--allow-dirty" not in (project / "results" / "TINY.md").read_text()


def test_report_needs_sweeps_or_all_and_check_needs_all(project, capsys):
    assert main(["report"]) == 2
    assert main(["report", "tiny.yaml", "--check"]) == 2
    assert "add --all" in capsys.readouterr().err
