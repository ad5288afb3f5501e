"""Claims on run ids, so that processes and machines sharing a results folder train each run once.

A claim is ``runs/<run_id>.claim`` holding the claimer's host, pid and start time. It is written to a
private file first and then hard-linked into place: ``link`` is atomic and fails where the name exists
(also on NFS), and the claim appears complete, so no rival ever reads a half-written one and judges it
stale (an ``O_EXCL`` create leaves that moment open). Its modification time is a heartbeat, refreshed by a
daemon thread while the claim is held. A claim is stale, and taken over, when its holder is a dead
process on this host or its heartbeat is older than ``STALE_SECONDS`` (a machine that went away).
The standard library is enough here: ``filelock``'s OS locks vanish with their process, which would
spare the pid check, but are not reliable on network file systems, where several machines meet.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Optional

from ..core.errors import UsageError
from .sinks import remove_staging

HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 600.0  # ten missed heartbeats


def claim_path(run_dir: Path) -> Path:
    """The claim file of the run folder ``run_dir`` (beside it, so claiming never creates the folder)."""
    return run_dir.parent / f"{run_dir.name}.claim"


def holder(run_dir: Path) -> Optional[dict]:
    """``{"host", "pid", "since"}`` of a live claim on ``run_dir``, or None (no claim, or a stale one)."""
    path = claim_path(run_dir)
    try:
        age = time.time() - path.stat().st_mtime
        info = json.loads(path.read_text())
    except OSError:
        return None  # released
    except ValueError:
        info = None  # not ours to read: its heartbeat alone says whether it lives
    if age > STALE_SECONDS:
        return None
    if not isinstance(info, dict):
        return {"host": "?", "pid": "?", "since": None}
    if info.get("host") == socket.gethostname() and not _alive(info.get("pid")):
        return None
    return info


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Claim:
    """An exclusive claim on one run; ``acquire()`` is False while another live process holds it."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = claim_path(self.run_dir)
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None
        self._made: list[Path] = []

    def acquire(self) -> bool:
        """Claim the run (taking over a stale claim, removing its leftover staging folders); False when a
        live claim is someone else's. UsageError when the results folder cannot be made (e.g. ``--out`` names a file)."""
        folder = self.path.parent
        # The folders this claim makes are removed again if the run leaves nothing in them.
        self._made = [p for p in (folder, *folder.parents) if not p.exists()]
        for _ in range(3):  # again after taking over a stale claim, or after the folder vanished
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:  # a file where a folder should be, no permission
                raise UsageError(f"results folder {folder}: {error.strerror or error}") from None
            try:
                self._place()
            except FileNotFoundError:
                continue  # another claim's release removed the empty folder meanwhile
            except FileExistsError:
                if holder(self.run_dir) is not None or not self._take_over():
                    return False
                continue
            remove_staging(self.run_dir)  # nobody else runs it now: any staging folder is a killed run's
            self._beat = threading.Thread(target=self._heartbeat, daemon=True)
            self._beat.start()
            return True
        return False

    def _place(self) -> None:
        """Link a complete claim file into place; FileExistsError where one is there."""
        private = self.path.with_name(f".{self.path.name}.{socket.gethostname()}.{os.getpid()}")
        private.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}))
        try:
            os.link(private, self.path)
        finally:
            private.unlink(missing_ok=True)

    def _take_over(self) -> bool:
        # Renaming is atomic: of several processes that found the claim stale, one moves it away.
        # (A process that judged it stale just before another took it over could still move the
        # fresh claim; that needs two takeovers of one dead claim within a few microseconds.)
        try:
            os.replace(self.path, self.path.with_name(f".{self.path.name}.stale.{os.getpid()}"))
        except FileNotFoundError:
            return True  # released meanwhile: try to create it
        os.unlink(self.path.with_name(f".{self.path.name}.stale.{os.getpid()}"))
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        """Give the run up (its record is published, or it ended)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
            self.path.unlink(missing_ok=True)
            for folder in self._made:  # innermost first; a folder something else now uses stays
                try:
                    folder.rmdir()
                except OSError:
                    break

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
