"""A run's files, each written atomically (temp file, then rename), and the sinks a run writes them through."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

def atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _finite(value):
    # JSON has no NaN: an undefined metric is written as null, never as 0.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, record: dict) -> None:
    """``record`` as indented JSON, NaN/inf as null, written atomically."""
    text = json.dumps(_finite(record), indent=2, default=str) + "\n"
    atomic_write(path, lambda stream: stream.write(text.encode()))


def write_history(path: Path, rows: list[dict]) -> None:
    """One CSV row per epoch, written atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write(path, lambda stream: stream.write(buffer.getvalue().encode()))


def write_weights(path: Path, state: dict) -> None:
    """A state dict (load with ``torch.load(path, weights_only=True)``), written atomically."""
    import torch  # here: the CLI reads records without torch (``neurocomp --help`` in < 0.5 s)

    atomic_write(path, lambda stream: torch.save(state, stream))


def write_predictions(path: Path, **arrays: np.ndarray) -> None:
    """Labels and probabilities per split (plain arrays, no pickle), written atomically."""
    atomic_write(path, lambda stream: np.savez_compressed(stream, **arrays))


class DiskSink:
    """Writes a run's files under ``run_dir`` as the run produces them."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def record(self, record) -> None:
        """``record`` (a RunRecord) as this folder's run.json."""
        record.write(self.run_dir)

    def history(self, rows: list[dict]) -> None:
        write_history(self.run_dir / "history.csv", rows)

    def weights(self, state: dict) -> None:
        write_weights(self.run_dir / "model.pt", state)

    def predictions(self, arrays: dict) -> None:
        write_predictions(self.run_dir / "predictions.npz", **arrays)


class MemorySink:
    """Keeps the latest of each file in memory, for a run on another machine (a Ray task): the
    driver replays it into a DiskSink, so only the driver writes the results folder."""

    def __init__(self, files: Optional[dict] = None):
        self.files: dict = files if files is not None else {}

    def record(self, record) -> None:
        """A copy of ``record`` (a RunRecord) as it would be read back from run.json."""
        self.files["record"] = type(record).from_dict(json.loads(json.dumps(_finite(record.to_dict()), default=str)))

    def history(self, rows: list[dict]) -> None:
        self.files["history"] = list(rows)

    def weights(self, state: dict) -> None:
        self.files["weights"] = {k: v.detach().cpu().clone() for k, v in state.items()}

    def predictions(self, arrays: dict) -> None:
        self.files["predictions"] = dict(arrays)

    def replay(self, sink) -> None:
        """Write everything into ``sink``; the record last, as a local run does."""
        for kind in ("history", "weights", "predictions", "record"):
            if kind in self.files:
                getattr(sink, kind)(self.files[kind])
