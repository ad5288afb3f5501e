"""Keep freed memory in the process (glibc), so large tensors of the next training step reuse it.

By default glibc serves allocations over 128 KB-32 MB with fresh ``mmap`` pages and returns freed
memory to the system; a training step that allocates and frees tens of MB of activations then pays
a page fault for every 4 KB it touches, every step. Raising the mmap and trim thresholds keeps that
memory in the heap: ~7-14% more SNN training throughput here (``neurocomp bench``), same values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


@functools.lru_cache(maxsize=None)
def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
                and mallopt(_M_TOP_PAD, 256 * 2**20))
