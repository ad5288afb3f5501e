"""The quantities a run records for each split, by name: what ``train.monitor`` may watch and what
``neurocomp.training.metrics`` computes, kept here so the config can check a name without loading
scikit-learn."""

METRIC_NAMES = (
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "gmean",
    "auc",
    "auprc",
    "brier",
    "ece",
)
LOWER_IS_BETTER = ("loss", "brier", "ece")  # of the quantities a run records per split


def lower_is_better(quantity: str) -> bool:
    """Whether a smaller value of ``quantity`` is better: a loss or calibration error (``val.loss``,
    ``test.brier``, ``ece``), a size (``params``, ``params.trainable``), a cost (``cost.energy_pj``) or a
    time (``epoch_time_s``). The one rule that model selection, tuning, tables and plots all follow."""
    return (quantity.split(".")[-1] in LOWER_IS_BETTER or quantity.startswith(("params", "cost."))
            or "time" in quantity)
