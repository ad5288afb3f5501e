"""Defaults vs an equal tuning budget, per paradigm and dataset (issue 14): writes the report of both
sweeps (tables with the paired bootstrap, generated prose) and, after it, one table and one figure
that put each paradigm's default and tuned test AUC and sensitivity at the validation-chosen
operating point side by side (mean ± sample std over seeds; one-class runs counted).

    python benchmarks/tuned_vs_default.py configs/sweeps/cross-paradigm.yaml \\
        results/tune/cross-paradigm.best.yaml --results results --output results/TUNING.md
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tabulate import tabulate  # noqa: E402

from neurocomp.analysis.plots import save  # noqa: E402
from neurocomp.runs.identity import run_id  # noqa: E402
from neurocomp.runs.record import load_runs  # noqa: E402
from neurocomp.analysis.report import clean_tree, write_report  # noqa: E402
from neurocomp.runs.sweep import expand, load_sweep  # noqa: E402
from neurocomp.analysis.table import DEFAULT_METRICS  # noqa: E402

QUANTITIES = {"AUC": "test.auc", "sensitivity at the val threshold": "test.operating_point.sensitivity"}


def runs_by_group(sweep_path: str, results: str) -> dict[tuple[str, str], list]:
    """The completed runs of a sweep by (dataset, model)."""
    recorded = {run.run_id: run for run in load_runs(results) if run.status == "completed"}
    groups: dict[tuple[str, str], list] = {}
    for config in expand(load_sweep(sweep_path)):
        run = recorded.get(run_id(config.to_dict()))
        if run is not None:
            groups.setdefault(run.identity[:2], []).append(run)
    return groups


def summary(runs: list, quantity: str) -> tuple[float, float]:
    values = [run.value(quantity) for run in runs if run.value(quantity) is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else float("nan")


def cell(runs: list, quantity: str) -> str:
    mean, std = summary(runs, quantity)
    return "n/a" if mean != mean else f"{mean:.3f} ± {std:.3f}"


def one_class(runs: list) -> int:
    return sum(run.metrics["test"].get("predicted_classes") == 1 for run in runs)


def figure(default: dict, tuned: dict, path: Path) -> list[Path]:
    """One panel per dataset: each paradigm's default and tuned test AUC, error bars over seeds."""
    datasets = sorted({dataset for dataset, _ in default} | {dataset for dataset, _ in tuned})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        models = [model for d, model in default if d == dataset]
        for offset, (label, groups, marker) in enumerate((("defaults", default, "o"), ("tuned", tuned, "s"))):
            points = [summary(groups.get((dataset, model), []), "test.auc") for model in models]
            axis.errorbar([i + (offset - 0.5) * 0.25 for i in range(len(models))], [m for m, _ in points],
                          yerr=[0 if s != s else s for _, s in points], fmt=marker, capsize=3, label=label)
        axis.set_xticks(range(len(models)), models, rotation=30)
        axis.set_title(dataset)
        axis.set_ylabel("test AUC (mean ± std over seeds)")
        axis.grid(alpha=0.3)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    try:
        return save(fig, path)
    finally:
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("default_sweep")
    parser.add_argument("tuned_sweep")
    parser.add_argument("--results", default="results")
    parser.add_argument("--output", default="results/TUNING.md")
    parser.add_argument("--reference", default="cnn", help="model the ΔAUC columns compare against (default cnn)")
    parser.add_argument("--allow-dirty", action="store_true", help="report from uncommitted code or configs (marked)")
    args = parser.parse_args()
    clean = clean_tree(args.allow_dirty)
    output = Path(args.output)
    figures = output.parent / "figures" / output.stem.lower()  # beside, not over, another report's figures
    write_report([args.default_sweep, args.tuned_sweep], args.results, output,
                 (*DEFAULT_METRICS, "test.operating_point.sensitivity"), reference=args.reference,
                 title="Cross-paradigm benchmark: defaults and an equal tuning budget", figures=figures,
                 dirty=not clean)
    default, tuned = runs_by_group(args.default_sweep, args.results), runs_by_group(args.tuned_sweep, args.results)
    rows = []
    for key in default:
        row = [*key]
        for quantity in QUANTITIES.values():
            row += [cell(default[key], quantity), cell(tuned.get(key, []), quantity)]
        row += [f"{one_class(default[key])}/{len(default[key])}", f"{one_class(tuned.get(key, []))}/{len(tuned.get(key, []))}"]
        rows.append(row)
    tuned_label = load_sweep(args.tuned_sweep).label or "tuned"
    headers = ["dataset", "model", "AUC default", f"AUC {tuned_label}", "sens. default", f"sens. {tuned_label}",
               "one-class default", f"one-class {tuned_label}"]
    drawn = figure(default, tuned, figures / "tuned-vs-default")
    text = output.read_text() + "\n".join([
        "", "## Defaults vs tuned, side by side", "",
        f"Test AUC and the test sensitivity at the threshold chosen on validation (`eval.threshold`, Youden), mean ± "
        f"sample std over seeds; `one-class`: runs that predict one class for every test image at 0.5. Defaults: "
        f"`{args.default_sweep}`; tuned: `{args.tuned_sweep}`.", "",
        tabulate(rows, headers=headers, tablefmt="github"), "",
        f"![defaults vs tuned test AUC]({drawn[0].relative_to(output.parent)})", ""])
    output.write_text(text)
    print(f"wrote {output} and {', '.join(str(p) for p in drawn)}")


if __name__ == "__main__":
    main()
