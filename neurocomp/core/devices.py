"""Which device a run computes on, and its name for the record."""

from __future__ import annotations

import torch

from .errors import UsageError


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without CUDA is a UsageError."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available on this machine; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H200)``: what the record says a run computed on."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def check_precision(precision: str, device: torch.device) -> None:
    """UsageError when ``train.precision`` cannot run on ``device`` (bf16 is for CUDA devices with bf16)."""
    if precision == "bf16" and not (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        raise UsageError(f"train.precision=bf16 needs a CUDA device with bfloat16 support, not {device_name(device)}; "
                         "use train.precision=fp32")


def autocast(device: torch.device, precision: str):
    """The context forward passes run in: bfloat16 autocast for ``bf16``, else nothing changes.
    bf16 keeps float32's range, so no loss scaling is needed (unlike float16)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
