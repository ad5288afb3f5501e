"""A run's files, each written atomically (temp file, then rename), and the sinks a run writes them through."""

from __future__ import annotations

import csv
import ctypes
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

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


def json_ready(value):
    """``value`` (nested dicts and lists) with NaN and inf as None: JSON has no NaN, and an undefined
    metric is written as null, never as 0."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def write_json(path: Path, record: dict) -> None:
    """``record`` as indented JSON, NaN/inf as null, written atomically."""
    text = json.dumps(json_ready(record), indent=2, default=str) + "\n"
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
