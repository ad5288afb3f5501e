"""Cross-paradigm tables from run records: one row per (dataset, model, encoder, variant), each cell
mean ± std over seeds with n shown, the best value per column marked, published numbers as
"reported" rows, one-class predictors flagged, and a paired bootstrap of the AUC difference against
a reference model so a reader can tell a gap from noise.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import yaml
from tabulate import tabulate

from ..core.quantities import lower_is_better
from ..core.errors import UsageError
from ..runs.identity import RUNTIME_KEYS
from ..runs.record import RunRecord

FORMATS = {"markdown": "pipe", "github": "github", "latex": "latex_raw", "plain": "simple", "csv": None}
DEFAULT_METRICS = ("test.auc", "test.accuracy", "test.sensitivity", "test.specificity", "params")
_IDENTITY = ("dataset", "model", "encoder")


@dataclass
class Group:
    """The runs of one configuration that differ only in their seed."""

    dataset: str
    model: str
    encoder: str
    config: dict  # the shared config, seed removed
    runs: list[RunRecord] = field(default_factory=list)
    variant: str = ""

    def values(self, metric: str) -> list[float]:
        found = [run.value(metric) for run in self.runs]
        return [v for v in found if v is not None and not math.isnan(v)]

    @property
    def one_class(self) -> int:
        """How many of the row's runs predicted one class for every test image (flagged)."""
        return sum(1 for run in self.runs if run.value("test.predicted_classes") == 1)


def _flat(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# What never tells two rows apart: the row's identity, the seed, and where or how fast a run happened.
_NOT_VARIANT = {"train.seed", "dataset.name", "model.name", "encoder.name", *(".".join(key) for key in RUNTIME_KEYS)}


def group_runs(runs: list[RunRecord]) -> list[Group]:
    """Runs grouped by config without the seed; ``variant`` names what tells same-named rows apart."""
    groups: dict[str, Group] = {}
    for run in runs:
        shared = {k: v for k, v in _flat(run.config).items() if k not in _NOT_VARIANT}
        dataset, model, encoder, _ = run.identity
        key = json.dumps([dataset, model, encoder, shared], sort_keys=True, default=str)
        if key not in groups:
            groups[key] = Group(dataset, model, encoder, shared)
        groups[key].runs.append(run)
    by_identity = defaultdict(list)
    for group in groups.values():
        by_identity[(group.dataset, group.model, group.encoder)].append(group)
    for siblings in by_identity.values():
        if len(siblings) > 1:
            differing = sorted(k for k in siblings[0].config if len({json.dumps(g.config.get(k), default=str) for g in siblings}) > 1)
            for group in siblings:
                group.variant = ", ".join(f"{k.split('.', 1)[-1]}={group.config.get(k)}" for k in differing)
    # a budget sorts as a number (10k before 40k), whatever width text the variant shows
    return sorted(groups.values(), key=lambda g: (g.dataset, g.model, g.encoder, g.config.get("params") or 0, g.variant))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for a single value)."""
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def paired_auc_difference(
    runs: list[RunRecord], reference: list[RunRecord], *, replicates: int = 2000, seed: int = 0
) -> Optional[tuple[float, float, float]]:
    """AUC(runs) - AUC(reference) on the test split: the mean over seeds paired by seed, and a 95%
    interval from a two-level paired bootstrap. Each replicate resamples the test cases once, shared
    by every seed and both models (they all saw the same test set, so their errors are correlated),
    and resamples the seeds (the spread between training runs is part of the uncertainty).
    Resampling the cases independently per seed, as this function once did, treats k seeds as k
    independent test sets and narrows the interval by up to sqrt(k). A multi-class task's AUC is the
    macro average of its one-vs-rest AUCs (scikit-learn's ``multi_class="ovr"``), each computed on the
    same resampled cases. None without pairs (or for a multi-label set).

    Written here rather than with ``scipy.stats.bootstrap``, which resamples a single level.
    """
    by_seed = {run.identity[3]: run for run in reference}
    pairs = []  # per seed: outcomes (K, N), scores of each draw of both models (D, K, N)
    for run in runs:
        other = by_seed.get(run.identity[3])
        mine, theirs = _class_scores(run), _class_scores(other) if other else None
        if mine is None or theirs is None or not np.array_equal(mine[0], theirs[0]):
            continue
        pairs.append((mine[0], mine[1], theirs[1]))
    return _two_level_bootstrap(pairs, replicates, seed)


def auc_interval(runs: list[RunRecord], *, replicates: int = 2000, seed: int = 0) -> Optional[tuple[float, float, float]]:
    """The test AUC of a row's runs (mean over seeds) and its 95% two-level bootstrap interval (test
    cases and seeds, as :func:`paired_auc_difference`); None where no run has saved test
    predictions. Compared with a scorer that ranks nothing (AUC .5 on every resample)."""
    scored = [scores for scores in map(_class_scores, runs) if scores is not None]
    pairs = [(positive, mine, np.zeros_like(mine[:1])) for positive, mine in scored]  # constant scores: AUC .5
    result = _two_level_bootstrap(pairs, replicates, seed)
    return None if result is None else tuple(value + 0.5 for value in result)


def off_the_front(group: Group) -> Optional[str]:
    """Why a row may not stand on a Pareto front, or None: it is flagged for one-class predictions,
    or its test AUC's 95% interval contains .5 (chance)."""
    if group.one_class:
        return f"one class predicted in {group.one_class}/{len(group.runs)}"
    interval = auc_interval(group.runs)
    if interval is not None and interval[1] <= 0.5 <= interval[2]:
        return f"AUC {interval[0]:.3f} [{interval[1]:.3f}, {interval[2]:.3f}] contains .5"
    return None


def _class_scores(run: RunRecord) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """A run's test split as one-vs-rest tasks: (outcomes (K, N) bool, scores of each draw
    (D, K, N)); K = 1 for a binary task (its positive class), the classes of a multi-class one; None
    without saved predictions, or for a multi-label set."""
    predictions = run.predictions(draws=True)
    if predictions is None or run.dataset.get("multi_label"):
        return None
    labels, probabilities = predictions
    positive = run.dataset.get("positive")
    classes = [positive] if positive is not None else list(range(probabilities.shape[-1]))
    return (np.stack([labels == k for k in classes]),
            np.stack([probabilities[..., k] for k in classes], axis=1))


def _two_level_bootstrap(pairs: list, replicates: int, seed: int) -> Optional[tuple[float, float, float]]:
    """Mean over seeds of AUC(mine) - AUC(theirs), and its 95% interval, from ``pairs`` (per seed:
    outcomes (K, N), scores (D, K, N) of both) resampling the shared test cases and then the seeds."""
    if not pairs or any(pair[0].shape != pairs[0][0].shape for pair in pairs):
        return None
    cases_count = pairs[0][0].shape[1]
    rng = np.random.default_rng(seed)
    cases = rng.integers(0, cases_count, size=(replicates, cases_count))  # shared by seeds and models
    every = np.arange(cases_count)[None]

    def difference(outcomes, mine, theirs, rows):  # AUC(mine) - AUC(theirs) on each row of case indices
        return _macro_auc(outcomes, mine, rows) - _macro_auc(outcomes, theirs, rows)

    per_seed = np.stack([difference(*pair, cases) for pair in pairs], axis=1)
    observed = np.mean([difference(*pair, every)[0] for pair in pairs])
    chosen = rng.integers(0, len(pairs), size=(replicates, len(pairs)))  # the seeds of each replicate
    differences = np.take_along_axis(per_seed, chosen, axis=1).mean(axis=1)  # (replicates,)
    low, high = np.nanpercentile(differences, [2.5, 97.5])
    return float(observed), float(low), float(high)


def _macro_auc(outcomes: np.ndarray, scores: np.ndarray, cases: np.ndarray) -> np.ndarray:
    """The mean over the one-vs-rest tasks (K) of :func:`_draws_auc` on each row of ``cases``."""
    return np.mean([_draws_auc(outcome[cases], scores[:, k], cases) for k, outcome in enumerate(outcomes)], axis=0)


def _draws_auc(is_positive: np.ndarray, scores: np.ndarray, cases: np.ndarray) -> np.ndarray:
    """AUC of each row of ``cases`` (R, N) indices, averaged over the draws of ``scores`` (D, N): a
    stochastic encoder's score is its mean over draws."""
    return np.mean([_auc_rows(is_positive, draw[cases]) for draw in scores], axis=0)


def _auc_rows(is_positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row (Mann-Whitney U from average ranks); NaN where a row has one class."""
    from scipy.stats import rankdata  # here: importing scipy.stats costs every command ~0.3 s

    ranks = rankdata(scores, axis=1)
    positives = is_positive.sum(axis=1)
    negatives = is_positive.shape[1] - positives
    u = (ranks * is_positive).sum(axis=1) - positives * (positives + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((positives > 0) & (negatives > 0), u / (positives * negatives), np.nan)


def load_reported(path: str | Path) -> list[dict]:
    """Published numbers: ``rows: [{dataset, model, encoder, label, metrics: {test.auc: ...}}]``."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"cannot read reported numbers from {path}: {error}") from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "metrics" in r for r in rows):
        raise UsageError(f"{path}: expected `rows:` with a `metrics:` mapping in each row")
    return rows


def _is_count(metric: str) -> bool:
    return metric.startswith(("params", "cost."))


def build_table(
    runs: list[RunRecord],
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    *,
    reference: Optional[str] = None,
    reported: Optional[list[dict]] = None,
    label: str = "",
) -> tuple[list[str], list[list], list[tuple[int, int]]]:
    """Headers, rows (cells as text) and the (row, column) cells holding a column's best mean; ``label``
    (e.g. "tuned (20 trials)") heads every run row's variant cell."""
    groups = group_runs(runs)
    if not groups and not reported:
        raise UsageError("no completed run records to tabulate")
    headers = ["dataset", "model", "encoder", "variant", "n", "positive", *metrics, "path", "code", "flags"]
    if reference:
        headers.append(f"ΔAUC vs {reference} [95% CI]")
    rows, means, degenerate = [], [], []
    for group in groups:
        dataset_info = group.runs[0].dataset
        positive = dataset_info.get("positive")
        cells = [group.dataset, group.model, group.encoder, "; ".join(filter(None, (label, group.variant))), len(group.runs),
                 "macro" if positive is None else f"{positive} ({dataset_info.get('positive_name')})"]
        row_means = []
        for metric in metrics:
            mean, std = mean_std(group.values(metric))
            row_means.append(mean)
            cells.append(_cell(metric, mean, std) + _draw_spread(group, metric))
        one_class = group.one_class
        degenerate.append(bool(one_class))
        cells += [_joined({kernel_path(run) for run in group.runs}), _joined({code_label(run) for run in group.runs}),
                  f"one class predicted in {one_class}/{len(group.runs)}" if one_class else ""]
        if reference:
            cells.append(_reference_cell(group, groups, reference))
        rows.append(cells)
        means.append(row_means)
    for entry in reported or []:
        cells = [entry.get("dataset", ""), entry.get("model", ""), entry.get("encoder", ""),
                 f"reported: {entry.get('label', '')}", "", entry.get("positive", "")]
        cells += [_cell(m, entry["metrics"][m], math.nan) if m in entry["metrics"] else "" for m in metrics]
        cells += ["", "", ""]
        if reference:
            cells.append("")
        rows.append(cells)
    # A row with one-class predictors never wins a column: an all-benign predictor's specificity of
    # 1.000 is not the best specificity.
    contenders = [index for index in range(len(means)) if not degenerate[index]]
    best = []
    for column, metric in enumerate(metrics):
        if metric.startswith("params"):
            continue
        column_means = [means[index][column] for index in contenders if not math.isnan(means[index][column])]
        if len(column_means) > 1:
            target = (min if lower_is_better(metric) else max)(column_means)
            best += [(index, headers.index(metric)) for index in contenders if means[index][column] == target]
    return headers, rows, best


def kernel_path(run: RunRecord) -> str:
    """``native``, ``library`` or ``native+library``: what computed the run's layers (``-`` where its
    model has no kernel to choose; ``?`` for records older than the kernel seam)."""
    if "kernels" not in run.model:
        return "?" if run.model.get("backend") else "-"
    paths = {"library" if entry["path"] == "library" else "native" for entry in run.model["kernels"]}
    return "+".join(sorted(paths)) or "-"


def code_label(run: RunRecord) -> str:
    """The short commit of the code that ran (``+dirty`` with uncommitted changes), ``?`` if unknown."""
    commit = run.code.get("commit")
    if not commit:
        return "?"
    return commit[:7] + ("+dirty" if run.code.get("dirty") else "")


def _joined(values: set[str]) -> str:
    """One value, or ``mixed: a, b`` where the seeds of a row ran on different code or paths."""
    return next(iter(values)) if len(values) == 1 else "mixed: " + ", ".join(sorted(values))


def _draw_spread(group: Group, metric: str) -> str:
    """`` (draws ± s)``: the mean over seeds of the metric's spread between the encoder's draws,
    beside the seed spread, where a stochastic encoder was scored over several draws."""
    split, _, name = metric.partition(".")
    if split not in ("val", "test"):
        return ""
    spreads = group.values(f"{split}.draws.std.{name}")
    return f" (draws ± {np.mean(spreads):.4f})" if spreads else ""


def _cell(metric: str, mean: float, std: float) -> str:
    if math.isnan(mean):
        return "n/a"
    if _is_count(metric):
        return f"{mean:,.0f}"
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def reference_group(group: Group, groups: list[Group], reference: str) -> Optional[Group]:
    """The row of model ``reference`` that ``group`` is compared with: on the same dataset and, where
    the reference has a row per budget, at the same budget; None where there is no such single row."""
    candidates = [g for g in groups if g.dataset == group.dataset and g.model == reference]
    if len(candidates) > 1:
        candidates = [g for g in candidates if g.config.get("params") == group.config.get("params")]
    return candidates[0] if len(candidates) == 1 else None


def _reference_cell(group: Group, groups: list[Group], reference: str) -> str:
    if group.model == reference:
        return "reference"
    compared = reference_group(group, groups, reference)
    if compared is None:
        return ""
    result = paired_auc_difference(group.runs, compared.runs)
    if result is None:
        return "n/a"
    difference, low, high = result
    return f"{difference:+.4f} [{low:+.4f}, {high:+.4f}]"


def render(headers: list[str], rows: list[list], best: list[tuple[int, int]], fmt: str) -> str:
    """The table as markdown, github, latex, plain text or csv (best cells bold, except in csv)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown table format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    rows = [list(row) for row in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(headers)
        writer.writerows(rows)
        return buffer.getvalue()
    for row, column in best:
        text = rows[row][column]
        rows[row][column] = f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**" if fmt in ("markdown", "github") else f"{text} *"
    return tabulate(rows, headers=headers, tablefmt=FORMATS[fmt], disable_numparse=True)
