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
