"""Native CPU kernels (``csrc/*.cpp``), compiled on first use for this CPU and cached.

Each kernel computes exactly what the library path computes (ncps, snnTorch); where it cannot be
built (no compiler), on CUDA, or with ``NEUROCOMP_NATIVE=0``, the library path runs instead.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
import warnings
from pathlib import Path

SOURCES = Path(__file__).parent / "csrc"
BUILD_SECONDS: dict[str, float] = {}  # kernel -> seconds its first load took in this process
# -fopenmp: at::parallel_for is an OpenMP pragma in torch's headers, so without it a kernel runs on
# one thread; it also honours the kernels' `omp simd` loops. -fno-trapping-math lets loops over
# fastmath.h vectorise (it assumes no FP trap handlers). Neither changes a value.
CFLAGS = ["-O3", "-march=native", "-fno-trapping-math", "-fopenmp"]


def _headers_digest() -> str:
    """A digest of the shared headers: torch's build cache hashes the sources only, so a header
    change must reach the compiler flags to trigger a rebuild."""
    digest = hashlib.sha256()
    for header in sorted(SOURCES.glob("*.h")):
        digest.update(header.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def load(kernel: str):
    """The compiled module of ``csrc/<kernel>.cpp``, or None (a warning says why, once)."""
    if os.environ.get("NEUROCOMP_NATIVE", "1") == "0":
        return None
    from torch.utils import cpp_extension

    started = time.perf_counter()
    try:
        module = cpp_extension.load(name=f"neurocomp_{kernel}", sources=[str(SOURCES / f"{kernel}.cpp")],
                                    extra_cflags=[*CFLAGS, f"-DNEUROCOMP_HEADERS={_headers_digest()}"],
                                    extra_ldflags=["-fopenmp"], verbose=False)
    except Exception as error:  # no compiler, no headers, an unsupported CPU: fall back, say so
        warnings.warn(f"native kernel {kernel} unavailable, using the library path "
                      f"({type(error).__name__}: {str(error)[:200]})", stacklevel=2)
        return None
    BUILD_SECONDS[kernel] = time.perf_counter() - started
    return module


def runs_on(kernel: str, x) -> bool:
    """Whether ``kernel`` can compute on the tensor ``x``: CPU, float32/64, and the kernel compiled."""
    import torch

    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and load(kernel) is not None


@contextlib.contextmanager
def library_path():
    """Within this block no native kernel is used (e.g. for ONNX export, which cannot see them)."""
    saved = os.environ.get("NEUROCOMP_NATIVE")
    os.environ["NEUROCOMP_NATIVE"] = "0"
    load.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["NEUROCOMP_NATIVE"]
        else:
            os.environ["NEUROCOMP_NATIVE"] = saved
        load.cache_clear()
