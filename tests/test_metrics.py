import math

import numpy as np
import pytest
import torch

from neurocomp.training.metrics import classification_metrics, parameter_counts


def one_hot(predictions, num_classes=2, confidence=0.9):
    probs = np.full((len(predictions), num_classes), (1 - confidence) / (num_classes - 1))
    probs[np.arange(len(predictions)), predictions] = confidence
    return probs


def test_binary_metrics_match_a_hand_built_confusion_matrix():
    # positive = 1: TP 3, FN 1, TN 4, FP 2
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    preds = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    m = classification_metrics(labels, one_hot(preds), positive=1)
    assert m["confusion_matrix"] == [[4, 2], [1, 3]]
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert m["gmean"] == pytest.approx(math.sqrt(3 / 4 * 4 / 6))
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)


def test_positive_class_zero_swaps_the_roles():
    # BreastMNIST: 0 = malignant is positive. TP = label 0 predicted 0.
    labels = np.array([0, 0, 0, 1, 1])
    preds = np.array([0, 1, 1, 1, 1])
    m = classification_metrics(labels, one_hot(preds), positive=0)
    assert m["sensitivity"] == pytest.approx(1 / 3)
    assert m["specificity"] == pytest.approx(1.0)
    assert m["precision"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(0.5)


def test_auc_uses_the_positive_class_score():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.35, 0.65], [0.2, 0.8]])
    assert classification_metrics(labels, probs, positive=1)["auc"] == pytest.approx(1.0)
    assert classification_metrics(labels, probs, positive=0)["auc"] == pytest.approx(1.0)
    swapped = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    assert classification_metrics(labels, swapped, positive=1)["auc"] == pytest.approx(0.75)


def test_undefined_metrics_are_nan_not_zero():
    labels = np.array([0, 0, 0, 0])
    m = classification_metrics(labels, one_hot(np.array([0, 0, 0, 0])), positive=1)
    assert math.isnan(m["auc"]) and math.isnan(m["sensitivity"]) and math.isnan(m["precision"])
    assert m["specificity"] == 1.0 and m["predicted_classes"] == 1


def test_multiclass_uses_macro_averages():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(labels, one_hot(preds, 3), positive=None)
    recalls = [1 / 2, 1.0, 1 / 2]
    specificities = [3 / 4, 3 / 4, 1.0]
    precisions = [1 / 2, 2 / 3, 1.0]
    assert m["sensitivity"] == pytest.approx(np.mean(recalls))
    assert m["specificity"] == pytest.approx(np.mean(specificities))
    assert m["precision"] == pytest.approx(np.mean(precisions))
    assert m["gmean"] == pytest.approx(np.prod(recalls) ** (1 / 3))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert 0 <= m["auc"] <= 1


def test_column_labels_are_refused_instead_of_broadcast():
    with pytest.raises(ValueError, match=r"\(N,\)"):
        classification_metrics(np.zeros((4, 1)), one_hot(np.zeros(4, dtype=int)), positive=1)


def test_parameter_counts_separate_frozen_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model[1].weight.requires_grad_(False)
    assert parameter_counts(model) == {"trainable": 8 + 1, "frozen": 2, "total": 11, "parts": {"0": 8, "1": 1}}


def test_macro_precision_counts_every_class_on_a_hand_built_5_class_case():
    # Ten images, two per class; the model predicts class 0 for all but one class-2 image, which it
    # calls class 2. Per class precision: 2/9 (class 0), 1/1 (class 2), and classes 1, 3, 4 never
    # predicted: 0 by the usual definition, so the macro mean is (2/9 + 1) / 5, not (2/9 + 1) / 2.
    labels = np.repeat(np.arange(5), 2)
    predicted = np.zeros(10, dtype=int)
    predicted[5] = 2
    probabilities = np.full((10, 5), 0.1)
    probabilities[np.arange(10), predicted] = 0.6
    m = classification_metrics(labels, probabilities, positive=None)
    assert m["precision"] == pytest.approx((2 / 9 + 1) / 5)
    assert m["predicted_classes"] == 2
    # a one-class predictor: 2/10 for class 0, nothing else
    m = classification_metrics(labels, np.tile([0.6, 0.1, 0.1, 0.1, 0.1], (10, 1)), positive=None)
    assert m["precision"] == pytest.approx(0.2 / 5)


def test_threshold_free_metrics_match_scikit_learn_and_a_hand_count():
    from sklearn.metrics import average_precision_score, brier_score_loss

    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    p1 = np.array([0.1, 0.4, 0.35, 0.8, 0.65, 0.9, 0.3, 0.55])
    m = classification_metrics(labels, np.stack([1 - p1, p1], 1), positive=1)
    assert m["auprc"] == pytest.approx(average_precision_score(labels, p1))
    assert m["brier"] == pytest.approx(brier_score_loss(labels, p1))
    # ECE by hand, 15 bins of width 1/15: every probability here sits alone in its bin, so the ECE is
    # the mean |outcome - probability|.
    assert m["ece"] == pytest.approx(np.mean(np.abs(labels - p1)))


def test_multi_class_brier_and_ece():
    labels = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.1, 0.4]])
    m = classification_metrics(labels, probabilities, positive=None)
    onehot = np.eye(3)[labels]
    assert m["brier"] == pytest.approx(np.mean(np.sum((probabilities - onehot) ** 2, axis=1)))
    # top-label confidences .7 .8 .4 .5 (correct, correct, correct, wrong), each in its own bin
    assert m["ece"] == pytest.approx(np.mean(np.abs(np.array([1, 1, 1, 0]) - np.array([0.7, 0.8, 0.4, 0.5]))))
