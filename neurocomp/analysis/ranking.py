"""Which paradigm wins across datasets, with its uncertainty: models ranked per dataset by a metric
(mean over seeds), their average ranks, Friedman's test that all rank alike (scipy) with Iman and
Davenport's F beside its chi-square (Demšar recommends the F: the chi-square approximation is
conservative with few datasets), Nemenyi's post-hoc p-value of every pair and the
critical-difference diagram (scikit-posthocs), after Demšar, "Statistical comparisons of
classifiers over multiple data sets", JMLR 7, 2006.

Datasets are the blocks: a dataset counts only where every model has a row, so each rank compares
the same models; with few datasets the tests have little power, and the output says how many there
were. A model with a row flagged for one-class predictions is listed but left out of the ranks: a
classifier that answers one class everywhere has no place in an ordering of classifiers. The only
formulas written here are Demšar's critical difference, from scipy's studentized range, and Iman and
Davenport's F, from Friedman's chi-square (Demšar, eq. 2 and 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.errors import UsageError
from ..core.quantities import lower_is_better
from .table import group_runs, mean_std

ALPHA = 0.05


@dataclass
class Ranking:
    """Models ranked on ``datasets`` by ``metric`` (1 = best; ties share the mean rank)."""

    metric: str
    datasets: list[str]
    models: list[str]
    means: np.ndarray  # (D, M): the metric's mean over seeds
    ranks: np.ndarray  # (D, M)
    friedman_statistic: float
    friedman_p: float
    iman_davenport_f: float  # (N-1) chi2 / (N(k-1) - chi2), F with k-1 and (k-1)(N-1) degrees of freedom
    iman_davenport_p: float
    nemenyi_p: np.ndarray  # (M, M): Nemenyi's p-value of every pair
    critical_difference: float  # average ranks further apart than this differ at ALPHA (Nemenyi)
    left_out: list[str]  # datasets where some model has no row
    one_class: Optional[dict] = None  # model -> the datasets where a row of it predicted one class: not ranked

    @property
    def average_ranks(self) -> np.ndarray:
        """(M,): each model's mean rank over the datasets."""
        return self.ranks.mean(axis=0)


def iman_davenport(chi2: float, datasets: int, models: int) -> tuple[float, float]:
    """Iman and Davenport's F from Friedman's chi-square over ``datasets`` blocks and ``models``
    treatments, and its p-value (F with k-1 and (k-1)(N-1) degrees of freedom)."""
    from scipy.stats import f

    n, k = datasets, models
    denominator = n * (k - 1) - chi2
    statistic = math.inf if denominator <= 0 else (n - 1) * chi2 / denominator
    return statistic, float(f.sf(statistic, k - 1, (k - 1) * (n - 1)))


def rank(means: dict[tuple[str, str], float], metric: str, one_class: dict | None = None) -> Ranking:
    """Rank the models of ``means`` ``{(dataset, model): value}`` per dataset and test the ranks,
    leaving out the models of ``one_class`` (model -> datasets where it predicted one class);
    UsageError with fewer than three models or two datasets on which they all have a value."""
    from scipy.stats import friedmanchisquare, rankdata, studentized_range
    from scikit_posthocs import posthoc_nemenyi_friedman

    one_class = one_class or {}
    models = sorted({model for _, model in means} - set(one_class))
    every = sorted({dataset for dataset, _ in means})
    datasets = [d for d in every if all(not math.isnan(means.get((d, m), math.nan)) for m in models)]
    if len(models) < 3 or len(datasets) < 2:
        excluded = f" ({', '.join(sorted(one_class))} left out: a row predicted one class)" if one_class else ""
        raise UsageError(f"ranking needs at least 3 models on at least 2 datasets where every model has a {metric}; "
                         f"found {len(models)} models{excluded} and {len(datasets)} such datasets of {len(every)}")
    matrix = np.array([[means[(d, m)] for m in models] for d in datasets])
    ranks = rankdata(matrix if lower_is_better(metric) else -matrix, axis=1)
    statistic, p = friedmanchisquare(*matrix.T)
    nemenyi = posthoc_nemenyi_friedman(matrix).to_numpy()
    k, n = len(models), len(datasets)
    f_statistic, f_p = iman_davenport(float(statistic), n, k)
    q_alpha = studentized_range.ppf(1 - ALPHA, k, np.inf) / math.sqrt(2)  # Demšar's q_alpha
    critical = q_alpha * math.sqrt(k * (k + 1) / (6 * n))
    return Ranking(metric, datasets, models, matrix, ranks, float(statistic), float(p), f_statistic, f_p, nemenyi,
                   float(critical), [d for d in every if d not in datasets], one_class)


def rank_runs(runs: list, metric: str) -> Ranking:
    """:func:`rank` of the models of ``runs`` (their rows' means over seeds); UsageError when a model
    has several rows on one dataset (variants: rank one sweep's runs, or pick with --model)."""
    means, one_class = {}, {}
    for group in group_runs(runs):
        key = (group.dataset, group.model)
        if key in means:
            raise UsageError(f"model {group.model} has several rows on {group.dataset} (variants); rank one sweep's "
                             "runs (--sweep FILE) so that each model is one row per dataset")
        means[key] = mean_std(group.values(metric))[0]
        if group.one_class:
            one_class.setdefault(group.model, []).append(group.dataset)
    return rank(means, metric, one_class)


def render_ranking(ranking: Ranking) -> str:
    """The ranking as markdown: per-dataset rank (and mean), average rank, and the tests' outcome."""
    from tabulate import tabulate

    order = np.argsort(ranking.average_ranks, kind="stable")
    headers = ["model", "average rank", *ranking.datasets]
    rows = [[ranking.models[j], f"{ranking.average_ranks[j]:.2f}",
             *(f"{ranking.ranks[i, j]:g} ({ranking.means[i, j]:.4f})" for i in range(len(ranking.datasets)))]
            for j in order]
    best, worst = ranking.models[order[0]], ranking.models[order[-1]]
    verdict = "differ" if ranking.iman_davenport_p < ALPHA else "do not differ detectably"
    lines = [
        tabulate(rows, headers=headers, tablefmt="github"), "",
        f"Ranks by {ranking.metric} (1 = best; each cell: rank (mean over seeds)) on {len(ranking.datasets)} datasets. "
        f"Friedman's test: chi2 = {ranking.friedman_statistic:.3f}, p = {ranking.friedman_p:.4f}; Iman and Davenport's "
        f"F = {ranking.iman_davenport_f:.3f}, p = {ranking.iman_davenport_p:.4f}: the models' ranks "
        f"{verdict} at alpha = {ALPHA}. Nemenyi's critical difference: {ranking.critical_difference:.2f} ranks "
        f"({best} vs {worst}: p = {ranking.nemenyi_p[order[0], order[-1]]:.4f}).",
    ]
    if ranking.left_out:
        lines.append(f"Left out (not every model ran there): {', '.join(ranking.left_out)}.")
    if ranking.one_class:
        lines.append("Left out of the ranks and the diagram (a row predicted one class): " + "; ".join(
            f"{model} ({', '.join(datasets)})" for model, datasets in sorted(ranking.one_class.items())) + ".")
    return "\n".join(lines)


def plot_critical_difference(ranking: Ranking, path: str | Path) -> list[Path]:
    """The critical-difference diagram (scikit-posthocs): average ranks on an axis, models that Nemenyi's
    test cannot tell apart joined by a bar, the critical difference drawn above; PNG and SVG beside ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from scikit_posthocs import critical_difference_diagram

    from .plots import save, style

    figure, axes = plt.subplots(figsize=(7, 0.45 * len(ranking.models) + 1.2))
    critical_difference_diagram(
        pd.Series(ranking.average_ranks, index=ranking.models),
        pd.DataFrame(ranking.nemenyi_p, index=ranking.models, columns=ranking.models),
        cd=ranking.critical_difference, alpha=ALPHA, ax=axes,
        color_palette={model: style(model)["color"] for model in ranking.models})  # each model's colour everywhere
    axes.set_title(f"average rank by {ranking.metric} over {len(ranking.datasets)} datasets "
                   f"(Iman-Davenport p = {ranking.iman_davenport_p:.3f})", fontsize=9)
    try:
        return save(figure, path)
    finally:
        plt.close(figure)
