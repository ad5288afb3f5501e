"""One run: data -> encoder -> model -> trainer -> metrics -> run record under ``<out>/runs/<run_id>/``."""

from __future__ import annotations

import contextlib
import platform
import statistics
import sys
import time
import warnings
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import kernels
from ..core.abilities import DescribesItself, EmitsSpikes
from ..training.assemble import build
from .claims import Claim, holder
from ..core.config import RunConfig, resolve
from ..training.cost import inference_cost
from ..data.datasets import load_dataset
from ..core.devices import check_precision, device_name, select_device
from ..data.encoders import Encoder
from ..core.errors import RunFailed, UsageError
from .sinks import DiskSink
from ..training.losses import training_loss
from ..training.metrics import parameter_counts
from ..training.operating_points import operating_points
from .identity import run_id, widths
from .record import RunRecord, code_version
from ..training.trainer import evaluate, fit


def versions() -> dict:
    """Versions of Python and of the packages a result depends on."""
    found = {"python": platform.python_version()}
    for package in ("neurocomp", "torch", "snntorch", "ncps", "medmnist", "numpy", "scikit-learn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def describe(model: torch.nn.Module) -> dict:
    """The record's ``model`` section: what the model declares about itself (kernel paths, wiring)."""
    return model.describe() if isinstance(model, DescribesItself) else {}


def effective_synapses(described: dict) -> dict:
    """``{"effective_synapses": n}`` for models with a sparse wiring (unmasked synapses), else ``{}``."""
    return {"effective_synapses": described["synapses"]["effective"]} if "synapses" in described else {}


def run_dir(config: RunConfig) -> Path:
    """Where the run of ``config`` is recorded: ``<out>/runs/<run_id>``, known before it runs."""
    return Path(config.out) / "runs" / run_id(config.to_dict())


@contextlib.contextmanager
def claimed(config: RunConfig) -> Iterator[None]:
    """Hold the claim on the run of ``config`` while in this block; UsageError when another live
    process holds it."""
    directory = run_dir(config)
    claim = Claim(directory)
    if not claim.acquire():
        who = holder(directory) or {}
        raise UsageError(f"run {directory.name} is being trained by pid {who.get('pid')} on {who.get('host')}; "
                         f"wait for it, or delete {claim.path} if that process is gone")
    with claim:
        yield


def prepare(config: RunConfig, split_names=("train", "val", "test")):
    """What a run needs before training, everything refusable checked: ``(device, dataset, encoder,
    model, splits)``, the model seeded and on the device, the splits ``split_names`` moved there."""
    device = select_device(config.train.device)
    check_precision(config.train.precision, device)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    dataset = load_dataset(config.dataset)
    torch.manual_seed(config.train.seed)  # model initialisation is part of what the seed fixes
    np.random.seed(config.train.seed)
    if dataset.multi_label and config.train.sampler == "balanced":
        raise UsageError(f"train.sampler=balanced draws every class equally often; {dataset.name} is multi-label "
                         "(an image has several labels, or none): use train.class_weight=balanced")
    encoder, model = build(config, dataset.sample_shape, dataset.num_classes, dataset.multi_label)
    model.to(device)
    splits = {name: type(split)(split.images.to(device), split.labels.to(device))
              for name, split in dataset.splits.items() if name in split_names}
    return device, dataset, encoder, model, splits


def execute(config: RunConfig, *, progress: bool = True, sink=None) -> RunRecord:
    """Train and evaluate one run, record it through ``sink`` (default: a :class:`DiskSink` into
    :func:`run_dir`; the caller holds the run's claim) and return the completed record.

    Everything that can be refused (device, data, encoder/model pairing, a ``model.backend=native``
    no kernel serves) is checked before training, and nothing is written before then. The record is
    published when the run ends: completed, or failed (e.g. NaN loss: RunFailed is raised) or
    interrupted (Ctrl-C, SIGTERM: KeyboardInterrupt is raised) where no completed record of the same
    config is there; a completed record is only ever replaced by a newer completed one.
    """
    with kernels.backend(config.model.backend):
        return _execute(config, progress, sink)


def _execute(config: RunConfig, progress: bool, sink) -> RunRecord:
    started = time.perf_counter()
    # The id comes from the config as asked (a --params width chosen below does not change it),
    # so a sweep knows every run's folder before running it.
    directory = run_dir(config)
    asked = widths(config)  # before prepare() fits them to a --params budget
    sink = sink or DiskSink(directory)
    device, dataset, encoder, model, splits = prepare(config)
    described = describe(model)  # also compiles any kernel on first use, before any timing starts

    record = RunRecord(
        run_id=directory.name,
        status="running",
        config=config.to_dict(),
        dataset={
            "name": dataset.name,
            "path": str(dataset.path),
            "md5": dataset.md5,
            "class_names": list(dataset.class_names),
            "positive": dataset.positive,
            "positive_name": None if dataset.positive is None else dataset.class_names[dataset.positive],
            "multi_label": dataset.multi_label,
            "storage": "memory" if dataset.storage is None else f"disk: {dataset.storage}",
            "sample_shape": list(dataset.sample_shape),
            "sizes": {name: len(split) for name, split in splits.items()},
        },
        encoder={"steps": encoder.steps, "step_shape": list(encoder.step_shape)},
        params={**parameter_counts(model), **effective_synapses(described), "target": config.params,
                **({"asked": asked} if config.params is not None else {})},
        model=described,
        seed=config.train.seed,
        device=device_name(device),
        threads=torch.get_num_threads(),
        versions=versions(),
        code=code_version(),
        command=sys.argv,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    sink.record(record)  # staged: a completed record of the same config stays until this one completes
    history: list[dict] = []

    def on_epoch(result) -> None:
        history[:] = result.history
        sink.history(result.history)

    try:
        _train_and_evaluate(config, dataset.positive, encoder, model, splits, record, sink,
                            progress=progress, on_epoch=on_epoch)
    except (Exception, KeyboardInterrupt) as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        record.status = "interrupted" if interrupted else "failed"
        record.error = (f"interrupted after {len(history)} of {config.train.epochs} epochs" if interrupted
                        else str(error) if isinstance(error, (RunFailed, UsageError)) else f"{type(error).__name__}: {error}")
        record.epochs_run, record.wall_time_s = len(history), time.perf_counter() - started
        if not sink.publish(record):
            warnings.warn(f"the completed record of {directory.name} is kept; this {record.status} re-run is not recorded",
                          stacklevel=2)
        raise
    record.wall_time_s = time.perf_counter() - started
    sink.publish(record)
    record.directory = directory
    return record


def _train_and_evaluate(config: RunConfig, positive, encoder: Encoder, model: torch.nn.Module, splits: dict,
                        record: RunRecord, sink, *, progress: bool, on_epoch) -> None:
    """Fit, select on validation, test once and count the cost; results go into ``record`` and ``sink``."""
    device = splits["train"].images.device
    # The rate kernel compiles on its first draw: draw once now, so no build time lands in an epoch.
    encoder(splits["train"].images[:1].float().div_(255.0), torch.Generator(device=device).manual_seed(0))
    loss = training_loss(config.train, splits["train"].labels, len(record.dataset["class_names"]))
    result = fit(model, encoder, splits["train"], splits["val"], config.train, loss=loss, positive=positive,
                 progress=progress, on_epoch=on_epoch)
    evaluations = {
        name: evaluate(model, encoder, splits[name], loss=loss, positive=positive, batch_size=config.train.batch_size,
                       seed=config.train.seed + 1, draws=config.eval.draws, precision=config.train.precision)
        for name in ("val", "test")  # the only time the test split is seen
    }
    # Cost per inference and spike rates, measured on a test batch (the test split is not scored again).
    probe = cost_probe(config, encoder, splits["test"].images)
    model.eval()
    record.cost = inference_cost(model, probe, input_spikes=encoder.spikes)
    if isinstance(model, EmitsSpikes):
        record.model["spike_rates"] = model.spike_rates(probe)
    sink.weights(model.state_dict())
    # {split}_probabilities: the first draw (N, K), as a single evaluation gives; every draw in
    # {split}_probabilities_draws (D, N, K) when the encoder is stochastic.
    arrays = {}
    for name, ev in evaluations.items():
        arrays.update({f"{name}_labels": ev.labels, f"{name}_probabilities": ev.probabilities[0]})
        if len(ev.probabilities) > 1:
            arrays[f"{name}_probabilities_draws"] = ev.probabilities
    sink.predictions(arrays)
    record.status = "completed"
    record.metrics = {
        name: {"loss": ev.loss, **ev.metrics, "draws": {"n": len(ev.probabilities), "std": ev.draw_std}}
        for name, ev in evaluations.items()
    }
    if positive is not None and all(len(np.unique(ev.labels)) == 2 for ev in evaluations.values()):
        # Binary: also the test metrics at a threshold chosen on validation, and ROC operating points.
        record.metrics["test"].update(operating_points(
            *((evaluations[name].labels, evaluations[name].probabilities) for name in ("val", "test")),
            positive, rule=config.eval.threshold, seed=config.train.seed))
    record.best_epoch = result.best_epoch or None
    record.monitor = {"quantity": config.train.monitor, "best": result.best_value}
    record.epochs_run = len(result.history)
    record.stopped_early = result.stopped_early
    record.epoch_time_s = statistics.median(row["seconds"] for row in result.history)


def cost_probe(config: RunConfig, encoder: Encoder, test_images: torch.Tensor) -> torch.Tensor:
    """The encoded test batch a run's cost is counted on: the first ``batch_size`` test images
    ``(N, *sample)`` uint8, encoded with the run's evaluation seed -> ``(T, B, *step_shape)``."""
    generator = torch.Generator(device=test_images.device).manual_seed(config.train.seed + 1)
    return encoder(test_images[: config.train.batch_size].float().div_(255.0), generator)


def load_trained(directory: str | Path, *, weights: bool = True) -> tuple[RunRecord, RunConfig, Encoder, torch.nn.Module]:
    """The record, config, encoder and model of a recorded run, with its best weights (``model.pt``).

    UsageError when the folder has no run record or no weights.
    """
    record = RunRecord.read(directory)
    if weights and not (record.directory / "model.pt").exists():
        raise UsageError(f"{record.directory} has no weights (model.pt); only completed runs save them")
    config = resolve(record.config)
    config.params = None  # the recorded options hold the width the budget chose; no search again
    encoder, model = build(config, tuple(record.dataset["sample_shape"]), len(record.dataset["class_names"]),
                           record.dataset.get("multi_label", False))  # records before multi-label support lack it
    if weights:
        try:
            state = torch.load(record.directory / "model.pt", weights_only=True, map_location="cpu")
            model.load_state_dict(state)
        except Exception as error:  # a tampered or foreign file: refused by the safe loader, in one line
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise UsageError(f"{record.directory / 'model.pt'} is not this run's weights ({type(error).__name__}: {first})") from None
    return record, config, encoder, model.eval()
