"""An ablation sweep's report: variants ranked by a validation metric, averaged over seeds within each
set and then over sets, against the first variant (the defaults), with a figure."""

import statistics

import pytest
import yaml

from neurocomp.analysis.ablation import ablation_results
from neurocomp.analysis.report import write_report
from neurocomp.cli import main
from neurocomp.core.errors import UsageError
from neurocomp.runs.record import load_runs
from neurocomp.runs.sweep import load_sweep

from conftest import make_npz


def _sweep(tmp_path, **extra):
    sets = [str(make_npz(tmp_path / f"set{index}.npz", seed=index)) for index in range(2)]
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump({
        "title": "toy ablation", "ablation": "val.auc", **extra,
        "base": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1}},
        "variants": [{}, {"model.hidden": [16]}, {"train.lr": 0.01}],
        "grid": {"dataset.name": sets, "train.seed": [0, 1]},
    }))
    return path, sets


def test_the_variants_are_ranked_by_the_mean_over_sets_of_the_mean_over_seeds(tmp_path):
    path, sets = _sweep(tmp_path)
    out = tmp_path / "results"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    runs = load_runs(out)
    results = ablation_results(load_sweep(path), {run.run_id: run for run in runs})
    assert [result.label for result in results] == ["base", "hidden=[16]", "lr=0.01"]
    defaults = [run for run in runs if run.config["model"]["hidden"] == [8] and run.config["train"]["lr"] == 1e-3]
    by_set = [statistics.mean(run.metrics["val"]["auc"] for run in defaults if run.config["dataset"]["name"] == s)
              for s in sets]
    assert results[0].mean == pytest.approx(statistics.mean(by_set))
    assert all(n == 2 for _, _, n in results[0].per_dataset.values())

    report = write_report([str(path)], out, tmp_path / "ABLATION.md", ("val.auc",), title="toy")
    text = report.read_text()
    assert "Ranked by val.auc" in text and "| hidden=[16]" in text and "vs base" in text
    assert "test.auc" not in text.split("## toy ablation")[1]  # an ablation ranks on validation only
    assert (tmp_path / "figures" / "ablation-ablation.png").exists()


def test_an_ablation_ranked_by_a_test_metric_is_refused(tmp_path):
    path, _ = _sweep(tmp_path, ablation="test.auc")
    with pytest.raises(UsageError, match="validation metric"):
        load_sweep(path)
