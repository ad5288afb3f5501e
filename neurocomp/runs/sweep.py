"""Sweeps: a base config x paired variants x a grid, expanded to runs with stable ids, resumable.

A run whose folder already holds a finished record (completed, or failed unless retried) is skipped,
so a sweep that was interrupted (Ctrl-C, a killed process, a reboot) resumes where it stopped:
records are written atomically and the completed record last, so no run is lost, duplicated or
half-written. Runs go to local worker processes or, for more than one machine, to Ray tasks whose
records the driver writes.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from tqdm import tqdm

from .claims import Claim
from .sinks import DiskSink, MemorySink
from .processes import die_with_parent
from .identity import run_id
from .record import RunRecord
from ..core.config import RunConfig, load_yaml, resolve, set_dotted
from ..core.errors import RunFailed, UsageError, one_line_warnings

SWEEP_KEYS = ("title", "description", "label", "reported", "reference", "base", "variants", "grid", "adjust", "ablation")


@dataclass
class Sweep:
    """A parsed sweep file: ``base`` config, paired ``variants`` (dotted keys) and a ``grid``."""

    path: Path
    base: dict
    variants: list[dict]
    grid: dict[str, list]
    title: str = ""
    description: str = ""
    reported: Optional[Path] = None  # YAML of the published numbers, for tables and the report
    reference: Optional[str] = None  # the model the report compares AUC against (ΔAUC column, {model:delta})
    label: str = ""  # what the report's rows of this sweep say they are, e.g. "tuned (20 trials)"
    # (when, set) pairs of dotted keys: a run whose config matches ``when`` after its variant and grid
    # values also takes ``set`` (a 3D set fed by slices where the 2D sets are fed by rows)
    adjust: list[tuple[dict, dict]] = field(default_factory=list)
    # An ablation (variants = changes from the base): the validation metric the report ranks the
    # variants by, averaged over seeds and then over datasets, e.g. val.auc; "" for a comparison sweep.
    ablation: str = ""


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; UsageError on unknown keys, an empty grid or a bad variant."""
    path = Path(path)
    raw = load_yaml(path)
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}; a sweep file has {', '.join(SWEEP_KEYS)}")
    base = raw.get("base") or {}
    if isinstance(base, str):  # `base: ../studies/x.yaml`, relative to the sweep file
        base = load_yaml(path.parent / base)
    if not isinstance(base, dict):
        raise UsageError(f"{path}: base must be a mapping or the path of a config file")
    variants = raw.get("variants") or [{}]
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise UsageError(f"{path}: variants must be a list of mappings of dotted keys, e.g. {{model.name: cnn}}")
    grid = raw.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise UsageError(f"{path}: the grid is empty; give at least one dotted key with values, e.g. train.seed: [0, 1, 2]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"{path}: grid key {key!r} needs a non-empty list of values")
    reported, reference = raw.get("reported"), raw.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise UsageError(f"{path}: reference must be a model name, e.g. cnn")
    label = raw.get("label") or ""
    if not isinstance(label, str):
        raise UsageError(f"{path}: label must be text, e.g. 'tuned (20 trials)'")
    ablation = raw.get("ablation") or ""
    if not isinstance(ablation, str) or (ablation and not ablation.startswith("val.")):
        raise UsageError(f"{path}: ablation names the validation metric that ranks the variants, e.g. val.auc")
    return Sweep(path, base, variants, grid, raw.get("title") or path.stem, raw.get("description") or "",
                 path.parent / reported if reported else None, reference, label, _adjustments(path, raw.get("adjust")),
                 ablation)


def _adjustments(path: Path, raw) -> list[tuple[dict, dict]]:
    rule = "adjust must be a list of {when: {dotted key: value}, set: {dotted key: value}}"
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise UsageError(f"{path}: {rule}")
    adjustments = []
    for entry in raw:
        if not (isinstance(entry, dict) and set(entry) == {"when", "set"}
                and all(isinstance(entry[k], dict) and entry[k] for k in ("when", "set"))):
            raise UsageError(f"{path}: {rule}, got {entry!r}")
        adjustments.append((entry["when"], entry["set"]))
    return adjustments


def _get_dotted(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        if isinstance(node, str) and part == "name":  # `model: snn` shorthand
            return node
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def run_ids(sweep: Sweep) -> set[str]:
    """The run id of every run of ``sweep``: which records in a results folder are its runs."""
    return {run_id(config.to_dict()) for config in expand(sweep)}


def expand(sweep: Sweep, out: Optional[str] = None) -> list[RunConfig]:
    """Every run of the sweep as a resolved config (variants x grid product), validated up front."""
    configs, seen = [], set()
    for _, config in _points(sweep, out):
        name = run_id(config.to_dict())
        if name not in seen:  # a variant repeated by the grid is one run, not two
            seen.add(name)
            configs.append(config)
    return configs


def variant_runs(sweep: Sweep) -> list[tuple[dict, list[RunConfig]]]:
    """Each variant of the sweep with the resolved configs of its grid points, in file order."""
    grouped: list[tuple[dict, list[RunConfig]]] = []
    for variant, config in _points(sweep):
        if not grouped or grouped[-1][0] is not variant:
            grouped.append((variant, []))
        grouped[-1][1].append(config)
    return grouped


def _points(sweep: Sweep, out: Optional[str] = None):
    """(variant, resolved config) for every variant x grid point, in order."""
    keys = list(sweep.grid)
    for variant in sweep.variants:
        for values in itertools.product(*(sweep.grid[k] for k in keys)):
            raw = copy.deepcopy(sweep.base)
            for key, value in [*variant.items(), *zip(keys, values)]:
                set_dotted(raw, key, value)
            for when, values_set in sweep.adjust:
                if all(_get_dotted(raw, key) == value for key, value in when.items()):
                    for key, value in values_set.items():
                        set_dotted(raw, key, copy.deepcopy(value))
            if out is not None:
                raw["out"] = out
            try:
                yield variant, resolve(raw)
            except UsageError as error:
                raise UsageError(f"{sweep.path}: variant {variant}: {error}") from None


def check_budgets(configs: list[RunConfig]) -> None:
    """UsageError, before anything trains, naming every run whose parameter budget no width reaches
    (``params`` within ``params_tolerance``); runs already recorded are not checked again."""
    from ..training.assemble import build
    from ..data.datasets import load_dataset

    pending = [c for c in configs if c.params is not None and record_status(c) != "completed"]
    by_dataset: dict[str, list[RunConfig]] = {}
    for config in pending:
        by_dataset.setdefault(json.dumps(dataclasses.asdict(config.dataset), sort_keys=True), []).append(config)
    unreachable, checked = [], set()
    for group in by_dataset.values():
        dataset = load_dataset(group[0].dataset)
        shape, classes, multi_label = dataset.sample_shape, dataset.num_classes, dataset.multi_label
        del dataset  # only its shape is needed; the runs read it themselves
        for config in group:
            # what the width search depends on: dataset, encoder, model, budget and the loss's outputs
            built = {k: v for k, v in config.to_dict().items() if k not in ("train", "eval", "out")}
            key = json.dumps([built, config.train.loss], sort_keys=True, default=str)
            if key in checked:
                continue
            checked.add(key)
            try:
                build(copy.deepcopy(config), shape, classes, multi_label)
            except UsageError as error:
                unreachable.append(f"{config.dataset.name} {config.model.name} {config.params:,}: {error}")
    if unreachable:
        more = f" (and {len(unreachable) - 1} more)" if len(unreachable) > 1 else ""
        raise UsageError(f"{len(unreachable)} budgets no width reaches; {unreachable[0]}{more}")


def record_status(config: RunConfig) -> Optional[str]:
    """The status in the run's record (completed, failed, running), or None if it has none."""
    from .pipeline import run_dir

    try:
        return RunRecord.read(run_dir(config)).status
    except UsageError:
        return None  # missing or unreadable: the run has to be done


def run_task(config_dict: dict, threads: int, keep_in_memory: bool = False) -> dict:
    """Run one sweep entry in this process; never raises for a failing run (an interruption does).

    Returns ``{"status", "run_id", "error", "seconds", "record", "files"}``; ``files`` holds the
    run's files when ``keep_in_memory`` (Ray: the driver writes them).
    """
    from .pipeline import execute, run_dir

    one_line_warnings()  # worker processes start with Python's multi-line format
    config = resolve(config_dict)
    config.train.threads = threads
    directory = run_dir(config)
    sink = MemorySink() if keep_in_memory else DiskSink(directory)
    started = time.perf_counter()
    outcome = {"run_id": directory.name, "error": None, "record": None, "files": None}
    try:
        outcome["record"] = execute(config, progress=False, sink=sink)
        outcome["status"] = "completed"
    except RunFailed as error:  # execute has recorded the failure itself
        outcome.update(status="failed", error=str(error))
    except Exception as error:  # refused before training, or unexpected: one run must not stop the sweep
        message = str(error) if isinstance(error, UsageError) else f"{type(error).__name__}: {error}"
        outcome.update(status="failed", error=message)
        if not sink.published:  # refused before anything was staged: record why
            sink.publish(RunRecord(run_id=directory.name, status="failed", config=config.to_dict(), error=message))
    outcome["seconds"] = time.perf_counter() - started
    if keep_in_memory:
        outcome["files"] = sink.files
    return outcome


@dataclass
class SweepSummary:
    """What a sweep call did with its runs, for its closing line and exit code."""

    total: int
    skipped: int = 0  # recorded before (completed, or failed and not retried)
    completed: int = 0
    failed: list[str] = field(default_factory=list)  # failed now
    failed_before: list[str] = field(default_factory=list)  # recorded as failed, not retried
    elsewhere: list[str] = field(default_factory=list)  # claimed by another live process

    def __str__(self) -> str:
        failed = f", {len(self.failed)} failed ({', '.join(self.failed)})" if self.failed else ", 0 failed"
        parts = [f"sweep: {self.total} runs: {self.completed} completed now, {self.skipped} already recorded{failed}"]
        if self.elsewhere:
            parts.append(f"{len(self.elsewhere)} being trained by other processes ({', '.join(self.elsewhere)})")
        if self.failed_before:
            parts.append(f"{len(self.failed_before)} recorded as failed before ({', '.join(self.failed_before)}); "
                         "run them again with --retry-failed")
        return "; ".join(parts)

    @property
    def exit_code(self) -> int:
        """1 while any run of the sweep is failed (now or recorded before), else 0."""
        return 1 if self.failed or self.failed_before else 0


def run_sweep(
    configs: list[RunConfig],
    *,
    workers: int = 1,
    threads: Optional[int] = None,
    executor: str = "local",
    address: Optional[str] = None,
    retry_failed: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> SweepSummary:
    """Run every config that has no finished record; one overall bar and one line per finished run.

    Each run is claimed just before it starts (:mod:`neurocomp.runs.claims`), so several sweep processes
    or machines on one results folder split the runs between them and train each once.
    """
    from .pipeline import run_dir

    summary = SweepSummary(total=len(configs))
    statuses = {id(c): record_status(c) for c in configs}
    summary.failed_before = [run_dir(c).name for c in configs if statuses[id(c)] == "failed" and not retry_failed]
    finished = {"completed"} if retry_failed else {"completed", "failed"}
    pending = [c for c in configs if statuses[id(c)] not in finished]
    summary.skipped = len(configs) - len(pending)
    if not pending:
        echo(f"sweep: all {len(configs)} runs are already recorded; nothing to do")
        return summary
    workers = max(1, min(workers, len(pending)))
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    bar = tqdm(total=len(configs), initial=summary.skipped, desc="sweep", unit="run", disable=not progress)
    say = bar.write if progress else echo

    def finish(config: RunConfig, outcome: dict) -> None:
        if outcome["files"] is not None:  # a Ray task: the driver writes its files
            MemorySink(outcome["files"]).replay(DiskSink(run_dir(config)))
        if outcome["status"] == "completed":
            summary.completed += 1
            test = outcome["record"].metrics["test"]
            say(f"done   {outcome['run_id']}  test acc {test['accuracy']:.4f}  auc {_fmt(test['auc'])}  ({outcome['seconds']:.0f} s)")
        else:
            summary.failed.append(outcome["run_id"])
            say(f"FAILED {outcome['run_id']}: {outcome['error']}")
        bar.update()

    def claim(config: RunConfig) -> Optional[Claim]:
        """The run's claim, or None where another process holds it or finished the run meanwhile."""
        taken = Claim(run_dir(config))
        if not taken.acquire():
            summary.elsewhere.append(run_dir(config).name)
            say(f"busy   {run_dir(config).name}: being trained by another process")
            bar.update()
            return None
        if record_status(config) in finished:
            taken.release()
            summary.skipped += 1
            bar.update()
            return None
        return taken

    try:
        if executor == "ray":
            _run_ray(pending, threads, address, workers, claim, finish)
        else:
            _run_local(pending, threads, workers, claim, finish)
    finally:
        bar.close()
    return summary


def _run_local(pending: list[RunConfig], threads: int, workers: int, claim, finish) -> None:
    """Runs in this process (one worker) or in ``workers`` spawned processes, each claimed when it starts."""
    if workers == 1:  # here, one at a time: a submitted run is done when submit returns
        _window(pending, 1, claim, finish, submit=lambda c: _finished(run_task(c.to_dict(), threads)),
                wait_any=lambda futures: futures, result=lambda f: f.result())
        return
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        _window(pending, workers, claim, finish, submit=lambda c: pool.submit(run_task, c.to_dict(), threads),
                wait_any=lambda handles: wait(handles, return_when=FIRST_COMPLETED)[0], result=lambda f: f.result())


def _finished(outcome: dict) -> Future:
    future: Future = Future()
    future.set_result(outcome)
    return future


def _window(pending, size: int, claim, finish, *, submit, wait_any, result) -> None:
    """Keep up to ``size`` claimed runs in flight, claiming the next as one finishes."""
    queue, running = list(pending), {}
    try:
        while queue or running:
            while queue and len(running) < size:
                config = queue.pop(0)
                taken = claim(config)
                if taken is None:
                    continue
                try:
                    handle = submit(config)
                except BaseException:  # an interrupted run in this process: its claim goes with it
                    taken.release()
                    raise
                running[handle] = (config, taken)
            for handle in wait_any(list(running)) if running else ():
                config, taken = running.pop(handle)
                try:
                    finish(config, result(handle))
                finally:
                    taken.release()
    finally:
        for _, taken in running.values():
            taken.release()


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _run_ray(pending: list[RunConfig], threads: int, address: Optional[str], workers: int, claim, finish) -> None:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'neurocomp[ray]'") from None
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(num_cpus=threads)(run_task)
    size = max(workers, int(ray.cluster_resources().get("CPU", 1)) // threads)
    _window(pending, size, claim, finish, submit=lambda c: remote.remote(c.to_dict(), threads, True),
            wait_any=lambda refs: ray.wait(refs, num_returns=1)[0], result=ray.get)
