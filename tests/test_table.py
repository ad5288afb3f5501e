"""Tables, plots and the report, built only from run records (hand-made ones where values matter)."""

import json

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.runs.record import RunRecord, load_runs
from neurocomp.analysis.table import _auc_rows, build_table, paired_auc_difference, render


def fake_run(root, run_id, *, model="cnn", seed=0, auc=0.9, accuracy=0.8, predicted_classes=2, params=1000,
             lr=0.001, probabilities=None, labels=None):
    run_dir = root / "runs" / run_id
    run_dir.mkdir(parents=True)
    record = {
        "run_id": run_id,
        "status": "completed",
        "config": {"dataset": {"name": "breast"}, "model": {"name": model}, "encoder": {"name": "static"},
                   "train": {"seed": seed, "lr": lr}, "out": str(root)},
        "dataset": {"positive": 0, "positive_name": "malignant"},
        "params": {"trainable": params, "total": params},
        "metrics": {"test": {"auc": auc, "accuracy": accuracy, "predicted_classes": predicted_classes}},
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    if probabilities is not None:
        np.savez(run_dir / "predictions.npz", test_labels=labels, test_probabilities=probabilities)
    return run_dir


def test_cells_are_mean_and_sample_std_over_seeds(tmp_path):
    for seed, auc in enumerate([0.80, 0.90, 1.00]):
        fake_run(tmp_path, f"cnn-{seed}", seed=seed, auc=auc, accuracy=0.5 + 0.1 * seed)
    fake_run(tmp_path, "mlp-0", model="mlp", auc=0.7, accuracy=0.9, params=5000)
    headers, rows, best = build_table(load_runs(tmp_path), ("test.auc", "test.accuracy", "params"))
    cnn, mlp = rows
    assert cnn[headers.index("n")] == 3
    assert cnn[headers.index("test.auc")] == "0.9000 ± 0.1000"  # mean .9, sample std .1
    assert cnn[headers.index("test.accuracy")] == "0.6000 ± 0.1000"
    assert mlp[headers.index("test.auc")] == "0.7000"  # one seed: no std
    assert mlp[headers.index("params")] == "5,000"
    assert (0, headers.index("test.auc")) in best and (1, headers.index("test.accuracy")) in best
    assert "**0.9000 ± 0.1000**" in render(headers, rows, best, "markdown")
    assert "\\textbf{0.9000 ± 0.1000}" in render(headers, rows, best, "latex")
    assert render(headers, rows, best, "csv").splitlines()[1].startswith("breast,cnn,static,,3,0 (malignant),0.9000 ± 0.1000")


def test_rows_differing_in_a_setting_get_a_variant_label(tmp_path):
    fake_run(tmp_path, "a", lr=0.01)
    fake_run(tmp_path, "b", lr=0.001)
    _, rows, _ = build_table(load_runs(tmp_path), ("test.auc",))
    assert sorted(row[3] for row in rows) == ["lr=0.001", "lr=0.01"]


def test_one_class_predictors_are_flagged(tmp_path):
    fake_run(tmp_path, "a", seed=0, predicted_classes=1)
    fake_run(tmp_path, "b", seed=1, predicted_classes=2)
    headers, rows, _ = build_table(load_runs(tmp_path), ("test.auc",))
    assert rows[0][headers.index("flags")] == "one class predicted in 1/2"


def test_reported_rows_sit_next_to_reproduced(tmp_path):
    fake_run(tmp_path, "a")
    reported = [{"dataset": "breast", "model": "cnn", "label": "paper", "metrics": {"test.auc": 0.95}}]
    headers, rows, _ = build_table(load_runs(tmp_path), ("test.auc", "test.accuracy"), reported=reported)
    assert rows[1][3] == "reported: paper"
    assert rows[1][headers.index("test.auc")] == "0.9500" and rows[1][headers.index("test.accuracy")] == ""


def test_corrupt_and_foreign_records_are_skipped_with_a_warning(tmp_path, capsys):
    fake_run(tmp_path, "good")
    (tmp_path / "runs" / "corrupt").mkdir()
    (tmp_path / "runs" / "corrupt" / "run.json").write_text("{ half a record")
    (tmp_path / "runs" / "foreign").mkdir()
    (tmp_path / "runs" / "foreign" / "run.json").write_text(json.dumps({"accuracy": 0.99}))
    with pytest.warns(UserWarning) as caught:
        runs = load_runs(tmp_path)
    assert [r.run_id for r in runs] == ["good"]
    messages = " ".join(str(w.message) for w in caught)
    assert "corrupt/run.json" in messages and "foreign/run.json" in messages
    assert main(["table", str(tmp_path), "--metric", "test.auc"]) == 0
    assert "breast" in capsys.readouterr().out


def test_paired_bootstrap_of_the_auc_difference(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    good = np.where(labels == 0, 0.8, 0.2) + rng.normal(0, 0.1, 200)  # class 0 (positive) scores high
    noisy = rng.random(200)
    for seed in (0, 1):
        fake_run(tmp_path, f"good-{seed}", model="cnn", seed=seed, labels=labels,
                 probabilities=np.stack([good.clip(0, 1), 1 - good.clip(0, 1)], 1))
        fake_run(tmp_path, f"noise-{seed}", model="mlp", seed=seed, labels=labels,
                 probabilities=np.stack([noisy, 1 - noisy], 1))
    runs = load_runs(tmp_path)
    cnn = [r for r in runs if r.config["model"]["name"] == "cnn"]
    mlp = [r for r in runs if r.config["model"]["name"] == "mlp"]
    difference, low, high = paired_auc_difference(mlp, cnn)
    assert low < difference < high < 0  # the noisy model is clearly worse
    same, low, high = paired_auc_difference(cnn, cnn)
    assert (same, low, high) == (0.0, 0.0, 0.0)
    headers, rows, _ = build_table(runs, ("test.auc",), reference="cnn")
    column = headers.index("ΔAUC vs cnn [95% CI]")
    assert rows[0][column] == "reference" and rows[1][column].startswith("-")


def two_models(tmp_path, seeds, scores):
    """Runs of a cnn and an mlp per seed on one 200-case test set; ``scores(seed)`` gives both
    models' positive-class scores."""
    labels = np.repeat([0, 1], 100)
    for seed in seeds:
        for model, score in zip(("cnn", "mlp"), scores(seed)):
            fake_run(tmp_path, f"{model}-{seed}", model=model, seed=seed, labels=labels,
                     probabilities=np.stack([score, 1 - score], 1))
    runs = load_runs(tmp_path)
    return [r for r in runs if r.identity[1] == "mlp"], [r for r in runs if r.identity[1] == "cnn"]


def fixed_scores(seed):
    rng = np.random.default_rng(7)  # the same predictions whatever the training seed
    labels = np.repeat([0, 1], 100)
    return (np.where(labels == 0, 0.7, 0.3) + rng.normal(0, 0.25, 200)).clip(0, 1), rng.random(200)


def test_seeds_on_one_test_set_do_not_narrow_the_interval(tmp_path):
    # Four seeds that predict identically carry the information of one: the test cases are resampled
    # once per replicate for all of them, so the interval is that of one seed. Resampling the cases
    # independently per seed (the old way) narrows it by about sqrt(4) = 2, a false precision.
    one = paired_auc_difference(*two_models(tmp_path / "one", [0], fixed_scores))
    four_mlp, four_cnn = two_models(tmp_path / "four", [0, 1, 2, 3], fixed_scores)
    four = paired_auc_difference(four_mlp, four_cnn)
    assert four == pytest.approx(one)
    mine, theirs = four_mlp[0].predictions()[1][:, 0], four_cnn[0].predictions()[1][:, 0]
    positive = four_mlp[0].predictions()[0] == 0
    rng = np.random.default_rng(0)
    independent = np.mean([_auc_rows(positive[i], mine[i]) - _auc_rows(positive[i], theirs[i])
                           for i in (rng.integers(0, 200, size=(2000, 200)) for _ in range(4))], axis=0)
    narrow = np.diff(np.percentile(independent, [2.5, 97.5]))[0]
    assert four[2] - four[1] > 1.6 * narrow


def test_the_spread_between_seeds_widens_the_interval(tmp_path):
    # Seed 0 finds the mlp much better, seed 1 much worse, each on an almost noiseless test set:
    # resampling the seeds must let the interval reach both.
    labels = np.repeat([0, 1], 100)
    clean = np.where(labels == 0, 0.9, 0.1)
    blurred = np.where(labels == 0, 0.55, 0.45) + np.random.default_rng(1).normal(0, 0.2, 200)
    _, low, high = paired_auc_difference(*two_models(tmp_path, [0, 1], lambda seed: (
        (blurred.clip(0, 1), clean) if seed == 0 else (clean, blurred.clip(0, 1)))))
    assert low < -0.1 and high > 0.1


def test_no_records_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    assert main(["table", str(tmp_path)]) == 2
    assert "no completed run records" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained_results(tmp_path_factory):
    """Real records from tiny runs: an SNN, an LTC and a CNN, two seeds each."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from conftest import make_npz

    root = tmp_path_factory.mktemp("trained")
    npz = make_npz(root / "tiny.npz")
    sweep = root / "s.yaml"
    sweep.write_text(
        f"base: {{dataset: {{name: {npz}}}, train: {{epochs: 2, batch_size: 32}}}}\n"
        "variants:\n  - {model.name: snn, encoder.steps: 4}\n  - {model.name: ltc, model.units: 8}\n  - {model.name: cnn}\n"
        "grid: {train.seed: [0, 1]}\n"
    )
    assert main(["sweep", str(sweep), "--out", str(root / "res"), "--quiet"]) == 0
    return root


@pytest.mark.parametrize("kind", ["params-vs-metric", "curves", "roc", "reliability", "spikes", "wiring"])
def test_every_plot_kind_draws_from_records(kind, trained_results, capsys):
    output = trained_results / "figures" / f"{kind}.png"
    assert main(["plot", str(trained_results / "res"), "--kind", kind, "--output", str(output)]) == 0
    assert output.stat().st_size > 5_000 and output.read_bytes()[:4] == b"\x89PNG"


def test_spike_rates_are_recorded_for_spiking_runs(trained_results):
    [snn] = [r for r in load_runs(trained_results / "res") if r.config["model"]["name"] == "snn"][:1]
    rates = snn.model["spike_rates"]
    assert len(rates) == 3 and all(0.0 <= r <= 1.0 for r in rates)


def test_report_puts_reported_and_reproduced_side_by_side(trained_results, capsys):
    reported = trained_results / "reported.yaml"
    reported.write_text("rows:\n  - {dataset: tiny, model: snn, label: paper, metrics: {test.accuracy: 0.5}}\n")
    sweep = trained_results / "s.yaml"
    sweep.write_text(sweep.read_text() + "title: Tiny study\nreported: reported.yaml\n"
                     "description: Why it differs; SNN accuracy {snn:test.accuracy:pm} (paper {reported snn:test.accuracy}).\n")
    output = trained_results / "REPORT.md"
    assert main(["report", str(sweep), "--results", str(trained_results / "res"), "--output", str(output), "--allow-dirty"]) == 0
    text = output.read_text()
    assert "## Tiny study" in text and "6 of 6 runs recorded" in text and "reported: paper" in text
    snn = [r.value("test.accuracy") for r in load_runs(trained_results / "res") if r.identity[1] == "snn"]
    figure = f"{np.mean(snn):.3f} +- {np.std(snn, ddof=1):.3f}".replace("0.", ".")
    assert f"Why it differs; SNN accuracy {figure} (paper .500)." in text and "figures/s-params-vs-auc.png" in text
    assert (trained_results / "figures" / "s-params-vs-auc.png").exists()


def test_table_formats_and_unknown_plot_kind(trained_results, capsys):
    for fmt in ("markdown", "github", "latex", "csv", "plain"):
        assert main(["table", str(trained_results / "res"), "--format", fmt, "--reference", "cnn"]) == 0
    assert "ΔAUC vs cnn" in capsys.readouterr().out
    assert main(["plot", str(trained_results / "res"), "--kind", "pie"]) == 2
    assert "invalid choice: 'pie'" in capsys.readouterr().err


def test_nan_metrics_do_not_break_the_mean(tmp_path):
    fake_run(tmp_path, "a", seed=0, auc=float("nan"))
    fake_run(tmp_path, "b", seed=1, auc=0.8)
    headers, rows, _ = build_table(load_runs(tmp_path), ("test.auc",))
    assert rows[0][headers.index("test.auc")] == "0.8000"


def test_a_one_class_row_never_wins_a_column(tmp_path):
    fake_run(tmp_path, "benign-only", model="cnn", auc=0.5, accuracy=0.9, predicted_classes=1)
    fake_run(tmp_path, "real", model="mlp", auc=0.8, accuracy=0.7)
    fake_run(tmp_path, "weaker", model="snn", auc=0.7, accuracy=0.6)
    headers, rows, best = build_table(load_runs(tmp_path), ("test.auc", "test.accuracy"))
    assert rows[0][1] == "cnn" and "one class" in rows[0][headers.index("flags")]
    assert (0, headers.index("test.accuracy")) not in best  # its 0.9 is no achievement
    assert best == [(1, headers.index("test.auc")), (1, headers.index("test.accuracy"))]


def test_rows_say_which_code_and_kernel_path_made_them(tmp_path):
    for seed, (commit, path) in enumerate([("a" * 40, "native lif"), ("b" * 40, "library")]):
        run_dir = fake_run(tmp_path, f"snn-{seed}", model="snn", seed=seed)
        record = json.loads((run_dir / "run.json").read_text())
        record.update(code={"commit": commit, "dirty": seed == 1},
                      model={"kernels": [{"where": "spiking layer 0", "path": path, "reason": ""}]})
        (run_dir / "run.json").write_text(json.dumps(record))
    headers, rows, _ = build_table(load_runs(tmp_path), ("test.auc",))
    assert rows[0][headers.index("path")] == "mixed: library, native"
    assert rows[0][headers.index("code")] == "mixed: aaaaaaa, bbbbbbb+dirty"
    fake_run(tmp_path, "cnn-0", model="cnn")
    headers, rows, _ = build_table(load_runs(tmp_path), ("test.auc",))
    assert [row[headers.index("path")] for row in rows if row[1] == "cnn"] == ["-"]


def test_each_budget_is_compared_with_the_reference_at_that_budget():
    from neurocomp.analysis.table import Group, reference_group

    cnn = {budget: Group("breast", "cnn", "static", {"params": budget}) for budget in (10_000, 40_000)}
    mlp_40k, mlp_20k = (Group("breast", "mlp", "static", {"params": budget}) for budget in (40_000, 20_000))
    only = Group("retina", "cnn", "static", {})
    groups = [*cnn.values(), mlp_40k, mlp_20k, only]
    assert reference_group(mlp_40k, groups, "cnn") is cnn[40_000]
    assert reference_group(mlp_20k, groups, "cnn") is None  # no reference row at 20k: no comparison
    assert reference_group(Group("retina", "mlp", "static", {"params": 5}), groups, "cnn") is only


def test_a_row_at_chance_or_one_class_is_kept_off_the_pareto_front(tmp_path):
    from neurocomp.analysis.table import Group, auc_interval, off_the_front

    def record(name, scores, predicted=2):
        folder = tmp_path / name
        folder.mkdir()
        labels = np.array([0, 1] * 50)
        probabilities = np.stack([1 - scores, scores], axis=1)
        np.savez(folder / "predictions.npz", test_labels=labels, test_probabilities=probabilities)
        config = {"dataset": {"name": "d"}, "model": {"name": "m"}, "encoder": {"name": "e"}, "train": {"seed": 0}}
        return RunRecord(run_id=name, status="completed", config=config, dataset={"positive": 1},
                         metrics={"test": {"predicted_classes": predicted}}, directory=folder)

    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 50)
    good = record("good", np.clip(labels * 0.6 + rng.random(100) * 0.4, 0, 1))
    noise = record("noise", rng.random(100))
    collapsed = record("collapsed", np.clip(labels * 0.6 + rng.random(100) * 0.4, 0, 1), predicted=1)
    assert auc_interval([good])[1] > 0.5 and off_the_front(Group("d", "m", "e", {}, [good])) is None
    low, high = auc_interval([noise])[1:]
    assert low < 0.5 < high and "contains .5" in off_the_front(Group("d", "m", "e", {}, [noise]))
    assert "one class" in off_the_front(Group("d", "m", "e", {}, [collapsed]))


def test_a_multi_class_row_gets_a_macro_auc_interval_matching_scikit_learn(tmp_path):
    from sklearn.metrics import roc_auc_score

    from neurocomp.analysis.table import auc_interval

    rng = np.random.default_rng(1)
    labels = np.arange(90) % 3

    def record(name, seed, sharpness):
        folder = tmp_path / f"{name}{seed}"
        folder.mkdir()
        logits = sharpness * np.eye(3)[labels] + rng.normal(size=(90, 3))
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.savez(folder / "predictions.npz", test_labels=labels, test_probabilities=probabilities)
        config = {"dataset": {"name": "retina"}, "model": {"name": name}, "encoder": {"name": "e"}, "train": {"seed": seed}}
        run = RunRecord(run_id=f"{name}{seed}", status="completed", config=config, dataset={"positive": None},
                        metrics={"test": {}}, directory=folder)
        return run, roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")

    better = [record("cnn", seed, 2.0) for seed in (0, 1)]
    worse = [record("mlp", seed, 0.5) for seed in (0, 1)]
    difference, low, high = paired_auc_difference([run for run, _ in better], [run for run, _ in worse])
    expected = np.mean([a - b for (_, a), (_, b) in zip(better, worse)])
    assert difference == pytest.approx(expected) and low < difference < high and low > 0
    mean, low, high = auc_interval([run for run, _ in better])
    assert mean == pytest.approx(np.mean([auc for _, auc in better])) and low < mean < high


def test_a_report_that_fails_on_a_placeholder_leaves_no_file(trained_results, capsys):
    sweep = trained_results / "typo.yaml"
    sweep.write_text((trained_results / "s.yaml").read_text().split("title:")[0]
                     + "title: Typo\ndescription: The CNN reaches {cnn:test.aucc}.\n")
    output = trained_results / "typo" / "REPORT.md"
    assert main(["report", str(sweep), "--results", str(trained_results / "res"), "--output", str(output),
                 "--allow-dirty"]) == 2
    assert "no run of that row has test.aucc" in capsys.readouterr().err
    assert not (trained_results / "typo").exists()


@pytest.mark.parametrize("quantity, lower", [
    ("val.loss", True), ("loss", True), ("test.brier", True), ("ece", True), ("params", True),
    ("params.trainable", True), ("cost.energy_pj", True), ("epoch_time_s", True),
    ("val.auc", False), ("test.accuracy", False), ("gmean", False),
])
def test_one_rule_says_which_quantities_are_better_lower(quantity, lower):
    from neurocomp.core.quantities import lower_is_better

    assert lower_is_better(quantity) is lower
