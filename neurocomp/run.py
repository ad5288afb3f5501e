"""One run: data -> encoder -> model -> trainer -> metrics -> run record under ``<out>/runs/<run_id>/``."""

from __future__ import annotations

import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from . import records
from .config import RunConfig
from .data import Dataset, load_dataset
from .encoders import Encoder
from .errors import RunFailed
from .metrics import parameter_counts
from .registry import ENCODERS, MODELS
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
    """The encoder and model the config names, for this dataset's samples; UsageError if they cannot fit."""
    encoder = ENCODERS.get(config.encoder.name).builder(sample_shape=dataset.sample_shape, **config.encoder.options)
    model = MODELS.get(config.model.name).builder(
        step_shape=encoder.step_shape,
        num_outputs=num_outputs(config.train.loss, dataset.num_classes),
        **config.model.options,
    )
    check_loss_fits(config.train.loss, model)
    return encoder, model


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def execute(config: RunConfig, *, progress: bool = True) -> dict:
    """Train and evaluate one run, write its record, and return the record.

    Everything that can be refused (device, data, encoder/model pairing) is checked before training.
    A failed run (e.g. NaN loss) leaves a record with ``status: failed`` and raises RunFailed.
    """
    started = time.perf_counter()
    device = select_device(config.train.device)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    dataset = load_dataset(config.dataset)
    torch.manual_seed(config.train.seed)  # model initialisation is part of what the seed fixes
    np.random.seed(config.train.seed)
    encoder, model = build(config, dataset)
    model.to(device)
    splits = {name: type(split)(split.images.to(device), split.labels.to(device)) for name, split in dataset.splits.items()}

    resolved = config.to_dict()
    run_id = records.run_id(resolved)
    run_dir = Path(config.out) / "runs" / run_id
    record = {
        "run_id": run_id,
        "status": "running",
        "config": resolved,
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
        "params": parameter_counts(model),
        "seed": config.train.seed,
        "device": _device_name(device),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "command": sys.argv,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

    records.write_json(run_dir / "run.json", record)  # replaces any older record of the same config

    def save_history(result) -> None:
        records.write_history(run_dir / "history.csv", result.history)

    try:
        result = fit(model, encoder, splits["train"], splits["val"], config.train, positive=dataset.positive,
                     progress=progress, on_epoch=save_history)
    except RunFailed as error:
        record.update(status="failed", error=str(error), wall_time_s=time.perf_counter() - started)
        records.write_json(run_dir / "run.json", record)
        raise
    evaluations = {
        name: evaluate(model, encoder, splits[name], loss=config.train.loss, positive=dataset.positive,
                       batch_size=config.train.batch_size, seed=config.train.seed + 1)
        for name in ("val", "test")  # the only time the test split is seen
    }
    records.write_weights(run_dir / "model.pt", model)
    records.write_predictions(
        run_dir / "predictions.npz",
        **{f"{name}_{kind}": getattr(ev, kind) for name, ev in evaluations.items() for kind in ("labels", "probabilities")},
    )
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
    records.write_json(run_dir / "run.json", record)  # last: its presence marks a finished run
    record["run_dir"] = str(run_dir)
    return record
