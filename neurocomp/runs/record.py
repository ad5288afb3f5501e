"""The run record: one typed object with a schema version that owns a run's id, folder, status,
provenance, metrics and cost, and its ``run.json``. Everything that reads runs back (table, plot,
report, sweep, export, the end-of-run summary) goes through :class:`RunRecord`.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..core.errors import UsageError
from ..core.files import write_json
from .identity import IDENTITY_KEYS

# 1: records before the schema was written down (no "schema" key); 2: typed record; 3: run ids of the
# canonical config (neurocomp.runs.identity) and every file's sha256. Older records load as they are;
# `neurocomp migrate` brings them to this schema (neurocomp.runs.migrate).
SCHEMA = 3
STATUSES = ("running", "completed", "failed", "interrupted")


def _git(*args: str) -> Optional[str]:
    """What git says in the checkout this package runs from; None without git or a checkout."""
    try:
        done = subprocess.run(["git", "-C", str(Path(__file__).parent), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"commit", "dirty"}`` of the git checkout this package runs from; both None for an
    installed wheel (then the package version is all there is)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def uncommitted_sources() -> list[str]:
    """Tracked files of the code and configs (``neurocomp/``, ``configs/``, ``benchmarks/``) that
    differ from the commit, as ``git status`` names them; empty for a clean tree or no checkout."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ":/neurocomp", ":/configs", ":/benchmarks")
    return [line[3:] for line in (status or "").splitlines()]


@dataclass
class RunRecord:
    """What one run was and what it gave; ``directory`` is where it lives (not written into it)."""

    run_id: str
    status: str  # running, completed, failed, interrupted
    config: dict  # the resolved config, nested as in YAML
    schema: int = SCHEMA
    dataset: dict = field(default_factory=dict)  # name, path, md5, class names, positive class, sizes
    encoder: dict = field(default_factory=dict)  # steps, step_shape
    params: dict = field(default_factory=dict)  # trainable, total, effective_synapses, target
    model: dict = field(default_factory=dict)  # what the model declares about itself: kernel paths, wiring, spike rates
    seed: Optional[int] = None
    device: Optional[str] = None
    threads: Optional[int] = None
    versions: dict = field(default_factory=dict)  # Python and the packages a result depends on
    code: dict = field(default_factory=dict)  # commit and dirty flag of the code that ran
    command: list = field(default_factory=list)
    started_at: Optional[str] = None
    error: Optional[str] = None  # why a failed run failed, where an interrupted one stopped
    cost: dict = field(default_factory=dict)  # per inference: MACs, accumulates, energy estimate
    files: dict = field(default_factory=dict)  # file name -> {"sha256", "bytes", "shipped"}: the run folder's evidence
    migrations: list = field(default_factory=list)  # what `neurocomp migrate` changed, in order
    metrics: dict = field(default_factory=dict)  # split -> metric -> value (val, test)
    best_epoch: Optional[int] = None
    monitor: dict = field(default_factory=dict)
    epochs_run: Optional[int] = None
    stopped_early: Optional[bool] = None
    epoch_time_s: Optional[float] = None
    wall_time_s: Optional[float] = None
    extra: dict = field(default_factory=dict)  # keys this schema does not know, kept on rewrite
    directory: Optional[Path] = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: Any, directory: Optional[Path] = None) -> "RunRecord":
        """A record from its JSON form; UsageError (one line) for anything that is not one."""
        if not isinstance(data, dict):
            raise UsageError("not a neurocomp run record (not a JSON object)")
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA:
            raise UsageError(f"run record schema {schema!r} is newer than this neurocomp reads ({SCHEMA}); upgrade it")
        if not isinstance(data.get("run_id"), str) or data.get("status") not in STATUSES:
            raise UsageError(f"not a neurocomp run record (needs run_id and a status of {', '.join(STATUSES)})")
        config = data.get("config")
        for section, key in IDENTITY_KEYS:
            if not isinstance(config, dict) or not isinstance(config.get(section), dict) or key not in config[section]:
                raise UsageError(f"run record {data['run_id']!r} lacks config.{section}.{key}")
        if data["status"] == "completed" and not isinstance(data.get("metrics"), dict):
            raise UsageError(f"run record {data['run_id']!r} says completed but has no metrics")
        known = {f.name for f in dataclasses.fields(cls)} - {"directory", "extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["schema"] = schema
        return cls(**values, extra={k: v for k, v in data.items() if k not in known},
                   directory=None if directory is None else Path(directory))

    def to_dict(self) -> dict:
        """The JSON form (``run.json``); the folder is where it is, not part of it."""
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("directory", "extra")}
        return {**plain, **self.extra}

    @classmethod
    def read(cls, directory: str | Path) -> "RunRecord":
        """The record in ``directory/run.json``; UsageError (one line) when there is none or it is not one."""
        path = Path(directory) / "run.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{path.parent} is not a run folder (no run.json)") from None
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise UsageError(f"{path}: not readable JSON ({error})") from None
        try:
            return cls.from_dict(data, path.parent)
        except UsageError as error:
            raise UsageError(f"{path}: {error}") from None

    def write(self, directory: Optional[str | Path] = None) -> None:
        """Write ``run.json`` atomically into ``directory`` (default: the record's own folder)."""
        if directory is not None:
            self.directory = Path(directory)
        write_json(self.directory / "run.json", self.to_dict())

    def section(self, name: str) -> dict:
        """A section of the config (``dataset``, ``model``, ...), empty when absent."""
        value = self.config.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def identity(self) -> tuple[str, str, str, int]:
        """(dataset, model, encoder, seed) as configured."""
        return tuple(self.config[section][key] for section, key in IDENTITY_KEYS)

    def value(self, dotted: str) -> Optional[float]:
        """``test.auc`` -> metrics["test"]["auc"]; ``params`` -> trainable parameters;
        ``params.effective_synapses``, ``epoch_time_s``, ``cost.macs``, ...; None when absent."""
        if dotted == "params":
            dotted = "params.trainable"
        parts = dotted.split(".")
        if parts[0] in ("val", "test"):
            parts = ["metrics", *parts]
        node: Any = self.to_dict()
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, (int, float)) and not isinstance(node, bool) else None

    def quantities(self) -> list[str]:
        """Every dotted name :meth:`value` answers with a number for this record (``test.auc``,
        ``test.operating_point.sensitivity``, ``params``, ``cost.macs``, ``epoch_time_s``, ...): what tables
        and plots can show. The draw spreads (``test.draws.std.*``) are shown beside their metric."""

        def names(prefix: str, node) -> list[str]:
            if isinstance(node, dict):
                return [name for key, child in node.items() if key != "draws" for name in names(f"{prefix}{key}.", child)]
            return [prefix[:-1]] if self.value(prefix[:-1]) is not None else []

        top = {k: v for k, v in self.to_dict().items() if not isinstance(v, (dict, list))}  # epoch_time_s, ...
        found = names("", self.metrics) + names("params.", self.params) + names("cost.", self.cost) + names("", top)
        return sorted(set(found + (["params"] if self.value("params") is not None else [])))

    def history(self) -> list[dict]:
        """history.csv as a list of rows of floats (empty when absent)."""
        path = self.directory / "history.csv"
        if not path.exists():
            return []
        with path.open() as handle:
            return [{k: float(v) if v not in ("", "nan") else float("nan") for k, v in row.items()} for row in csv.DictReader(handle)]

    def predictions(self, split: str = "test", *, draws: bool = False) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(labels (N,), probabilities (N, K)) of a split, or None when not saved. With ``draws``,
        the probabilities of every draw of a stochastic encoder, ``(D, N, K)`` (D = 1 otherwise)."""
        path = self.directory / "predictions.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as arrays:
            if draws and f"{split}_probabilities_draws" in arrays:
                return arrays[f"{split}_labels"], arrays[f"{split}_probabilities_draws"]
            probabilities = arrays[f"{split}_probabilities"]
            return arrays[f"{split}_labels"], probabilities[None] if draws else probabilities


def load_runs(root: str | Path, *, completed_only: bool = True) -> list[RunRecord]:
    """Every run record under ``root`` (a results folder or its ``runs/``), sorted by folder.

    A ``run.json`` that is not a readable neurocomp record is skipped with a warning naming the file
    and why; a table must never crash on one stray file.
    """
    root = Path(root)
    runs_dir = root / "runs" if (root / "runs").is_dir() else root
    runs = []
    for path in sorted(runs_dir.glob("*/run.json")):
        if path.parent.name.startswith("."):
            continue  # a run's staging folder: not a record until it is published
        try:
            record = RunRecord.read(path.parent)
        except UsageError as error:
            warnings.warn(f"skipping {error}", stacklevel=2)
            continue
        if not completed_only or record.status == "completed":
            runs.append(record)
    return runs
