"""Training losses by name, and the output head each one implies (one logit for binary BCE)."""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F

from .abilities import EmitsSpikes
from .errors import UsageError

# (model, inputs (T, B, *step_shape), labels (B,)) -> (loss, logits (B, K))
LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _cross_entropy(model, inputs, labels):
    logits = model(inputs)
    return F.cross_entropy(logits, labels), logits


def _binary_cross_entropy(model, inputs, labels):
    # One logit: the log-odds of class 1 (the MedMNIST3D study's BCE head).
    logits = model(inputs)
    return F.binary_cross_entropy_with_logits(logits[:, 0], labels.to(logits.dtype)), logits


@functools.lru_cache(maxsize=1)
def _ce_rate():
    from snntorch import functional  # here: only spiking runs need snnTorch's losses

    return functional.ce_rate_loss()


def _rate(model, inputs, labels):
    # snnTorch's rate loss: cross-entropy of the output spikes at every step, averaged over steps.
    logits, spikes = model.forward_with_spikes(inputs)
    return _ce_rate()(spikes, labels), logits


LOSSES: dict[str, LossFn] = {"cross_entropy": _cross_entropy, "bce": _binary_cross_entropy, "rate": _rate}


def num_outputs(loss: str, num_classes: int) -> int:
    """Logits the model must produce: one for a binary BCE head, else one per class."""
    if loss == "bce":
        if num_classes != 2:
            raise UsageError(f"train.loss='bce' is for binary tasks; this dataset has {num_classes} classes")
        return 1
    return num_classes


def check_loss_fits(loss: str, model: torch.nn.Module) -> None:
    """UsageError before training when the loss needs an ability the model does not declare."""
    if loss == "rate" and not isinstance(model, EmitsSpikes):
        raise UsageError("train.loss='rate' needs a spiking model (one with output spikes), e.g. --model snn")


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(B, K)`` from logits ``(B, K)``, or from one logit ``(B, 1)`` as ``(B, 2)``."""
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)
