"""One run: data -> encoder -> model -> trainer -> metrics -> run record under ``<out>/runs/<run_id>/``."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from . import kernels, records
from .config import RunConfig
from .data import Dataset, load_dataset
from .encoders import Encoder
from .cost import inference_cost
from .errors import RunFailed, UsageError
from .metrics import parameter_counts
from .models import build_model
from .registry import ENCODERS, MODELS
from .sizing import fit_width, scaled
from .trainer import check_loss_fits, evaluate, fit, num_outputs, select_device


def versions() -> dict:
    """Versions of Python and of the packages a result depends on."""
    found = {"python": platform.python_version()}
    for package in ("neurocomp", "torch", "snntorch", "ncps", "medmnist", "numpy", "scikit-learn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def build(config: RunConfig, dataset: Dataset) -> tuple[Encoder, torch.nn.Module]:
    """The encoder and model the config names, for this dataset's samples; UsageError if they cannot fit.

    With a parameter budget (``config.params``) the model's width option is first chosen to meet it
    and written into ``config.model.options``, so the record holds the width that ran.
    """
    encoder = ENCODERS.get(config.encoder.name).builder(sample_shape=dataset.sample_shape, **config.encoder.options)
    outputs = num_outputs(config.train.loss, dataset.num_classes)

    def make(options: dict) -> torch.nn.Module:
        return build_model(config.model.name, encoder=encoder, num_outputs=outputs, **options)

    if config.params is not None:
        config.model.options[_width_option(config)] = _fit_width(config, make)
    model = make(config.model.options)
    check_loss_fits(config.train.loss, model)
    return encoder, model


def _width_option(config: RunConfig) -> str:
    option = MODELS.get(config.model.name).meta.get("width")
    if option is None or option not in config.model.options:
        raise UsageError(f"--params: model {config.model.name!r} does not name a width option to scale")
    if config.model.options[option] == ():
        raise UsageError(f"--params: model.{option} is empty, so there is no width to scale")
    return option


def _fit_width(config: RunConfig, make) -> int:
    option = _width_option(config)
    base = config.model.options[option]
    counts: dict[int, Optional[int]] = {}

    def count_at(width: int) -> Optional[int]:
        if width not in counts:
            try:
                counts[width] = parameter_counts(make({**config.model.options, option: scaled(base, width)}))["trainable"]
            except UsageError:
                counts[width] = None
        return counts[width]

    width, _ = fit_width(count_at, config.params, option)
    return scaled(base, width)


def effective_synapses(model: torch.nn.Module) -> dict:
    """``{"effective_synapses": n}`` for models with a sparse wiring (unmasked synapses), else ``{}``."""
    described = model.describe() if hasattr(model, "describe") else {}
    return {"effective_synapses": described["synapses"]["effective"]} if "synapses" in described else {}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def run_dir(config: RunConfig) -> Path:
    """Where the run of ``config`` is recorded: ``<out>/runs/<run_id>``, known before it runs."""
    return Path(config.out) / "runs" / records.run_id(config.to_dict())


def execute(config: RunConfig, *, progress: bool = True, sink=None) -> dict:
    """Train and evaluate one run with the kernels ``config.model.backend`` allows (see :func:`_execute`)."""
    with kernels.backend(config.model.backend):
        return _execute(config, progress=progress, sink=sink)


def _execute(config: RunConfig, *, progress: bool, sink) -> dict:
    """Train and evaluate one run, record it through ``sink`` (default: files under
    :func:`run_dir`) and return the record.

    Everything that can be refused (device, data, encoder/model pairing) is checked before training.
    A failed run (e.g. NaN loss) leaves a record with ``status: failed`` and raises RunFailed.
    """
    started = time.perf_counter()
    # The id comes from the config as asked (a --params width chosen below does not change it),
    # so a sweep knows every run's folder before running it.
    directory = run_dir(config)
    sink = sink or records.DiskSink(directory)
    device = select_device(config.train.device)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    dataset = load_dataset(config.dataset)
    torch.manual_seed(config.train.seed)  # model initialisation is part of what the seed fixes
    np.random.seed(config.train.seed)
    encoder, model = build(config, dataset)
    model.to(device)
    splits = {name: type(split)(split.images.to(device), split.labels.to(device)) for name, split in dataset.splits.items()}

    record = {
        "run_id": directory.name,
        "status": "running",
        "config": config.to_dict(),
        "dataset": {
            "name": dataset.name,
            "path": str(dataset.path),
            "md5": dataset.md5,
            "class_names": list(dataset.class_names),
            "positive": dataset.positive,
            "positive_name": None if dataset.positive is None else dataset.class_names[dataset.positive],
            "sample_shape": list(dataset.sample_shape),
            "sizes": {name: len(split) for name, split in splits.items()},
        },
        "encoder": {"steps": encoder.steps, "step_shape": list(encoder.step_shape)},
        "params": {**parameter_counts(model), **effective_synapses(model), "target": config.params},
        "model": model.describe() if hasattr(model, "describe") else {},
        "seed": config.train.seed,
        "device": _device_name(device),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "command": sys.argv,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

    sink.record(record)  # replaces any older record of the same config
    try:
        result = fit(model, encoder, splits["train"], splits["val"], config.train, positive=dataset.positive,
                     progress=progress, on_epoch=lambda result: sink.history(result.history))
    except RunFailed as error:
        record.update(status="failed", error=str(error), wall_time_s=time.perf_counter() - started)
        sink.record(record)
        raise
    evaluations = {
        name: evaluate(model, encoder, splits[name], loss=config.train.loss, positive=dataset.positive,
                       batch_size=config.train.batch_size, seed=config.train.seed + 1)
        for name in ("val", "test")  # the only time the test split is seen
    }
    # Cost per inference and spike rates, measured on a test batch (the test split is not scored again).
    generator = torch.Generator(device=device).manual_seed(config.train.seed + 1)
    probe = encoder(splits["test"].images[: config.train.batch_size].float().div_(255.0), generator)
    model.eval()
    record["cost"] = inference_cost(model, probe)
    if hasattr(model, "describe_activity"):
        record["model"].update(model.describe_activity(probe))
    sink.weights(model.state_dict())
    sink.predictions({f"{name}_{kind}": getattr(ev, kind) for name, ev in evaluations.items() for kind in ("labels", "probabilities")})
    epoch_seconds = [row["seconds"] for row in result.history]
    record.update(
        status="completed",
        metrics={name: {"loss": ev.loss, **ev.metrics} for name, ev in evaluations.items()},
        best_epoch=result.best_epoch or None,
        monitor={"quantity": config.train.monitor, "best": result.best_value},
        epochs_run=len(result.history),
        stopped_early=result.stopped_early,
        epoch_time_s=statistics.median(epoch_seconds),
        wall_time_s=time.perf_counter() - started,
    )
    sink.record(record)  # last: a completed record marks a finished run
    return {**record, "run_dir": str(directory)}


def load_trained(directory: str | Path, *, weights: bool = True) -> tuple[dict, RunConfig, Encoder, torch.nn.Module]:
    """The record, config, encoder and model of a recorded run, with its best weights (``model.pt``).

    UsageError when the folder has no run record or no weights.
    """
    from .config import resolve

    directory = Path(directory)
    try:
        record = json.loads((directory / "run.json").read_text())
    except (OSError, ValueError):
        raise UsageError(f"{directory} is not a run folder (no readable run.json)") from None
    if weights and not (directory / "model.pt").exists():
        raise UsageError(f"{directory} has no weights (model.pt); only completed runs save them")
    config = resolve(record["config"])
    encoder = ENCODERS.get(config.encoder.name).builder(sample_shape=tuple(record["dataset"]["sample_shape"]),
                                                        **config.encoder.options)
    outputs = num_outputs(config.train.loss, len(record["dataset"]["class_names"]))
    model = build_model(config.model.name, encoder=encoder, num_outputs=outputs, **config.model.options)
    if weights:
        model.load_state_dict(torch.load(directory / "model.pt", weights_only=True, map_location="cpu"))
    return record, config, encoder, model.eval()
