"""Stage 4, one trainer for every model: assembling encoder and model for a config, losses, the
training loop with selection on validation, metrics from all predictions, operating points, cost
per inference and batch-size allocation. Imports core, kernels, data and models."""
