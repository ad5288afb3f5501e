"""Cross-dataset ranks: average ranks, Friedman's statistic and Nemenyi's critical difference against
hand computations (Demšar 2006), and `neurocomp table --ranks` end to end."""

import math

import pytest

from neurocomp.cli import main
from neurocomp.core.errors import UsageError
from neurocomp.analysis.ranking import iman_davenport, rank, render_ranking

from conftest import make_npz


def test_a_model_best_everywhere_ranks_first_and_the_tests_match_a_hand_computation():
    # Four datasets, a always best and c always worst: ranks 1, 2, 3 on each.
    means = {(d, m): value for d, base in zip("wxyz", (0.9, 0.8, 0.7, 0.95))
             for m, value in (("a", base), ("b", base - 0.05), ("c", base - 0.1))}
    ranking = rank(means, "test.auc")
    assert ranking.models == ["a", "b", "c"] and list(ranking.average_ranks) == [1.0, 2.0, 3.0]
    # Friedman: 12 N / (k (k + 1)) * sum((R_j - (k + 1) / 2)^2) = 12 * 4 / 12 * (1 + 0 + 1) = 8, chi2 with 2 df.
    assert ranking.friedman_statistic == pytest.approx(8.0)
    assert ranking.friedman_p == pytest.approx(math.exp(-4.0))
    # Nemenyi: q_0.05 for k = 3 is 2.343 (Demšar's table 5); CD = 2.343 * sqrt(3 * 4 / (6 * 4)).
    assert ranking.critical_difference == pytest.approx(2.343 * math.sqrt(0.5), abs=2e-3)
    assert ranking.nemenyi_p[0, 2] < ranking.nemenyi_p[0, 1]


def test_lower_is_better_metrics_rank_the_smallest_first_and_ties_share_a_rank():
    means = {("x", "a"): 0.1, ("x", "b"): 0.2, ("x", "c"): 0.2, ("y", "a"): 0.1, ("y", "b"): 0.3, ("y", "c"): 0.2}
    ranking = rank(means, "test.brier")
    assert ranking.ranks.tolist() == [[1.0, 2.5, 2.5], [1.0, 3.0, 2.0]]


def test_a_dataset_where_a_model_did_not_run_is_left_out_and_said_so():
    means = {(d, m): 0.5 + 0.1 * i for d in "xyz" for i, m in enumerate("abc")}
    del means[("z", "b")]
    ranking = rank(means, "test.auc")
    assert ranking.datasets == ["x", "y"] and ranking.left_out == ["z"]


@pytest.mark.parametrize("means", [
    {(d, m): 0.5 for d in "xy" for m in "ab"},  # two models
    {("x", m): 0.5 for m in "abc"},  # one dataset
])
def test_too_few_models_or_datasets_is_refused(means):
    with pytest.raises(UsageError, match="at least 3 models on at least 2 datasets"):
        rank(means, "test.auc")


def test_table_ranks_end_to_end_with_the_critical_difference_diagram(tmp_path, capsys):
    out = tmp_path / "res"
    for seed in (0, 1):
        data = make_npz(tmp_path / f"set{seed}.npz", seed=seed, sizes=(256, 64, 64))  # enough to learn both classes
        for model in ("cnn", "gru", "lstm"):
            assert main(["run", str(data), "--model", model, "--epochs", "5", "--lr", "3e-3", "--batch-size", "16", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    figure = tmp_path / "cd.png"
    assert main(["table", str(out), "--ranks", "--figure", str(figure)]) == 0
    printed = capsys.readouterr().out
    assert "average rank" in printed and "Friedman's test" in printed and "on 2 datasets" in printed
    assert figure.exists() and figure.with_suffix(".svg").exists()
    # A model with two rows on one dataset cannot be ranked: one line, exit 2.
    assert main(["run", str(tmp_path / "set0.npz"), "--model", "cnn", "--epochs", "6", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["table", str(out), "--ranks"]) == 2
    assert "has several rows" in capsys.readouterr().err
    assert main(["table", str(out), "--figure", str(figure)]) == 2


def test_iman_davenport_matches_demsars_worked_example_and_perfect_agreement():
    # Demšar 2006, section 3.2.2: four classifiers on 14 data sets, chi2_F = 9.28 gives F_F = 3.69,
    # above F(3, 39)'s critical value 2.85 at alpha = .05.
    statistic, p = iman_davenport(9.28, 14, 4)
    assert statistic == pytest.approx(3.69, abs=5e-3) and p < 0.05
    assert iman_davenport(2.0, 14, 4)[1] > 0.05
    # The four-dataset example above: every dataset ranks a, b, c alike, so chi2 = N (k - 1) and F is infinite.
    assert iman_davenport(8.0, 4, 3) == (math.inf, 0.0)


def test_a_model_that_predicted_one_class_is_listed_and_left_out_of_the_ranks():
    means = {(d, m): value for d, base in zip("wxyz", (0.9, 0.8, 0.7, 0.95))
             for m, value in (("a", base), ("b", base - 0.05), ("c", base - 0.1), ("ltc", base - 0.3))}
    ranking = rank(means, "test.auc", one_class={"ltc": ["x"]})
    assert ranking.models == ["a", "b", "c"] and list(ranking.average_ranks) == [1.0, 2.0, 3.0]
    assert "Left out of the ranks and the diagram (a row predicted one class): ltc (x)." in render_ranking(ranking)
