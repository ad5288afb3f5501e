"""Stage 6, what is made from run records: tables, ranks, figures, reports (and the published
ones, regenerated and checked), exports (ONNX, MedMNIST's Evaluator, MLflow) and the speed
benchmark. Imports the stages below it."""
