"""The one rule for when a native kernel runs, and the one switch that can overrule it.

A kernel runs only when (1) the switch allows it (``model.backend``: ``auto``, ``native`` or
``library``; ``NEUROCOMP_NATIVE=0`` in the environment forces ``library``), (2) the module's maths
is exactly what the kernel computes (each kernel module writes that check once), (3) the tensors are
float32/64 on the CPU, and (4) the kernel compiled. Otherwise the library (snnTorch, ncps) runs and
the :class:`Decision` says why; under ``native`` that is a UsageError instead, so a run asked to be
fast never silently is not.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch

from ..core.errors import UsageError
from . import build

BACKENDS = ("auto", "native", "library")
_setting = "auto"


@dataclass(frozen=True)
class Decision:
    """Which path computes one layer: ``kernel`` natively, or the library with the ``reason``."""

    kernel: str
    native: bool
    reason: str = ""  # why the library path runs; empty when the kernel does

    def describe(self, where: str) -> dict:
        """This decision as the run record holds it: ``{"where", "path", "reason"}``."""
        return {"where": where, "path": f"native {self.kernel}" if self.native else "library", "reason": self.reason}


def current_backend() -> str:
    """The switch in force: ``library`` under ``NEUROCOMP_NATIVE=0``, else the last :func:`backend`."""
    return "library" if os.environ.get("NEUROCOMP_NATIVE") == "0" else _setting


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Within this block the switch is ``name`` (``auto``, ``native`` or ``library``)."""
    global _setting
    if name not in BACKENDS:
        raise UsageError(f"model.backend: unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    saved, _setting = _setting, name
    try:
        yield
    finally:
        _setting = saved


def _device(kernel: str) -> str:
    """The device a kernel computes on: C++ kernels on the CPU, Triton's (``triton_*``) on CUDA."""
    return "cuda" if kernel.startswith("triton_") else "cpu"


def _available(kernel: str) -> bool:
    if _device(kernel) == "cuda":
        try:
            import triton  # noqa: F401  (ships with torch's CUDA builds)
        except ImportError:
            return False
        return True
    return build.load(kernel) is not None


def decide(kernel: str, device: torch.device, dtype: torch.dtype, mismatch: Callable[[], Optional[str]]) -> Decision:
    """Whether ``kernel`` computes a module on tensors of ``device`` and ``dtype``; ``mismatch()``
    says how the module's maths differs from the kernel's (None: it does not)."""
    setting = current_backend()
    if setting == "library":
        return Decision(kernel, False, "model.backend is library")
    reason = mismatch()
    wanted = _device(kernel)
    if reason is None and device.type != wanted:
        reason = f"the {kernel} kernel is for {wanted.upper()} tensors, not {device.type}"
    if reason is None and dtype not in (torch.float32, torch.float64):
        reason = f"the native kernels compute in float32/64, not {dtype}"
    if reason is None and not _available(kernel):
        reason = f"the {kernel} kernel could not be {'loaded' if wanted == 'cuda' else 'compiled'} here"
    if reason is None:
        return Decision(kernel, True)
    if setting == "native":
        raise UsageError(f"model.backend=native, but the {kernel} kernel does not apply: {reason}")
    return Decision(kernel, False, reason)
