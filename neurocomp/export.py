"""ONNX export of a recorded run's best model, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch

from . import kernels
from .errors import UsageError
from .run import load_trained


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
