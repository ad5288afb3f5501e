"""Operating points of a binary classifier beyond the 0.5 threshold.

A decision threshold is chosen on the validation split by a rule (``eval.threshold``: Youden's J,
the ROC point farthest above the diagonal; the threshold that keeps a sensitivity or a specificity
of at least a level; or a fixed number) and applied to test, so the test split still decides
nothing; and the sensitivity
reached at 90% and 95% specificity is read off the test ROC curve, with a bootstrap interval over
test cases. Imbalanced sets (BreastMNIST) often put every prediction on one side of 0.5 while the
scores still rank well: these say what the model could do at a clinically chosen operating point.
"""

from __future__ import annotations

import numpy as np

from ..core.config import parse_rule

SPECIFICITIES = (0.90, 0.95)
def choose_threshold(rule, is_positive: np.ndarray, scores: np.ndarray) -> float:
    """The threshold (predict positive when score >= it) that ``rule`` (:func:`parse_rule`) picks on
    (N,) outcomes and scores: for ``sensitivity@l`` the highest one whose sensitivity is at least l
    (the best specificity that keeps it), for ``specificity@l`` the lowest whose specificity is at
    least l (the best sensitivity that keeps it)."""
    from sklearn.metrics import roc_curve

    kind, level = parse_rule(rule)
    if kind == "fixed":
        return level
    if kind == "youden":
        return youden_threshold(is_positive, scores)
    fpr, tpr, thresholds = roc_curve(is_positive, scores)  # thresholds falling, rates rising
    if kind == "sensitivity":
        index = int(np.flatnonzero(tpr >= level - 1e-12)[0])
    else:
        index = int(np.flatnonzero(fpr <= 1 - level + 1e-12)[-1])
    return float(min(thresholds[index], 1.0))  # roc_curve's first threshold is +inf: "predict none"


def youden_threshold(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """The threshold (predict positive when score >= it) maximising sensitivity + specificity - 1
    on (N,) outcomes and scores; the highest such threshold where several tie."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(is_positive, scores)
    youden = tpr - fpr
    index = int(np.flatnonzero(youden >= youden.max() - 1e-12)[0])  # ties up to rounding: the first
    return float(min(thresholds[index], 1.0))  # roc_curve's first threshold is +inf: "predict none"


def sensitivity_at_specificity(is_positive: np.ndarray, scores: np.ndarray, specificity: float) -> float:
    """The highest sensitivity of any threshold whose specificity is at least ``specificity``."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(is_positive, scores)
    return float(tpr[fpr <= 1 - specificity + 1e-12].max())


def operating_points(val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], positive: int,
                     *, rule="youden", resamples: int = 1000, seed: int = 0) -> dict:
    """For (labels (N,), probabilities (D, N, 2)) of val and test (D draws of a stochastic encoder,
    else 1): ``operating_point``: the ``rule``, the threshold it chose on validation and the test
    metrics at it (means over draws, each draw's threshold from its own validation draw), and
    ``sensitivity_at_specificity``:
    per specificity in SPECIFICITIES the test value (mean over draws) and a 95% percentile
    bootstrap interval over test cases (draw 0)."""
    from .metrics import decision_metrics  # here: config reads this module's rules without torch

    (val_labels, val_probs), (test_labels, test_probs) = val, test
    thresholds, scored = [], []
    for val_draw, test_draw in zip(val_probs, test_probs):
        threshold = choose_threshold(rule, val_labels == positive, val_draw[:, positive])
        decisions = np.where(test_draw[:, positive] >= threshold, positive, 1 - positive)
        thresholds.append(threshold)
        scored.append(decision_metrics(test_labels, decisions, positive))
    chosen = {"rule": rule, "threshold": float(np.mean(thresholds)),
              **{k: float(np.mean([m[k] for m in scored])) for k in scored[0]}}
    outcomes = test_labels == positive
    rng = np.random.default_rng(seed)
    cases = [index for index in (rng.integers(0, len(outcomes), len(outcomes)) for _ in range(resamples))
             if 0 < outcomes[index].sum() < len(index)]  # a resample needs both classes
    at_specificity = {}
    for specificity in SPECIFICITIES:
        values = [sensitivity_at_specificity(outcomes, draw[:, positive], specificity) for draw in test_probs]
        spread = [sensitivity_at_specificity(outcomes[index], test_probs[0][index, positive], specificity) for index in cases]
        at_specificity[f"{specificity:.2f}"] = {"value": float(np.mean(values)),
                                                "ci95": [float(v) for v in np.percentile(spread, [2.5, 97.5])]}
    return {"operating_point": chosen, "sensitivity_at_specificity": at_specificity}
