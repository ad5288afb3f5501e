"""Multi-label datasets (ChestMNIST's layout: labels (N, L) of 0/1): per-label metrics checked against
MedMNIST's own evaluator, per-label class weights by hand, every model trains through the CLI, and
single-label-only options are refused in one line."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from medmnist.evaluator import getACC, getAUC

from neurocomp.cli import main
from neurocomp.training.losses import class_weights, loss_function
from neurocomp.training.metrics import classification_metrics
from neurocomp.runs.record import load_runs

MULTI_LABEL = "multi-label, binary-class"  # MedMNIST's task name for ChestMNIST


def test_multi_label_metrics_match_medmnists_evaluator_and_hand_counts():
    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 0, 0]])
    probabilities = np.array([[.9, .2, .6], [.4, .3, .7], [.6, .8, .4], [.2, .4, .3], [.3, .1, .2]])
    metrics = classification_metrics(labels, probabilities, None)
    assert metrics["auc"] == pytest.approx(getAUC(labels, probabilities, MULTI_LABEL))
    assert metrics["accuracy"] == pytest.approx(getACC(labels, probabilities, MULTI_LABEL))
    # Label 0: yes for images 0, 2, 4; predicted yes (> 0.5) for 0 and 2: sensitivity 2/3, specificity 2/2.
    assert metrics["per_label"][0]["sensitivity"] == pytest.approx(2 / 3)
    assert metrics["per_label"][0]["specificity"] == 1.0
    # Label 1: yes for 2, 3; predicted yes for 2 only: sensitivity 1/2; no false positives.
    assert metrics["per_label"][1]["sensitivity"] == pytest.approx(1 / 2)
    assert metrics["sensitivity"] == pytest.approx(np.mean([2 / 3, 1 / 2, 2 / 2]))
    assert np.array(metrics["confusion_matrix"]).shape == (3, 2, 2)
    assert metrics["predicted_classes"] == 4  # distinct predicted label sets: 101, 001, 110, 000


def test_the_same_answer_for_every_image_counts_as_one_prediction():
    labels = np.array([[1, 0], [0, 1], [1, 1]])
    metrics = classification_metrics(labels, np.full((3, 2), 0.3), None)
    assert metrics["predicted_classes"] == 1 and metrics["sensitivity"] == 0.0


def test_balanced_weights_are_per_label_and_the_loss_is_their_weighted_mean():
    labels = torch.tensor([[1, 0], [0, 0], [0, 1], [0, 1]])
    weights = class_weights("balanced", labels, 2)
    # Label 0: 3 no, 1 yes -> 4/(2*3), 4/(2*1); label 1: 2 and 2 -> 1, 1.
    assert weights.flatten().tolist() == pytest.approx([4 / 6, 2.0, 1.0, 1.0])
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-0.3, 1.2], [0.1, 0.4]])
    loss, _ = loss_function("bce", weights, multi_label=True)(lambda inputs: inputs, logits, labels)
    terms = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
    per_term = torch.where(labels.bool(), weights[:, 1], weights[:, 0])
    assert loss.item() == pytest.approx(((terms * per_term).sum() / per_term.sum()).item())
    plain, _ = loss_function("bce", None, multi_label=True)(lambda inputs: inputs, logits, labels)
    assert plain.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, labels.float()).item())


@pytest.mark.parametrize("model", ["snn", "alif", "ltc", "cfc", "lstm", "gru", "rnn", "cnn", "mlp"])
def test_every_model_trains_on_a_multi_label_set_and_records_each_label(npz_multi_label, tmp_path, model):
    """No --loss: the set's label layout makes it multi-label, so the loss is BCE per label."""
    out = tmp_path / "res"
    args = ["run", str(npz_multi_label), "--model", model, "--epochs", "1", "--batch-size", "32",
            "--out", str(out), "--quiet", "--set", "eval.draws=2"]
    assert main(args) == 0
    (run,) = load_runs(out)
    assert run.config["train"]["loss"] == "bce"
    assert run.dataset["multi_label"] and len(run.metrics["test"]["per_label"]) == 3
    assert 0.0 <= run.metrics["test"]["auc"] <= 1.0
    labels, probabilities = run.predictions("test")
    assert labels.shape == probabilities.shape == (32, 3)


def test_a_cnn_learns_every_label(npz_multi_label, tmp_path):
    out = tmp_path / "res"
    assert main(["run", str(npz_multi_label), "--model", "cnn", "--loss", "bce", "--epochs", "8", "--batch-size", "16",
                 "--lr", "3e-3", "--out", str(out), "--quiet"]) == 0
    (run,) = load_runs(out)
    assert min(label["auc"] for label in run.metrics["test"]["per_label"]) > 0.9


@pytest.mark.parametrize("extra, says", [
    (["--loss", "cross_entropy"], "leave --loss out (the task decides) or use --loss bce"),
    (["--loss", "bce", "--positive", "1"], "is multi-label"),
    (["--loss", "bce", "--set", "train.sampler=balanced"], "is multi-label"),
    (["--loss", "rate", "--model", "snn"], "or use --loss bce"),
])
def test_single_label_only_options_are_one_line_and_exit_2(npz_multi_label, tmp_path, capsys, extra, says):
    code = main(["run", str(npz_multi_label), "--epochs", "1", "--out", str(tmp_path / "res"), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and says in err and len(err.splitlines()) == 1


def test_a_multi_label_file_with_a_label_that_never_varies_is_refused(tmp_path, capsys):
    from conftest import make_multi_label_npz

    path = make_multi_label_npz(tmp_path / "bad.npz")
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["train_labels"][:, 1] = 0
    np.savez(path, **arrays)
    assert main(["run", str(path), "--loss", "bce", "--epochs", "1", "--out", str(tmp_path / "res")]) == 2
    assert "label '1' is the same for every training image" in capsys.readouterr().err


def test_the_loss_follows_the_task_and_an_explicit_one_wins(npz_multi_label, npz_2d):
    from neurocomp.core.config import resolve

    assert resolve({"dataset": {"name": "chest"}}).train.loss == "bce"
    assert resolve({"dataset": {"name": "breast"}}).train.loss == "cross_entropy"
    assert resolve({"dataset": {"name": str(npz_multi_label)}}).train.loss == "bce"
    assert resolve({"dataset": {"name": str(npz_2d)}}).train.loss == "cross_entropy"
    assert resolve({"dataset": {"name": str(npz_2d)}, "train": {"loss": "bce"}}).train.loss == "bce"
