"""The glibc allocator keeps freed memory for the next training step (Linux only)."""

import platform

import pytest

from neurocomp.training.allocator import retain_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_accepts_the_thresholds_once_per_process():
    assert retain_freed_memory() is True
    assert retain_freed_memory.cache_info().currsize == 1
