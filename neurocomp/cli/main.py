"""Command line: ``neurocomp run``, ``list``, ``sweep``, ``table``, ``plot`` and ``report``.

Bad input ends with one line on stderr and exit code 2; a run that fails after it started (NaN
loss) ends with exit code 1 and a record marked failed.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

from tabulate import tabulate

from .. import __version__
from ..core.config import load_yaml, parse_assignment, resolve, set_dotted
from ..core.errors import RunFailed, UsageError, one_line_warnings
from ..analysis.plots import KINDS
from ..analysis.table import DEFAULT_METRICS, FORMATS
from ..core.registry import ENCODERS, MODELS

# Flags that are shorthands for a dotted config key; they win over the YAML file, as --set does.
_FLAG_KEYS = {
    "dataset": "dataset.name",
    "size": "dataset.size",
    "data_dir": "dataset.data_dir",
    "positive": "dataset.positive",
    "model": "model.name",
    "encoder": "encoder.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "loss": "train.loss",
    "seed": "train.seed",
    "device": "train.device",
    "threads": "train.threads",
    "params": "params",
    "out": "out",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse would print the usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurocomp", description="Spiking, liquid, recurrent and convolutional networks on MedMNIST.")
    parser.add_argument("--version", action="version", version=f"neurocomp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="train one model on one dataset and save the run record")
    run.add_argument("dataset", nargs="?", help="dataset name (see `neurocomp list`) or a path to a MedMNIST .npz")
    run.add_argument("--config", help="YAML config file; flags and --set override it")
    run.add_argument("--model", help="model name (default: cnn)")
    run.add_argument("--encoder", help="encoder name (default: the model's usual one, e.g. rate for snn)")
    run.add_argument("--size", type=int, help="image size: 28, 64, 128 or 224 (3D: 28 or 64)")
    run.add_argument("--data-dir", help="folder with the MedMNIST .npz files (default: $NEUROCOMP_DATA_DIR, else ~/.medmnist)")
    run.add_argument("--positive", type=int, help="positive class of a binary task (default: the dataset's clinical one)")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--lr", type=float)
    run.add_argument("--loss", choices=["auto", "cross_entropy", "bce", "rate"],
                     help="training loss (default auto: the set's task decides, bce per label for a multi-label "
                          "set such as chest, cross_entropy otherwise)")
    run.add_argument("--seed", type=int)
    run.add_argument("--device", choices=["auto", "cpu", "cuda"])
    run.add_argument("--threads", type=int, help="CPU threads for torch")
    run.add_argument("--params", help="trainable parameter budget, e.g. 20k: the model's width is chosen to land within 5%% (--set params_tolerance=0.1 for 10%%)")
    run.add_argument("--out", help="results root (default: results); the run goes to OUT/runs/<run_id>/")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override any config key, e.g. --set train.epochs=5 --set model.beta=0.9")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    commands.add_parser("list", help="list the registered datasets, encoders and models")

    sweep = commands.add_parser("sweep", help="train every run of a sweep file; resumable")
    sweep.add_argument("file", help="sweep YAML: base, variants, grid")
    sweep.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    sweep.add_argument("--threads", type=int, help="torch threads per worker (default: cores / workers)")
    sweep.add_argument("--executor", choices=["local", "ray"], default="local")
    sweep.add_argument("--address", help="Ray cluster address (auto, ray://host:port); default: a local Ray instance")
    sweep.add_argument("--out", help="results root (default: the sweep's base config, else results)")
    sweep.add_argument("--retry-failed", action="store_true", help="run again the runs recorded as failed")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs and whether they are recorded; train nothing")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    tune = commands.add_parser("tune", help="the same number of Optuna trials per paradigm on validation, then the "
                                            "best of each re-run with several seeds; resumable")
    tune.add_argument("file", help="tune YAML: base, datasets, models, objective, trials, seeds, space")
    tune.add_argument("--trials", type=int, help="finished trials per (dataset, model) (default: the file's)")
    tune.add_argument("--storage", help="Optuna RDB URL (default: sqlite:///OUT/tune/<file>.db)")
    tune.add_argument("--out", help="results root (default: the tune file's base config, else results)")
    tune.add_argument("--workers", type=int, default=1, help="studies tuned at once, in processes (default 1)")
    tune.add_argument("--threads", type=int, help="torch threads per process (default: cores / workers)")
    tune.add_argument("--no-rerun", action="store_true", help="tune only; do not re-run the best with every seed")
    tune.add_argument("--quiet", action="store_true", help="no progress bar")

    table = commands.add_parser("table", help="a cross-paradigm table from run records")
    table.add_argument("results", help="results folder (or its runs/)")
    table.add_argument("--metric", nargs="+", default=list(DEFAULT_METRICS),
                       help="columns: val.<m> / test.<m> (accuracy, auc, sensitivity, ...), params, "
                            "params.effective_synapses, epoch_time_s")
    table.add_argument("--format", choices=list(FORMATS), default="markdown")
    table.add_argument("--reference", help="model to compare AUC against (paired bootstrap, 95%% interval)")
    table.add_argument("--reported", action="append", default=[], help="YAML of published numbers to show as rows")
    table.add_argument("--dataset", nargs="+", help="only these datasets")
    table.add_argument("--model", nargs="+", help="only these models")
    table.add_argument("--sweep", help="only the runs of this sweep file")
    table.add_argument("--ranks", action="store_true",
                       help="rank the models per dataset by the first --metric: average ranks, Friedman test, Nemenyi")
    table.add_argument("--figure", help="with --ranks: also draw the critical-difference diagram to this file (and .svg)")
    table.add_argument("--output", help="also write the table to this file")

    plot = commands.add_parser("plot", help="a figure from run records (PNG, SVG or PDF)")
    plot.add_argument("results", help="results folder (or its runs/)")
    plot.add_argument("--kind", choices=list(KINDS), default="params-vs-metric")
    plot.add_argument("--metric", default="test.auc", help="metric for params-vs-metric and curves")
    plot.add_argument("--dataset", nargs="+", help="only these datasets")
    plot.add_argument("--model", nargs="+", help="only these models")
    plot.add_argument("--sweep", help="only the runs of this sweep file")
    plot.add_argument("--output", help="figure file (default: RESULTS/figures/<kind>.png)")

    bench = commands.add_parser("bench", help="our speed vs snnTorch / ncps, interleaved in one process")
    bench.add_argument("--model", nargs="+", default=["snn", "ltc", "cfc"], help="workloads (default: snn ltc cfc)")
    bench.add_argument("--repeats", type=int, default=7)
    bench.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    bench.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    bench.add_argument("--json", action="store_true", help="one JSON object keyed by workload on stdout")

    export = commands.add_parser("export", help="export a run's best model (ONNX, checked with ONNX Runtime) or its "
                                                "predictions for MedMNIST's own Evaluator; every record to MLflow")
    export.add_argument("run_dir", help="a run folder: results/runs/<run_id> (--mlflow: also a results folder)")
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument("--onnx", action="store_true", help="the model as ONNX")
    formats.add_argument("--medmnist", action="store_true",
                         help="val and test predictions as MedMNIST Evaluator CSVs ({flag}_{split}_[AUC]..._[ACC]...@{run}.csv)")
    formats.add_argument("--mlflow", action="store_true",
                         help="each record as one MLflow run (config, history, metrics, tags, artifacts); idempotent")
    export.add_argument("--output", help="file (--onnx; default RUN_DIR/model.onnx) or folder (--medmnist; default RUN_DIR)")
    export.add_argument("--tracking-uri", help="--mlflow: the tracking store, e.g. sqlite:///mlflow.db (default: MLflow's)")

    migrate = commands.add_parser("migrate", help="bring older run records to the current schema and run id "
                                                  "(atomic per run, never deletes, idempotent)")
    migrate.add_argument("results", help="results folder (or its runs/)")
    migrate.add_argument("--dry-run", action="store_true", help="list what would change; change nothing")

    recount = commands.add_parser("recount", help="add the cost estimates older run records lack (energy with memory "
                                  "accesses), recounted from their saved weights; no training")
    recount.add_argument("results", help="results folder (or its runs/)")
    recount.add_argument("--sweep", help="only the runs of this sweep file")
    recount.add_argument("--dataset", nargs="+", help="only these datasets")
    recount.add_argument("--model", nargs="+", help="only these models")

    report = commands.add_parser("report", help="reported vs reproduced, per study sweep, as markdown; --all: every "
                                                "report in results/reports.yaml")
    report.add_argument("sweeps", nargs="*", help="study sweep files (none with --all)")
    report.add_argument("--all", action="store_true",
                        help="regenerate every report listed in RESULTS/reports.yaml, its figures and RESULTS/MANIFEST.csv")
    report.add_argument("--check", action="store_true",
                        help="with --all: write nothing; exit 1 and show the differences when a committed report, "
                             "the manifest or a record's files do not match what the records give")
    report.add_argument("--allow-dirty", action="store_true",
                        help="report from a tree with uncommitted code or configs (the report says so)")
    report.add_argument("--results", default="results", help="results folder (default: results)")
    report.add_argument("--output", default="results/REPRODUCTION.md")
    report.add_argument("--metric", nargs="+", default=list(DEFAULT_METRICS))
    report.add_argument("--reference", help="model to compare AUC against, in the studies that have it")
    report.add_argument("--title", default="Reproduction of the published studies", help="the report's heading")
    return parser


def config_from_args(args: argparse.Namespace) -> "RunConfig":  # noqa: F821
    """Defaults <- YAML <- flags <- --set, resolved and validated."""
    raw = load_yaml(args.config) if args.config else {}
    for flag, key in _FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            set_dotted(raw, key, value)
    for assignment in args.set:
        set_dotted(raw, *parse_assignment(assignment))
    return resolve(raw)


def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def summary_table(record: "RunRecord") -> str:  # noqa: F821
    """The end-of-run table: validation and test metrics, then what the run was."""
    from ..core.quantities import METRIC_NAMES

    metrics = record.metrics
    rows = [[name, _format(metrics["val"][name]), _format(metrics["test"][name])] for name in ("loss", *METRIC_NAMES)]
    table = tabulate(rows, headers=["metric", "val", "test"], tablefmt="github")
    dataset, params = record.dataset, record.params
    one_class = [split for split in ("val", "test") if metrics[split].get("predicted_classes") == 1]
    multi_label = dataset.get("multi_label", False)
    positive = (f"each of {len(dataset['class_names'])} labels at 0.5, macro average (multi-label)" if multi_label
                else "macro average (multi-class)" if dataset["positive"] is None
                else f"{dataset['positive']} ({dataset['positive_name']})")
    weakest = (min(zip(metrics["test"]["per_label"], dataset["class_names"]), key=lambda pair: pair[0]["auc"])
               if multi_label else None)
    chosen = metrics["test"].get("operating_point")
    loss = record.config["train"]["loss"]
    facts = [
        ["positive class", positive],
        ["loss", f"{loss}, one sigmoid per label (the set is multi-label)" if multi_label and loss == "bce" else loss],
        *([["weakest label (test AUC)", f"{weakest[1]}: {_format(weakest[0]['auc'])}"]] if weakest else []),
        *([["test at val threshold", f"{chosen['threshold']:.3f} ({chosen['rule']}): sensitivity {chosen['sensitivity']:.4f}, "
                                     f"specificity {chosen['specificity']:.4f}"]] if chosen else []),
        ["trainable parameters", f"{params['trainable']:,}" + (f" (budget {params['target']:,})" if params["target"] else "")
         + _parts(params.get("parts", {})) + (f"; {params['frozen']:,} frozen" if params.get("frozen") else "")],
        *([["effective synapses", f"{params['effective_synapses']:,}"]] if "effective_synapses" in params else []),
        ["best epoch", f"{record.best_epoch} of {record.epochs_run} (by {record.monitor['quantity']})"],
        ["wall time", f"{record.wall_time_s:.1f} s ({record.epoch_time_s:.2f} s per epoch, median)"],
        ["device", record.device],
        ["kernels", _paths(record.model.get("kernels", []))],
        *([["warning", f"{'the same labels' if multi_label else 'one class'} predicted for every image of "
                        f"{' and '.join(one_class)}"]] if one_class else []),
        ["run record", str(record.directory)],
    ]
    return f"{table}\n\n{tabulate(facts, tablefmt='plain')}"


def _parts(parts: dict) -> str:
    """How the trainable parameters split over the model's parts, where it has more than one."""
    return f" ({', '.join(f'{name} {count:,}' for name, count in parts.items())})" if len(parts) > 1 else ""


def _paths(kernels: list[dict]) -> str:
    """Which path each layer took, in one line: ``native lif (3)`` or ``library: beta is learnable (3)``."""
    counts: dict[str, int] = {}
    for entry in kernels:
        label = entry["path"] + (f": {entry['reason']}" if entry["reason"] else "")
        counts[label] = counts.get(label, 0) + 1
    return "; ".join(f"{label} ({count})" for label, count in counts.items()) or "library (no native kernel for this model)"


def _list() -> str:
    from ..core.catalogue import DATASETS

    lines = ["datasets:"]
    for name, info in sorted(DATASETS.items()):
        note = " (trained with BCE per label)" if "multi-label" in info.task else ""
        lines.append(f"  {name:<20} {info.task}, sizes {'/'.join(map(str, info.sizes))}{note}: {info.description}")
    for title, registry in (("encoders", ENCODERS), ("models", MODELS)):
        lines.append(f"{title}:")
        lines += [f"  {name:<20} {summary}" for name, summary in registry.summaries().items()]
        lines += [f"  {name:<20} (unusable) {why}" for name, why in sorted(registry.broken.items())]
    return "\n".join(lines)


def _sweep(args: argparse.Namespace) -> int:
    from ..runs.sweep import check_budgets, expand, load_sweep, record_status, run_sweep

    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError(f"sweep --workers and --threads must be at least 1, got {args.workers} and {args.threads}")
    configs = expand(load_sweep(args.file), out=args.out)
    check_budgets(configs)
    if args.dry_run:
        from ..runs.claims import holder
        from ..runs.pipeline import run_dir

        for config in configs:
            busy = holder(run_dir(config))
            state = record_status(config) or (f"training (pid {busy['pid']} on {busy['host']})" if busy else "to run")
            print(f"{state:<10} {run_dir(config)}")
        return 0
    summary = run_sweep(configs, workers=args.workers, threads=args.threads, executor=args.executor,
                        address=args.address, retry_failed=args.retry_failed, progress=not args.quiet)
    if summary.skipped < summary.total or summary.failed_before:
        print(summary)
    return summary.exit_code


def _tune(args: argparse.Namespace) -> int:
    import os

    from ..runs.tune import load_tune, run_tune

    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError(f"tune --workers and --threads must be at least 1, got {args.workers} and {args.threads}")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    summary = run_tune(load_tune(args.file), trials=args.trials, storage=args.storage, out=args.out,
                       workers=args.workers, threads=threads, rerun=not args.no_rerun, progress=not args.quiet)
    if "rerun" not in summary:
        return 0
    print(summary["rerun"])
    return summary["rerun"].exit_code


def _selected_runs(args: argparse.Namespace):
    from ..runs.record import load_runs

    swept = None
    if getattr(args, "sweep", None):
        from ..runs.sweep import load_sweep, run_ids

        swept = run_ids(load_sweep(args.sweep))
    return [run for run in load_runs(args.results)
            if (not args.dataset or run.identity[0] in args.dataset) and (not args.model or run.identity[1] in args.model)
            and (swept is None or run.run_id in swept)]


def _check_metrics(runs: list, metrics: list[str]) -> None:
    """UsageError naming a metric no run has, with the ones they do have."""
    for metric in metrics:
        if runs and all(run.value(metric) is None for run in runs):
            known = sorted({name for run in runs for name in run.quantities()})
            raise UsageError(f"no run record has {metric!r}; choose from: {', '.join(known)}")


def _table(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write
    from ..analysis.table import build_table, load_reported, render

    reported = [row for path in args.reported for row in load_reported(path)]
    runs = _selected_runs(args)
    _check_metrics(runs, args.metric)
    if args.figure and not args.ranks:
        raise UsageError("--figure draws the critical-difference diagram of --ranks; add --ranks")
    if args.ranks:
        from ..analysis.ranking import plot_critical_difference, rank_runs, render_ranking

        ranking = rank_runs(runs, args.metric[0])
        text = render_ranking(ranking)
        if args.figure:
            print("\n".join(f"wrote {path}" for path in plot_critical_difference(ranking, args.figure)))
    else:
        headers, rows, best = build_table(runs, tuple(args.metric), reference=args.reference, reported=reported)
        text = render(headers, rows, best, args.format)
    print(text)
    if args.output:
        atomic_write(Path(args.output), lambda stream: stream.write((text.rstrip() + "\n").encode()))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from ..analysis.plots import plot

    output = args.output or Path(args.results) / "figures" / f"{args.kind}.png"
    runs = _selected_runs(args)
    if args.kind in ("params-vs-metric", "curves"):
        _check_metrics(runs, [args.metric])
    print(plot(runs, args.kind, output, metric=args.metric))
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from ..analysis.bench import context, run_bench
    from ..core.devices import select_device

    if args.repeats < 1:
        raise UsageError(f"bench --repeats must be at least 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"bench --threads must be at least 1, got {args.threads}")
    device = select_device(args.device)
    if args.threads:
        torch_threads(args.threads)
    results = run_bench(args.model, repeats=args.repeats, device=device)
    facts = context(device)
    if args.json:
        print(json.dumps(results))
        print(f"context: {json.dumps(facts)}", file=sys.stderr)
        return 0
    rows = [[name, r["unit"], r["ours"], r["reference"], f"{r['ratio']:.2f}x", r["inference_ours"], r["inference_reference"],
             f"{r['inference_ratio']:.2f}x", r["latency_ms_ours"], r["latency_ms_reference"]] for name, r in results.items()]
    print(tabulate(rows, headers=["workload", "unit", "ours", "reference", "ratio", "infer ours", "infer ref",
                                  "infer ratio", "b=1 ms ours", "b=1 ms ref"], tablefmt="github"))
    print("\n" + tabulate(list(facts.items()), tablefmt="plain"))
    return 0


def torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def _recount(args: argparse.Namespace) -> int:
    from ..runs.recount import recount

    runs = _selected_runs(args)
    if not runs:
        raise UsageError(f"no completed run records under {args.results} match")
    counted, refused = 0, []
    for run in runs:
        try:
            cost = recount(run.directory)
            if cost is not None:
                counted += 1
                print(f"recounted {run.run_id}: energy with memory accesses {cost['energy_with_memory_pj']:,.0f} pJ")
        except UsageError as error:
            refused.append(run.run_id)
            print(f"refused   {error}", file=sys.stderr)
    print(f"recount: {len(runs)} runs: {counted} recounted, {len(runs) - counted - len(refused)} had every estimate, "
          f"{len(refused)} refused")
    return 1 if refused else 0


def _export(args: argparse.Namespace) -> int:
    if args.mlflow:
        from ..analysis.tracking import export_mlflow

        print(tabulate(list(export_mlflow(args.run_dir, args.tracking_uri).items()), tablefmt="plain"))
        return 0
    from ..analysis.export import export_medmnist, export_onnx

    result = (export_medmnist if args.medmnist else export_onnx)(args.run_dir, args.output)
    print(tabulate(list(result.items()), tablefmt="plain"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..analysis.report import clean_tree, write_report

    if args.all == bool(args.sweeps):
        raise UsageError("report: name sweep files, or --all for every report in RESULTS/reports.yaml (not both)")
    if args.check:
        from ..analysis.published import check

        if not args.all:
            raise UsageError("report --check compares the reports of --all; add --all")
        findings = check(args.results)
        print("\n".join(findings) or f"report --check: every report, figure link and record file under {args.results} matches")
        return 1 if findings else 0
    dirty = not clean_tree(args.allow_dirty)
    if args.all:
        from ..analysis.published import regenerate

        print("\n".join(str(path) for path in regenerate(args.results, dirty=dirty)))
        return 0
    print(write_report(args.sweeps, args.results, args.output, tuple(args.metric), args.reference, args.title, dirty=dirty))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from ..runs.migrate import migrate

    outcome = migrate(args.results, dry_run=args.dry_run)
    verb = "would migrate" if args.dry_run else "migrated"
    for old, new, schemas in outcome.migrated:
        print(f"{verb} {old} -> {new}" + (f" (schema {', '.join(map(str, schemas))})" if schemas else " (folder renamed)"))
    for name, why in outcome.refused:
        print(f"left as it is: {name}: {why}", file=sys.stderr)
    print(outcome)
    return 1 if outcome.refused else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``neurocomp`` console script; returns the exit code."""
    one_line_warnings()
    # SIGTERM (a scheduler, `kill`) ends a run like Ctrl-C: recorded as interrupted, never half-written.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit:  # usage errors (2) and --help/--version (0) as a return value
        return exit.code
    try:
        if args.command == "list":
            print(_list())
            return 0
        if args.command == "run":
            from ..runs.pipeline import claimed, execute  # torch-heavy imports only when a run is asked for

            config = config_from_args(args)
            with claimed(config):
                record = execute(config, progress=not args.quiet)
            print(summary_table(record))
            return 0
        return {"sweep": _sweep, "tune": _tune, "table": _table, "plot": _plot, "report": _report, "bench": _bench,
                "export": _export, "recount": _recount, "migrate": _migrate}[args.command](args)
    except (UsageError, RunFailed) as error:
        print(f"neurocomp: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("neurocomp: interrupted; a finished record is kept, an unfinished run is recorded as interrupted",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
