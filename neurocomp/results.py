"""Reading run records back: the only source tables, plots and reports are built from."""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

REQUIRED_KEYS = ("run_id", "status", "config")


@dataclass
class Run:
    """One run record and where its folder is."""

    directory: Path
    record: dict

    @property
    def config(self) -> dict:
        return self.record["config"]

    @property
    def seed(self) -> int:
        return self.config["train"]["seed"]

    def value(self, dotted: str) -> Optional[float]:
        """``test.auc`` -> record["metrics"]["test"]["auc"]; ``params`` -> trainable parameters;
        ``params.effective_synapses``, ``epoch_time_s``, ...; None when the record lacks it."""
        if dotted == "params":
            dotted = "params.trainable"
        node = self.record
        parts = dotted.split(".")
        if parts[0] in ("val", "test"):
            parts = ["metrics", *parts]
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, (int, float)) and not isinstance(node, bool) else None

    def history(self) -> list[dict]:
        """history.csv as a list of rows of floats (empty when absent)."""
        path = self.directory / "history.csv"
        if not path.exists():
            return []
        with path.open() as handle:
            return [{k: float(v) if v not in ("", "nan") else float("nan") for k, v in row.items()} for row in csv.DictReader(handle)]

    def predictions(self, split: str = "test") -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(labels (N,), probabilities (N, K)) of a split, or None when not saved."""
        path = self.directory / "predictions.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[f"{split}_labels"], arrays[f"{split}_probabilities"]


def load_runs(root: str | Path, *, completed_only: bool = True) -> list[Run]:
    """Every run record under ``root`` (a results folder or its ``runs/``), sorted by run id.

    A ``run.json`` that is not valid JSON or lacks the keys of a neurocomp record is skipped with a
    warning naming the file; a table must never crash on one stray file.
    """
    root = Path(root)
    runs_dir = root / "runs" if (root / "runs").is_dir() else root
    runs = []
    for path in sorted(runs_dir.glob("*/run.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping {path}: not readable JSON ({error})", stacklevel=2)
            continue
        if not isinstance(record, dict) or any(key not in record for key in REQUIRED_KEYS):
            warnings.warn(f"skipping {path}: not a neurocomp run record (needs {', '.join(REQUIRED_KEYS)})", stacklevel=2)
            continue
        if completed_only and record["status"] != "completed":
            continue
        runs.append(Run(path.parent, record))
    return runs
