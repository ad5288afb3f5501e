"""Encoders: an image batch -> a time-major sequence ``(T, B, *step_shape)``, shared by every model.

An encoder receives intensities in [0, 1] (``(B, C, H, W)`` for 2D sets, ``(B, C, D, H, W)`` for
3D) and owns any rescaling: rate coding needs [0, 1], other encoders may map to [-1, 1]
(``symmetric``) as the LNN study did. Each builder returns an :class:`Encoder`; one that cannot
take the dataset's samples raises a UsageError saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .. import kernels
from ..core.errors import UsageError
from ..core.registry import register_encoder

# (B, *sample) in [0, 1], generator -> (T, B, *step)
EncodeFn = Callable[[torch.Tensor, Optional[torch.Generator]], torch.Tensor]


@dataclass(frozen=True)
class Encoder:
    """What a built encoder tells the model (``steps``, ``step_shape``) and how it encodes."""

    name: str
    steps: int
    step_shape: tuple[int, ...]
    encode: EncodeFn
    spikes: bool = False  # binary events, as rate coding gives
    stochastic: bool = False  # a new encoding per call (rate coding): evaluations average several draws

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``(B, *sample)`` in [0, 1] -> ``(T, B, *step_shape)``."""
        return self.encode(images, generator)


def _scaled(images: torch.Tensor, symmetric: bool) -> torch.Tensor:
    return images * 2.0 - 1.0 if symmetric else images


def _require_2d(name: str, sample_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(sample_shape) != 3:
        raise UsageError(
            f"encoder {name!r} needs 2D images (C, H, W) but the dataset gives {len(sample_shape) - 1}D "
            f"samples of shape {tuple(sample_shape)}; use 'slices' for 3D volumes"
        )
    return sample_shape


@register_encoder("static")
def static(*, sample_shape: tuple[int, ...], symmetric: bool = False) -> Encoder:
    """The image as one step (T=1): a plain CNN or MLP input."""
    return Encoder("static", 1, tuple(sample_shape), lambda x, g: _scaled(x, symmetric).unsqueeze(0))


@register_encoder("repeat")
def repeat(*, sample_shape: tuple[int, ...], steps: int = 20, symmetric: bool = False) -> Encoder:
    """Direct coding: the same image at each of ``steps`` steps."""
    _positive("steps", steps)
    return Encoder(
        "repeat", steps, tuple(sample_shape), lambda x, g: _scaled(x, symmetric).unsqueeze(0).expand(steps, *x.shape)
    )


_UNIFORM_LEVELS = 1 << 24  # the resolution of torch.rand's float32 uniforms


@register_encoder("rate")
def rate(*, sample_shape: tuple[int, ...], steps: int = 20, gain: float = 1.0) -> Encoder:
    """Rate coding: Bernoulli spikes with probability gain x intensity at each of ``steps`` steps."""
    _positive("steps", steps)
    if not 0.0 < gain <= 1.0:
        raise UsageError(f"encoder.gain must lie in (0, 1], got {gain}")

    def encode(images: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        # One uniform draw per (step, pixel) compared with p: the law of Bernoulli(p). An integer u
        # in [0, 2^24) with u < ceil(p * 2^24) is exactly torch.rand(...) < p (24-bit uniforms; on
        # the CPU even the same draws for the same generator).
        thresholds = (images * gain * _UNIFORM_LEVELS).ceil().to(torch.int32)
        # The same draws from the generator's own engine, without torch's per-element lock.
        spikes = kernels.rate.rate_spikes(thresholds, steps, images.dtype, generator)
        if spikes is not None:
            return spikes
        draws = torch.randint(0, _UNIFORM_LEVELS, (steps, *images.shape), generator=generator, device=images.device,
                              dtype=torch.int32)
        return (draws < thresholds).to(images.dtype)

    return Encoder("rate", steps, tuple(sample_shape), encode, spikes=True, stochastic=True)


@register_encoder("rows")
def rows(*, sample_shape: tuple[int, ...], symmetric: bool = False) -> Encoder:
    """Each image row is one step: H steps of C*W features."""
    c, h, w = _require_2d("rows", sample_shape)
    return Encoder("rows", h, (c * w,), lambda x, g: _scaled(x, symmetric).permute(2, 0, 1, 3).reshape(h, len(x), c * w))


@register_encoder("columns")
def columns(*, sample_shape: tuple[int, ...], symmetric: bool = False) -> Encoder:
    """Each image column is one step: W steps of C*H features."""
    c, h, w = _require_2d("columns", sample_shape)
    return Encoder(
        "columns", w, (c * h,), lambda x, g: _scaled(x, symmetric).permute(3, 0, 1, 2).reshape(w, len(x), c * h)
    )


@register_encoder("channels")
def channels(*, sample_shape: tuple[int, ...], symmetric: bool = False) -> Encoder:
    """Each channel is one step: C steps of H*W features (the thesis' z-axis sequence)."""
    c, h, w = _require_2d("channels", sample_shape)
    return Encoder("channels", c, (h * w,), lambda x, g: _scaled(x, symmetric).transpose(0, 1).reshape(c, len(x), h * w))


@register_encoder("slices")
def slices(*, sample_shape: tuple[int, ...], symmetric: bool = False) -> Encoder:
    """A 3D volume (C, D, H, W) as D steps of 2D slices (C, H, W)."""
    if len(sample_shape) != 4:
        raise UsageError(
            f"encoder 'slices' needs 3D volumes (C, D, H, W) but the dataset gives samples of shape "
            f"{tuple(sample_shape)}; use rows, columns or patches for 2D images"
        )
    c, d, h, w = sample_shape
    return Encoder("slices", d, (c, h, w), lambda x, g: _scaled(x, symmetric).permute(2, 0, 1, 3, 4))


@register_encoder("patches")
def patches(*, sample_shape: tuple[int, ...], size: int = 7, symmetric: bool = False) -> Encoder:
    """Non-overlapping size x size patches in raster order: (H/size)*(W/size) steps of C*size*size."""
    c, h, w = _require_2d("patches", sample_shape)
    _positive("size", size)
    if h % size or w % size:
        raise UsageError(f"encoder.size={size} does not divide the {h}x{w} image; pick a divisor of {math.gcd(h, w)}")
    ph, pw = h // size, w // size

    def encode(images: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        b = len(images)
        x = _scaled(images, symmetric).reshape(b, c, ph, size, pw, size)
        return x.permute(2, 4, 0, 1, 3, 5).reshape(ph * pw, b, c * size * size)

    return Encoder("patches", ph * pw, (c * size * size,), encode)


def _positive(key: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"encoder.{key} must be at least 1, got {value}")
