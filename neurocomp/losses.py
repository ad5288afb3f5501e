"""Training losses by name, and the output head each one implies (one logit for binary BCE)."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .abilities import EmitsSpikes
from .errors import UsageError

# (model, inputs (T, B, *step_shape), labels (B,)) -> (loss, logits (B, K))
LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def class_weights(rule: str, labels: torch.Tensor, num_classes: int) -> Optional[torch.Tensor]:
    """Per-class loss weights ``(K,)`` from the training labels ``(N,)``: None for ``none``, and for
    ``balanced`` N / (K * N_class), scikit-learn's rule (a class half as frequent weighs twice)."""
    if rule == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.arange(num_classes), y=labels.cpu().numpy())
    return torch.tensor(weights, dtype=torch.float32, device=labels.device)


def loss_function(name: str, weights: Optional[torch.Tensor] = None) -> LossFn:
    """The training loss ``name`` (``train.loss``), each class's terms weighted by ``weights``
    ``(K,)`` when given; a weighted loss is the weighted mean, as torch's cross-entropy defines it."""
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
            if weights is None:
                return terms.mean(), logits
            per_case = weights[labels].to(terms.dtype)
            return (terms * per_case).sum() / per_case.sum(), logits

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
    from the training labels ``(N,)``."""
    return loss_function(train.loss, class_weights(train.class_weight, labels, num_classes))


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
