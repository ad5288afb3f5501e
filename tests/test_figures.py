"""The per-dataset figures: metric vs parameter budget, metric vs energy with its Pareto front, and one
style per paradigm in every figure."""

from pathlib import Path

from neurocomp.cli import main
from neurocomp.analysis.plots import _pareto_front, style

from conftest import make_npz


def test_the_pareto_front_keeps_what_nothing_beats_on_cost_and_value():
    points = [(1.0, 0.70), (2.0, 0.65), (3.0, 0.80), (3.0, 0.75), (5.0, 0.80), (8.0, 0.90)]
    assert _pareto_front(points, lower_better=False) == [(1.0, 0.70), (3.0, 0.80), (8.0, 0.90)]
    assert _pareto_front([(1.0, 0.3), (2.0, 0.1), (3.0, 0.2)], lower_better=True) == [(1.0, 0.3), (2.0, 0.1)]


def test_a_model_has_one_style_everywhere_and_models_differ():
    assert style("cnn") == style("cnn")
    assert style("cnn")["color"] != style("mlp")["color"]
    assert style("snn")["marker"] == style("alif")["marker"] != style("lstm")["marker"]  # marker = family


def test_budget_and_pareto_figures_draw_one_panel_per_dataset(tmp_path, capsys):
    out = tmp_path / "res"
    for seed in (0, 1):
        data = make_npz(tmp_path / f"set{seed}.npz", seed=seed)
        for model in ("mlp", "gru"):
            for budget in ("8k", "20k"):
                assert main(["run", str(data), "--model", model, "--params", budget, "--epochs", "1", "--out", str(out),
                             "--quiet"]) == 0
    for kind in ("budgets", "pareto"):
        figure = tmp_path / f"{kind}.svg"
        assert main(["plot", str(out), "--kind", kind, "--output", str(figure)]) == 0
        text = figure.read_text()
        assert text.count("set0") >= 1 and text.count("set1") >= 1  # a panel title per dataset
    assert "20k" in (tmp_path / "budgets.svg").read_text()  # budgets labelled as budgets, not 2x10^4
    assert "Pareto front" in (tmp_path / "pareto.svg").read_text()


def test_a_model_fed_differently_per_dataset_is_one_series(tmp_path):
    from neurocomp.analysis.plots import _series
    from neurocomp.runs.record import load_runs

    out = tmp_path / "res"
    flat, volumes = make_npz(tmp_path / "flat.npz"), make_npz(tmp_path / "volumes.npz", image_shape=(16, 16, 16), sizes=(32, 8, 8))
    for data, encoder in ((flat, "static"), (volumes, "slices"), (flat, "rows")):
        model = "gru" if encoder == "rows" else "mlp"
        assert main(["run", str(data), "--model", model, "--encoder", encoder, "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert main(["run", str(flat), "--model", "gru", "--encoder", "columns", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    labels = {(Path(dataset).stem, label) for dataset, label in _series(load_runs(out), "params", "test.auc")}
    assert labels == {("flat", "mlp"), ("volumes", "mlp"), ("flat", "gru rows"), ("flat", "gru columns")}


def test_a_report_of_a_sweep_over_datasets_ranks_the_models_and_draws_the_panels(tmp_path):
    import yaml

    # Enough images and steps that no model predicts one class (it would be left out of the ranks).
    sets = [str(make_npz(tmp_path / f"set{seed}.npz", seed=seed, sizes=(256, 64, 64))) for seed in (0, 1)]
    sweep = tmp_path / "across.yaml"
    sweep.write_text(yaml.safe_dump({"base": {"train": {"epochs": 5, "lr": 3.0e-3, "batch_size": 16},
                                              "out": str(tmp_path / "res")},
                                     "variants": [{"model.name": m} for m in ("cnn", "gru", "lstm")],
                                     "grid": {"dataset.name": sets, "train.seed": [0]}}))
    assert main(["sweep", str(sweep), "--quiet"]) == 0
    report = tmp_path / "B.md"
    assert main(["report", str(sweep), "--results", str(tmp_path / "res"), "--output", str(report), "--allow-dirty"]) == 0
    text = report.read_text()
    assert "### Ranks across datasets" in text and "Friedman's test" in text
    for figure in ("across-budgets.png", "across-pareto.png", "across-ranks-all.png"):
        assert (tmp_path / "figures" / figure).exists() and f"figures/{figure}" in text
        assert (tmp_path / "figures" / figure).with_suffix(".svg").exists()
