"""Rate-coding draws from torch's own CPU generator, a block of words at a time
(``csrc/rate_spikes.cpp``): the very spikes, and generator state afterwards, of ``torch.randint``."""

from __future__ import annotations

from typing import Optional

import torch

from . import build
from .policy import decide

KERNEL = "rate_spikes"


def rate_spikes(thresholds: torch.Tensor, steps: int, dtype: torch.dtype,
                generator: Optional[torch.Generator]) -> Optional[torch.Tensor]:
    """Spikes ``(steps, *thresholds.shape)`` of ``dtype``: 1 where a uniform 24-bit integer drawn
    from ``generator`` (torch's default when None) lies below the int32 ``thresholds``; None where
    the kernel does not apply (then draw with ``torch.randint``)."""
    if not decide(KERNEL, thresholds.device, dtype, lambda: None).native:
        return None
    spikes = torch.empty((steps, *thresholds.shape), dtype=dtype)
    build.load(KERNEL).rate_spikes(thresholds.contiguous(), spikes, generator)
    return spikes
