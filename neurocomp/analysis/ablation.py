"""An ablation's report: each variant of a sweep (a change from its base, usually its first variant)
ranked by a validation metric, with a figure.

The metric is averaged over seeds within each dataset, then over datasets, so every set counts the
same however many images it has. Only validation metrics rank: the test split of these runs stays
what it is for every run, scored once and never read to choose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..runs.identity import run_id
from ..runs.record import RunRecord
from ..runs.sweep import Sweep, variant_runs
from .table import mean_std


@dataclass(frozen=True)
class VariantResult:
    """One variant: its label, per dataset the metric's mean and std over seeds and the seeds found,
    the mean over datasets, and how many of its runs predicted one class for every test image."""

    label: str
    per_dataset: dict[str, tuple[float, float, int]]
    mean: float
    one_class: int


def ablation_results(sweep: Sweep, runs: dict[str, RunRecord]) -> list[VariantResult]:
    """Every variant of ``sweep`` in file order, from the completed records in ``runs`` (run id -> record)."""
    results = []
    for variant, configs in variant_runs(sweep):
        values: dict[str, list[float]] = {}
        one_class = 0
        for config in configs:
            record = runs.get(run_id(config.to_dict()))
            value = record.value(sweep.ablation) if record else None
            if value is None:
                continue
            values.setdefault(config.dataset.name, []).append(value)
            one_class += record.value("test.predicted_classes") == 1
        per_dataset = {dataset: (*mean_std(found), len(found)) for dataset, found in values.items()}
        means = [mean for mean, _, _ in per_dataset.values()]
        results.append(VariantResult(_label(variant), per_dataset, sum(means) / len(means) if means else math.nan,
                                     one_class))
    return results


def render_ablation(results: list[VariantResult], metric: str) -> list[str]:
    """Markdown lines: the variants ranked by their mean over datasets, the difference to the first
    variant, each dataset's mean ± std over seeds (n), and one-class flags."""
    from tabulate import tabulate

    datasets = sorted({dataset for result in results for dataset in result.per_dataset})
    baseline = results[0].mean
    ranked = sorted(results, key=lambda result: -result.mean if not math.isnan(result.mean) else math.inf)
    rows = []
    for rank, result in enumerate(ranked, start=1):
        cells = [_cell(*result.per_dataset[d]) if d in result.per_dataset else "-" for d in datasets]
        flag = f"one class in {result.one_class}" if result.one_class else ""
        rows.append([rank, result.label, f"{result.mean:.3f}", f"{result.mean - baseline:+.3f}", *cells, flag])
    first = results[0].label
    headers = ["rank", "variant", f"mean {metric}", f"vs {first}", *datasets, "flags"]
    best = ranked[0]
    return [f"Ranked by {metric}, the mean over seeds within each set, then over the {len(datasets)} sets. "
            f"Best: {best.label} ({best.mean:.3f}, {best.mean - baseline:+.3f} over {first}, {baseline:.3f}). "
            "Flags count runs that predicted one class for every test image.", "",
            tabulate(rows, headers, tablefmt="github", disable_numparse=True)]


def plot_ablation(results: list[VariantResult], metric: str, output: Path) -> Path:
    """Each variant's metric per dataset (markers) and its mean (bar), ranked, against the defaults' mean."""
    from .plots import pyplot, save

    plt = pyplot()
    ranked = sorted((r for r in results if not math.isnan(r.mean)), key=lambda result: result.mean)
    datasets = sorted({dataset for result in results for dataset in result.per_dataset})
    figure, axes = plt.subplots(figsize=(8, 0.28 * len(ranked) + 1.2))
    positions = range(len(ranked))
    axes.barh(positions, [r.mean for r in ranked], color="0.85", label="mean over sets")
    for dataset, marker in zip(datasets, "osD^v<>"):
        points = [(r.per_dataset[dataset][0], y) for y, r in zip(positions, ranked) if dataset in r.per_dataset]
        axes.scatter(*zip(*points), marker=marker, s=18, label=dataset, zorder=3)
    axes.axvline(results[0].mean, color="k", linewidth=0.8, linestyle="--", label=f"{results[0].label} (mean)")
    axes.set_yticks(list(positions), [r.label for r in ranked], fontsize=7)
    axes.set_xlabel(f"{metric} (mean over seeds)")
    low = min(min(r.per_dataset[d][0] for d in r.per_dataset) for r in ranked)
    axes.set_xlim(max(0.0, low - 0.05), 1.0)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path = save(figure, output)[0]
    plt.close(figure)
    return path


def _label(variant: dict) -> str:
    """``{train.lr: 0.003, encoder.name: static}`` -> ``lr=0.003, encoder=static``."""
    def short(key: str) -> str:
        section, _, option = key.partition(".")
        return section if option == "name" else option or section

    return ", ".join(f"{short(key)}={_value(value)}" for key, value in variant.items()) or "base"


def _value(value) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def _cell(mean: float, std: float, n: int) -> str:
    return f"{mean:.3f} ± {std:.3f} ({n})" if not math.isnan(std) else f"{mean:.3f} ({n})"
