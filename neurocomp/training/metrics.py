"""Classification metrics from all predictions of a split at once (scikit-learn), and model size.

Binary tasks are scored for an explicit positive class (BreastMNIST: 0 = malignant); multi-class
tasks use macro averages. A metric that is undefined (no positive predictions for precision, one
class only for AUC) is NaN, never a silent 0.0. Besides the metrics at the argmax decision, the
threshold-free ones: AUC, the area under the precision-recall curve (AUPRC, scikit-learn's average
precision), and calibration: the Brier score and the expected calibration error (ECE, 15 equal-width
bins) of the positive class's probability (binary) or of the predicted class's (multi-class).

Multi-label tasks (ChestMNIST) are scored as MedMNIST's Evaluator scores them: each label is its own
binary task decided at 0.5, and every metric is the mean over labels (macro), e.g. the accuracy is
the mean of the per-label accuracies; ``per_label`` keeps each label's sensitivity, specificity and AUC.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ..core.quantities import METRIC_NAMES

ECE_BINS = 15


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, positive: int | None) -> dict:
    """Metrics of one split.

    labels: (N,) int class indices. probabilities: (N, K) class probabilities, rows summing to 1.
    positive: the positive class for binary tasks (K == 2); None for multi-class (macro averages).
    Multi-label labels (N, L) of 0/1 with probabilities (N, L) go to :func:`multi_label_metrics`.
    Returns the METRIC_NAMES as floats (NaN where undefined), ``confusion_matrix`` (K x K nested
    list, rows = true class), ``predicted_classes`` (how many distinct classes were predicted).
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.ndim == 2 and labels.shape == probabilities.shape:
        return multi_label_metrics(labels, probabilities)
    if labels.ndim != 1 or probabilities.ndim != 2 or len(labels) != len(probabilities):
        # The (N, 1) vs (N,) broadcast is how a perfect classifier once scored 0.5: refuse it loudly.
        raise ValueError(f"labels must be (N,) and probabilities (N, K); got {labels.shape} and {probabilities.shape}")
    num_classes = probabilities.shape[1]
    classes = np.arange(num_classes)
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, labels=classes)
    if num_classes == 2:
        if positive not in (0, 1):
            raise ValueError(f"binary metrics need positive class 0 or 1, got {positive}")
        result = decision_metrics(labels, predictions, positive)
        result.update(
            auc=_quiet(lambda: roc_auc_score(labels == positive, probabilities[:, positive])),
            auprc=_quiet(lambda: average_precision_score(labels == positive, probabilities[:, positive])),
            brier=_quiet(lambda: brier_score_loss(labels == positive, probabilities[:, positive])),
            ece=expected_calibration_error(labels == positive, probabilities[:, positive]),
        )
    else:
        result = {
            "accuracy": accuracy_score(labels, predictions),
            "balanced_accuracy": _quiet(lambda: balanced_accuracy_score(labels, predictions)),
        }
        recalls = recall_score(labels, predictions, labels=classes, average=None, zero_division=np.nan)
        negatives = matrix.sum() - matrix.sum(axis=1)
        false_positives = matrix.sum(axis=0) - np.diag(matrix)
        specificities = (negatives - false_positives) / np.where(negatives > 0, negatives, np.nan)
        result.update(
            sensitivity=float(np.mean(recalls)),
            specificity=float(np.mean(specificities)),
            # Over every class: one never predicted counts 0 (scikit-learn's zero_division=0), else a
            # model predicting one class would average over that class alone.
            precision=precision_score(labels, predictions, labels=classes, average="macro", zero_division=0.0),
            f1=f1_score(labels, predictions, labels=classes, average="macro", zero_division=np.nan),
            gmean=float(np.prod(recalls) ** (1.0 / num_classes)),
            auc=_quiet(lambda: roc_auc_score(labels, probabilities, multi_class="ovr", average="macro", labels=classes)),
            auprc=_quiet(lambda: average_precision_score(np.eye(num_classes)[labels], probabilities, average="macro")),
            brier=float(np.mean(np.sum((probabilities - np.eye(num_classes)[labels]) ** 2, axis=1))),
            ece=expected_calibration_error(predictions == labels, probabilities.max(axis=1)),
        )
    result = {name: float(result[name]) for name in METRIC_NAMES}
    result["confusion_matrix"] = matrix.tolist()
    result["predicted_classes"] = int(len(np.unique(predictions)))
    return result


def multi_label_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Metrics of one multi-label split: labels ``(N, L)`` of 0/1, probabilities ``(N, L)`` (each
    label's own). Every label is a binary task decided at 0.5; the METRIC_NAMES are means over labels
    (NaN when a label's is undefined), ``per_label`` lists each label's sensitivity, specificity and
    AUC, ``confusion_matrix`` the (L, 2, 2) per-label matrices, ``predicted_classes`` how many distinct
    label sets were predicted (1: the same answer for every image)."""
    from sklearn.metrics import multilabel_confusion_matrix

    predictions = (probabilities > 0.5).astype(int)
    per_label = []
    for column in range(labels.shape[1]):
        truth, score = labels[:, column] == 1, probabilities[:, column]
        per_label.append({
            **decision_metrics(labels[:, column], predictions[:, column], positive=1),
            "auc": _quiet(lambda: roc_auc_score(truth, score)),
            "auprc": _quiet(lambda: average_precision_score(truth, score)),
            "brier": _quiet(lambda: brier_score_loss(truth, score)),
        })
    result = {name: float(np.mean([label[name] for label in per_label])) for name in METRIC_NAMES if name != "ece"}
    result["ece"] = expected_calibration_error(labels.ravel() == 1, probabilities.ravel())
    result["per_label"] = [{name: label[name] for name in ("sensitivity", "specificity", "auc")} for label in per_label]
    result["confusion_matrix"] = multilabel_confusion_matrix(labels, predictions).tolist()
    result["predicted_classes"] = int(len(np.unique(predictions, axis=0)))
    return result


DECISION_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "gmean")


def decision_metrics(labels: np.ndarray, predictions: np.ndarray, positive: int) -> dict:
    """The binary metrics of a decision: labels and predicted classes (N,), the positive class 0 or
    1. Whatever made the decision (argmax at 0.5, a threshold chosen on validation), one formula."""
    matrix = confusion_matrix(labels, predictions, labels=[0, 1])
    negative = 1 - positive
    tp, fn = matrix[positive, positive], matrix[positive, negative]
    tn, fp = matrix[negative, negative], matrix[negative, positive]
    sensitivity, specificity = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return {
        "accuracy": accuracy_score(labels, predictions),
        "balanced_accuracy": _quiet(lambda: balanced_accuracy_score(labels, predictions)),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": _ratio(tp, tp + fp),
        "f1": f1_score(labels, predictions, pos_label=positive, labels=[0, 1], zero_division=np.nan),
        "gmean": math.sqrt(sensitivity * specificity),
    }


def expected_calibration_error(outcomes: np.ndarray, confidences: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the bin-size-weighted mean |observed frequency - mean confidence| over equal-width
    confidence bins. outcomes (N,) bool: the event the confidence (N,) in [0, 1] predicts."""
    outcomes, confidences = np.asarray(outcomes, dtype=np.float64), np.asarray(confidences, dtype=np.float64)
    if not np.isfinite(confidences).all():
        return math.nan
    which = np.minimum((confidences * bins).astype(int), bins - 1)
    gap = 0.0
    for b in np.unique(which):
        members = which == b
        gap += members.sum() * abs(outcomes[members].mean() - confidences[members].mean())
    return float(gap / len(outcomes))


def reliability(outcomes: np.ndarray, confidences: np.ndarray, bins: int = ECE_BINS) -> tuple[np.ndarray, ...]:
    """Per non-empty bin: mean confidence, observed frequency and count, each (B,): the points of a
    reliability diagram (the ECE is their count-weighted mean gap)."""
    outcomes, confidences = np.asarray(outcomes, dtype=np.float64), np.asarray(confidences, dtype=np.float64)
    which = np.minimum((confidences * bins).astype(int), bins - 1)
    used = np.unique(which)
    return (np.array([confidences[which == b].mean() for b in used]), np.array([outcomes[which == b].mean() for b in used]),
            np.array([(which == b).sum() for b in used]))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _quiet(compute) -> float:
    # Undefined cases (one class only: AUC; an absent class: balanced accuracy) are NaN here;
    # scikit-learn warns or raises for them depending on its version.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(compute())
        except ValueError:
            return math.nan


def parameter_counts(model: torch.nn.Module) -> dict:
    """``trainable`` (requires_grad), ``frozen`` (a linear probe's pretrained body) and ``total``
    parameter counts of the model that ran, and ``parts``: the trainable count of each top-level part
    that has any (``features``, the front end; ``core``; ``head``; ...), so a budget run records how
    its budget was split."""
    trainable = lambda module: sum(p.numel() for p in module.parameters() if p.requires_grad)  # noqa: E731
    total, trained = sum(p.numel() for p in model.parameters()), trainable(model)
    return {
        "trainable": trained,
        "frozen": total - trained,
        "total": total,
        "parts": {name: trainable(child) for name, child in model.named_children() if trainable(child)},
    }
