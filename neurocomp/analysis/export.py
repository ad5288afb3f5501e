"""Exports of a recorded run: its best model as ONNX (checked against PyTorch with ONNX Runtime), and
its predictions in the CSV layout of MedMNIST's own ``Evaluator`` (scored by it, so a result compares
with the official code)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import kernels
from ..core.errors import UsageError
from ..runs.pipeline import load_trained


def export_onnx(run_dir: str | Path, output: str | Path | None = None, *, batch: int = 4) -> dict:
    """Write ``<run_dir>/model.onnx`` (input ``steps`` ``(T, B, *step_shape)``, output ``logits``
    ``(B, K)``, B dynamic) and compare it with PyTorch on random encoded inputs.

    Returns the path, the largest absolute difference, and both latencies at batch 1 (median of 20).
    Native kernels are switched off for the export: ONNX sees the library (snnTorch/ncps) path, which
    computes the same values. A model that does not export raises UsageError with the reason.
    """
    try:
        import onnxruntime
    except ImportError:
        raise UsageError("ONNX export needs onnx and onnxruntime: pip install 'neurocomp[onnx]'") from None
    run_dir = Path(run_dir)
    output = Path(output) if output else run_dir / "model.onnx"
    with kernels.backend("library"):
        record, config, encoder, model = load_trained(run_dir)
        generator = torch.Generator().manual_seed(0)
        sample_shape = tuple(record.dataset["sample_shape"])
        inputs = encoder(torch.rand((batch, *sample_shape), generator=generator), generator)
        try:
            with warnings.catch_warnings():
                # The TorchScript exporter handles the per-step Python loops of every model here; its
                # deprecation notice is torch's to-do, not the user's.
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (inputs,), str(output), input_names=["steps"], output_names=["logits"],
                                  dynamic_axes={"steps": {1: "batch"}, "logits": {0: "batch"}}, dynamo=False)
        except Exception as error:  # exporters fail in many ways; the user needs the reason, in one line
            raise UsageError(f"model {config.model.name!r} does not export to ONNX: {str(error).splitlines()[0][:300]}") from None
        with torch.no_grad():
            expected = model(inputs).numpy()
            single = inputs[:, :1]
            torch_ms = _median_ms(lambda: model(single))
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    got = session.run(None, {"steps": inputs.numpy()})[0]
    onnx_ms = _median_ms(lambda: session.run(None, {"steps": single.numpy()}))
    return {"path": str(output), "max_abs_difference": float(np.abs(got - expected).max()),
            "latency_ms_torch": torch_ms, "latency_ms_onnxruntime": onnx_ms}


def _median_ms(function, repeats: int = 20) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e3)


def export_medmnist(run_dir: str | Path, output: str | Path | None = None) -> dict:
    """Write the run's val and test probabilities ``(N, K)`` as MedMNIST ``Evaluator`` result files
    (``{flag}{size}_{split}_[AUC]{auc}_[ACC]{acc}@{run_id}.csv`` in ``output``, default the run
    folder), scored by MedMNIST's evaluator on the dataset's own labels. Returns, per split, the
    path and the AUC and accuracy by MedMNIST and by this suite. UsageError for a run on a dataset
    that is not an official MedMNIST set, or when its file is not in the data folder."""
    from ..core.catalogue import DATASETS, data_dir
    from ..runs.record import RunRecord

    record = RunRecord.read(run_dir)
    if record.status != "completed" or record.predictions("test") is None:
        raise UsageError(f"{record.directory} is a {record.status} run with no saved predictions; only a completed "
                         "run can be scored")
    name, size = record.config["dataset"]["name"], record.config["dataset"].get("size", 28)
    info = DATASETS.get(name)
    if info is None or not info.downloadable:
        raise UsageError(f"dataset {name!r} is not an official MedMNIST set; MedMNIST's Evaluator cannot score it")
    # The file the run read, where it still is; else the data folder the run was configured with.
    recorded = Path(record.dataset.get("path") or "")
    folder = recorded.parent if recorded.name == info.filename(size) and recorded.is_file() else \
        data_dir(record.config["dataset"].get("data_dir"))
    if not (folder / info.filename(size)).exists():
        raise UsageError(f"MedMNIST's Evaluator reads the labels from {folder / info.filename(size)}, which is not there")
    from medmnist import Evaluator

    output = Path(output) if output else record.directory
    output.mkdir(parents=True, exist_ok=True)
    result = {}
    for split in ("val", "test"):
        _, probabilities = record.predictions(split)
        scored = Evaluator(info.flag, split, size=size, root=str(folder)).evaluate(probabilities, str(output), run=record.run_id)
        result[split] = {"medmnist_auc": float(scored.AUC), "medmnist_acc": float(scored.ACC),
                         "ours_auc": record.metrics[split]["auc"], "ours_acc": record.metrics[split]["accuracy"]}
    result["folder"] = str(output)
    return result
