"""Training losses by name, and the output head each one implies (one logit for binary BCE, one per
label for a multi-label set)."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..core.abilities import EmitsSpikes
from ..core.errors import UsageError

# (model, inputs (T, B, *step_shape), labels (B,) or (B, L) multi-label) -> (loss, logits (B, K))
LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def class_weights(rule: str, labels: torch.Tensor, num_classes: int) -> Optional[torch.Tensor]:
    """Per-class loss weights from the training labels: None for ``none``, and for ``balanced`` N / (K *
    N_class), scikit-learn's rule (a class half as frequent weighs twice): ``(K,)`` for labels ``(N,)``;
    ``(L, 2)`` for multi-label ``(N, L)``, the rule applied to each label's no/yes."""
    if rule == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    columns = labels.cpu().numpy().reshape(len(labels), -1)
    classes = np.arange(2 if labels.ndim == 2 else num_classes)
    weights = np.stack([compute_class_weight("balanced", classes=classes, y=column) for column in columns.T])
    return torch.tensor(weights if labels.ndim == 2 else weights[0], dtype=torch.float32, device=labels.device)


def _weighted_mean(terms: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
    """The mean of ``terms``, or their ``weights``-weighted mean (both the same shape), as torch's
    weighted cross-entropy defines it."""
    if weights is None:
        return terms.mean()
    weights = weights.to(terms.dtype)
    return (terms * weights).sum() / weights.sum()


def loss_function(name: str, weights: Optional[torch.Tensor] = None, multi_label: bool = False) -> LossFn:
    """The training loss ``name`` (``train.loss``), each class's terms weighted by ``weights``
    (:func:`class_weights`) when given; a weighted loss is the weighted mean, as torch's cross-entropy
    defines it. ``bce`` of a multi-label set: one binary cross-entropy per label, averaged."""
    if multi_label:
        def per_label_binary_cross_entropy(model, inputs, labels):
            logits = model(inputs)
            terms = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
            per_term = None if weights is None else torch.where(labels.bool(), weights[:, 1], weights[:, 0])
            return _weighted_mean(terms, per_term), logits

        return per_label_binary_cross_entropy
    if name == "cross_entropy":
        def cross_entropy(model, inputs, labels):
            logits = model(inputs)
            return F.cross_entropy(logits, labels, weight=weights), logits

        return cross_entropy
    if name == "bce":
        def binary_cross_entropy(model, inputs, labels):
            # One logit: the log-odds of class 1 (the MedMNIST3D study's BCE head).
            logits = model(inputs)
            terms = F.binary_cross_entropy_with_logits(logits[:, 0], labels.to(logits.dtype), reduction="none")
            return _weighted_mean(terms, None if weights is None else weights[labels]), logits

        return binary_cross_entropy
    from snntorch import functional  # here: only spiking runs need snnTorch's losses

    rate_loss = functional.ce_rate_loss(weight=weights)

    def rate(model, inputs, labels):
        # snnTorch's rate loss: cross-entropy of the output spikes at every step, averaged over steps.
        logits, spikes = model.forward_with_spikes(inputs)
        return rate_loss(spikes, labels), logits

    return rate


def training_loss(train: "TrainConfig", labels: torch.Tensor, num_classes: int) -> LossFn:  # noqa: F821
    """The loss a run trains and monitors with: ``train.loss``, weighted by ``train.class_weight``
    from the training labels ``(N,)`` (or ``(N, L)`` of a multi-label set)."""
    return loss_function(train.loss, class_weights(train.class_weight, labels, num_classes), multi_label=labels.ndim == 2)


def num_outputs(loss: str, num_classes: int, multi_label: bool = False) -> int:
    """Logits the model must produce: one for a binary BCE head, one per label of a multi-label set
    (which only BCE trains), else one per class."""
    if multi_label:
        if loss != "bce":
            raise UsageError(f"a multi-label dataset trains one sigmoid per label with binary cross-entropy, not "
                             f"{loss!r}: leave --loss out (the task decides) or use --loss bce")
        return num_classes
    if loss == "bce":
        if num_classes != 2:
            raise UsageError(f"train.loss='bce' is for binary tasks; this dataset has {num_classes} classes")
        return 1
    return num_classes


def check_loss_fits(loss: str, model: torch.nn.Module) -> None:
    """UsageError before training when the loss needs an ability the model does not declare."""
    if loss == "rate" and not isinstance(model, EmitsSpikes):
        raise UsageError("train.loss='rate' needs a spiking model (one with output spikes), e.g. --model snn")


def probabilities(logits: torch.Tensor, multi_label: bool = False) -> torch.Tensor:
    """Class probabilities ``(B, K)`` from logits ``(B, K)``, or from one logit ``(B, 1)`` as ``(B, 2)``;
    of a multi-label set, each label's own probability ``(B, L)``."""
    if multi_label:
        return torch.sigmoid(logits)
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)
