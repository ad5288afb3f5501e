"""Worker processes that never outlive the process that started them.

A sweep or tune killed with SIGKILL cannot stop its pool: its spawned workers would train on as
orphans, and the resumed sweep or tune would train the same runs or trials again beside them. On
Linux each worker asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``); elsewhere
nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Pool initializer: this process is killed when ``parent`` (the pid that started it) dies."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)
