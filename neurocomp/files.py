"""A run's files, each written atomically (temp file, then rename), and the sinks a run writes them through."""

from __future__ import annotations

import csv
import ctypes
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import UsageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp's 0600 would hide results from the group
FOLDER_MODE = 0o777 & ~_umask()  # what mkdir would give: mkdtemp's 0700 would hide a shared cache from the group


def atomic_write(path: Path, write) -> None:
    """Write ``path`` through ``write(stream)`` into a temp file beside it, then rename: a reader
    sees the old file or the new one, never half of one. UsageError when the folder cannot be made
    or written (e.g. a path through a file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        os.fchmod(handle, _FILE_MODE)
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temp, path)
    except BaseException:
        # An interrupt (SIGTERM arrives as KeyboardInterrupt) can land just after the rename: then the
        # temp file is already the new file, and a failing unlink must not hide the interrupt.
        Path(temp).unlink(missing_ok=True)
        raise


def exchange(staging: Path, final: Path) -> None:
    """Make the folder ``staging`` the folder ``final`` in one step; an older ``final`` ends up
    at ``staging`` (the caller removes it). Linux swaps the two atomically (renameat2 with
    RENAME_EXCHANGE), so a crash leaves either folder whole where it was; elsewhere the old folder
    is moved aside first, and a crash in between leaves it beside ``final``, not lost."""
    if not final.exists():
        os.rename(staging, final)
        return
    if _renameat2 is not None and _renameat2(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(final),
                                             _RENAME_EXCHANGE) == 0:
        return
    aside = final.with_name(f".{final.name}.replaced.{os.getpid()}")
    os.rename(final, aside)
    os.rename(staging, final)
    os.rename(aside, staging)


def _libc_renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28: the two-rename fallback
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
_renameat2 = _libc_renameat2()


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


# Weights up to this size ship with their record in git; larger ones are kept out by a .gitignore in
# the run folder and vouched for by their sha256 in the record (a ResNet-18's are 45 MB).
SHIPPED_BYTES = 1_000_000


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def evidence(folder: Path) -> dict:
    """``name -> {"sha256", "bytes", "shipped"}`` for every file of a run folder but its record and
    hidden files: what a results folder commits (``shipped``), and the hashes that vouch for what it
    leaves out (weights over SHIPPED_BYTES). A run that failed before writing anything has none."""
    files = {}
    if not Path(folder).is_dir():
        return files
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != "run.json" and not p.name.startswith(".")):
        size = path.stat().st_size
        files[path.name] = {"sha256": sha256(path), "bytes": size,
                            "shipped": not (path.suffix == ".pt" and size > SHIPPED_BYTES)}
    return files


def hold_back(folder: Path, files: dict) -> None:
    """Keep the files of :func:`evidence` that do not ship out of git with a ``.gitignore`` in the
    run folder (removed when every file ships)."""
    held_back = [name for name, facts in files.items() if not facts["shipped"]]
    ignore = Path(folder) / ".gitignore"
    if held_back:
        text = "# over 1 MB: kept out of git; run.json holds the sha256\n" + "".join(f"/{name}\n" for name in held_back)
        atomic_write(ignore, lambda stream: stream.write(text.encode()))
    else:
        ignore.unlink(missing_ok=True)


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
        from .record import RunRecord  # the record module writes through this one

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
        self.files["record"] = type(record).from_dict(json.loads(json.dumps(_finite(record.to_dict()), default=str)))

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
