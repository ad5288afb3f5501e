"""Compiling and loading the native CPU kernels (``csrc/*.cpp``): built on first use for this CPU
and cached per environment and source tree, so two virtual environments never rebuild each other's."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import sys
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


def build_directory(kernel: str) -> Path:
    """Where ``kernel`` is built: torch keys its cache by the extension's name only, so the folder
    is keyed by what the binary depends on (torch, Python, machine, flags) and by where its sources
    are (each environment or checkout has its own): two of them never rebuild each other's."""
    import torch

    key = "|".join([torch.__version__, sys.version, platform.machine(), *CFLAGS, str(SOURCES.resolve())])
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    directory = Path(root) / f"neurocomp-{hashlib.sha256(key.encode()).hexdigest()[:12]}" / kernel
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@functools.lru_cache(maxsize=None)
def load(kernel: str):
    """The compiled module of ``csrc/<kernel>.cpp``, or None (a warning says why, once)."""
    # Importing cpp_extension on a machine without CUDA logs "No CUDA runtime is found" at warning
    # level: true, irrelevant to CPU kernels, and printed on every CPU run.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import cpp_extension

    started = time.perf_counter()
    directory = build_directory(kernel)
    if not any(directory.glob("*.so")):
        print(f"neurocomp: compiling the native {kernel} kernel for this CPU (once per environment, "
              "about a minute)", file=sys.stderr)
    try:
        module = cpp_extension.load(name=f"neurocomp_{kernel}", sources=[str(SOURCES / f"{kernel}.cpp")],
                                    extra_cflags=[*CFLAGS, f"-DNEUROCOMP_HEADERS={_headers_digest()}"],
                                    extra_ldflags=["-fopenmp"], build_directory=str(directory), verbose=False)
    except Exception as error:  # no compiler, no headers, an unsupported CPU: fall back, say so
        warnings.warn(f"native kernel {kernel} unavailable, using the library path "
                      f"({type(error).__name__}: {str(error)[:200]})", stacklevel=2)
        return None
    BUILD_SECONDS[kernel] = time.perf_counter() - started
    return module
