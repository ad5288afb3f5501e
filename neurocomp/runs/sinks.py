"""Where a run writes its files as it goes: a staging folder published whole as the run folder
(DiskSink), or memory, for a run on another machine whose driver replays it to disk (MemorySink)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

from ..core.errors import UsageError
from ..core.files import json_ready, evidence, exchange, hold_back, write_history, write_predictions, write_weights
from .record import RunRecord


class DiskSink:
    """Writes a run's files as the run produces them into a staging folder beside its run folder,
    and publishes them as the run folder in one step when the run ends (:meth:`publish`), so a
    finished record is never replaced by an unfinished one, nor mixed with another run's files."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.staging = staging_folder(self.run_dir, os.getpid())
        self.published = False  # whether the run's end went through publish()

    def record(self, record) -> None:
        """``record`` (a RunRecord) as the staged run.json."""
        record.write(self.staging)

    def history(self, rows: list[dict]) -> None:
        """The epochs so far, as the staged history.csv."""
        write_history(self.staging / "history.csv", rows)

    def weights(self, state: dict) -> None:
        """The best weights, as the staged model.pt."""
        write_weights(self.staging / "model.pt", state)

    def predictions(self, arrays: dict) -> None:
        """Labels and probabilities per split (name -> array), as the staged predictions.npz."""
        write_predictions(self.staging / "predictions.npz", **arrays)

    def publish(self, record) -> bool:
        """Stage ``record`` (a RunRecord, written last) and make the staged folder the run folder:
        always when the run completed; when it failed or was interrupted, only where no completed
        record is there. Returns whether it was published; the staging folder is gone either way."""
        self.published = True
        record.files = evidence(self.staging)
        hold_back(self.staging, record.files)
        self.record(record)
        try:
            kept = record.status != "completed" and RunRecord.read(self.run_dir).status == "completed"
        except UsageError:
            kept = False
        if not kept:
            exchange(self.staging, self.run_dir)
        shutil.rmtree(self.staging, ignore_errors=True)
        return not kept


def staging_folder(run_dir: Path, pid: int) -> Path:
    """Where process ``pid`` stages the files of the run folder ``run_dir``."""
    return run_dir.parent / f".{run_dir.name}.staging.{pid}"


def remove_staging(run_dir: Path) -> None:
    """Remove every staging folder of ``run_dir``: called by whoever has just claimed the run, for
    whom they are leftovers of a killed process."""
    for leftover in run_dir.parent.glob(f".{run_dir.name}.staging.*"):
        shutil.rmtree(leftover, ignore_errors=True)


class MemorySink:
    """Keeps the latest of each file in memory, for a run on another machine (a Ray task): the
    driver replays it into a DiskSink, so only the driver writes the results folder."""

    def __init__(self, files: Optional[dict] = None):
        self.files: dict = files if files is not None else {}
        self.published = False

    def record(self, record) -> None:
        """A copy of ``record`` (a RunRecord) as it would be read back from run.json."""
        self.files["record"] = type(record).from_dict(json.loads(json.dumps(json_ready(record.to_dict()), default=str)))

    def history(self, rows: list[dict]) -> None:
        self.files["history"] = list(rows)

    def weights(self, state: dict) -> None:
        self.files["weights"] = {k: v.detach().cpu().clone() for k, v in state.items()}

    def predictions(self, arrays: dict) -> None:
        self.files["predictions"] = dict(arrays)

    def publish(self, record) -> bool:
        """Keep the final record; the driver publishes it with :meth:`replay`."""
        self.published = True
        self.record(record)
        return True

    def replay(self, sink) -> bool:
        """Write everything into ``sink`` and publish the record there, as a local run does."""
        for kind in ("history", "weights", "predictions"):
            if kind in self.files:
                getattr(sink, kind)(self.files[kind])
        return sink.publish(self.files["record"])
