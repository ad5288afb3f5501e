"""``neurocomp bench``: our training and inference speed per backend, interleaved in one process with
the reference implementations (snnTorch, ncps), and the ratio ours / reference.

Each workload is one training step (input encoding, forward, loss, backward, Adam step) at batch
128 on 28x28 inputs; inference is a forward pass without gradients at batch 128, and latency a
forward pass at batch 1. Ours and the reference alternate repeat by repeat, so both see the same
machine load; medians are reported after warm-up.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import snntorch
import snntorch.spikegen
import snntorch.utils
import torch
import torch.nn.functional as F
from ncps import torch as ncps_torch
from ncps import wirings
from snntorch import functional as snn_functional
from snntorch import surrogate
from torch import nn

from ..kernels import build as kernel_build
from ..training.allocator import retain_freed_memory
from ..training.assemble import build
from ..core.config import TrainConfig, resolve
from ..core.errors import UsageError
from ..training.trainer import build_optimizer

BATCH = 128


@dataclass
class Workload:
    """A model and its reference as train-step / inference callables over the same inputs."""

    ours_step: Callable[[], None]
    reference_step: Callable[[], None]
    ours_infer: Callable[[int], None]
    reference_infer: Callable[[int], None]
    unit: str = "train samples/s"


def _train_step(model: nn.Module, forward_loss: Callable[[], torch.Tensor], ours: bool) -> Callable[[], None]:
    # Ours steps with the trainer's own optimizer; the reference with torch's default Adam, as its
    # library's examples do.
    optimizer = build_optimizer(TrainConfig(), model) if ours else torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = forward_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _snn(device: torch.device) -> Workload:
    """The SNN PneumoniaMNIST study: ours vs snnTorch Leaky(init_hidden=True) stepped per time step."""
    images = torch.rand(BATCH, 1, 28, 28, device=device)
    labels = torch.randint(0, 2, (BATCH,), device=device)
    encoder, ours = build(resolve({"model": "snn", "encoder": {"name": "rate", "steps": 20}}), (1, 28, 28), 2)
    ours.to(device)
    spike_grad = surrogate.fast_sigmoid(slope=25)
    reference = nn.Sequential(
        nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), snntorch.Leaky(beta=0.6, spike_grad=spike_grad, init_hidden=True),
        nn.Conv2d(12, 32, 3), nn.MaxPool2d(2), snntorch.Leaky(beta=0.6, spike_grad=spike_grad, init_hidden=True),
        nn.Flatten(), nn.Linear(800, 2),
        snntorch.Leaky(beta=0.6, spike_grad=spike_grad, init_hidden=True, output=True),
    ).to(device)
    loss = snn_functional.ce_rate_loss()
    generator = torch.Generator(device=device).manual_seed(0)

    def reference_forward(batch: torch.Tensor) -> torch.Tensor:
        snntorch.utils.reset(reference)
        spikes = snntorch.spikegen.rate(batch, num_steps=20)
        return torch.stack([reference(step)[0] for step in spikes])

    def ours_forward(batch: torch.Tensor) -> torch.Tensor:
        return ours.forward_with_spikes(encoder(batch, generator))[1]

    return Workload(
        _train_step(ours, lambda: loss(ours_forward(images), labels), ours=True),
        _train_step(reference, lambda: loss(reference_forward(images), labels), ours=False),
        lambda n: ours(encoder(images[:n], generator)),
        lambda n: reference_forward(images[:n]),
    )


def _liquid(kind: str, device: torch.device) -> Workload:
    """An LTC or CfC on AutoNCP(19, 2) over the 28 rows of a 28x28 image: ours vs ncps."""
    images = torch.rand(BATCH, 1, 28, 28, device=device)
    labels = torch.randint(0, 2, (BATCH,), device=device)
    encoder, ours = build(resolve({"model": kind, "encoder": "rows"}), (1, 28, 28), 2)
    ours.to(device)
    cell = ncps_torch.LTC if kind == "ltc" else ncps_torch.CfC
    reference = cell(28, wirings.AutoNCP(19, 2), batch_first=True).to(device)
    sequences = images[:, 0]  # (B, 28 rows, 28 features), batch-first as ncps takes it

    def reference_logits(n: int) -> torch.Tensor:
        return reference(sequences[:n])[0][:, -1]

    return Workload(
        _train_step(ours, lambda: F.cross_entropy(ours(encoder(images)), labels), ours=True),
        _train_step(reference, lambda: F.cross_entropy(reference_logits(BATCH), labels), ours=False),
        lambda n: ours(encoder(images[:n])),
        reference_logits,
    )


WORKLOADS: dict[str, Callable[[torch.device], Workload]] = {
    "snn": _snn,
    "ltc": lambda device: _liquid("ltc", device),
    "cfc": lambda device: _liquid("cfc", device),
}


def _seconds(function: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def _interleaved(ours: Callable, reference: Callable, repeats: int, warmup: int, device: torch.device) -> tuple[float, float]:
    for _ in range(warmup):
        ours()
        reference()
    times = {"ours": [], "reference": []}
    for _ in range(repeats):
        times["ours"].append(_seconds(ours, device))
        times["reference"].append(_seconds(reference, device))
    return statistics.median(times["ours"]), statistics.median(times["reference"])


def _peak_memory_mb(function: Callable[[], object], device: torch.device) -> Optional[float]:
    """The most CUDA memory ``function`` held at once, in MiB (None on the CPU, where RSS is per process)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    function()
    torch.cuda.synchronize(device)
    return round((torch.cuda.max_memory_allocated(device) - before) / 2**20, 1)


def run_bench(names: list[str], *, repeats: int = 7, warmup: int = 2, device: torch.device) -> dict:
    """Measure each workload; returns ``{name: {"ours", "reference", "ratio", "unit", ...}}``."""
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise UsageError(f"unknown bench workload {unknown[0]!r}; choose from: {', '.join(WORKLOADS)}")
    if device.type == "cpu":
        retain_freed_memory()  # as the trainer does; a process setting, so the reference runs with it too
    results = {}
    for name in names:
        torch.manual_seed(0)
        workload = WORKLOADS[name](device)
        train_ours, train_reference = _interleaved(workload.ours_step, workload.reference_step, repeats, warmup, device)
        with torch.no_grad():
            infer_ours, infer_reference = _interleaved(lambda: workload.ours_infer(BATCH), lambda: workload.reference_infer(BATCH),
                                                       repeats, warmup, device)
            latency_ours, latency_reference = _interleaved(lambda: workload.ours_infer(1), lambda: workload.reference_infer(1),
                                                           repeats, warmup, device)
        results[name] = {
            "ours": round(BATCH / train_ours, 1),
            "reference": round(BATCH / train_reference, 1),
            "ratio": round(train_reference / train_ours, 2),
            "unit": "train samples/s",
            "inference_ours": round(BATCH / infer_ours, 1),
            "inference_reference": round(BATCH / infer_reference, 1),
            "inference_ratio": round(infer_reference / infer_ours, 2),
            "latency_ms_ours": round(latency_ours * 1e3, 2),
            "latency_ms_reference": round(latency_reference * 1e3, 2),
        }
        if device.type == "cuda":  # one training step's peak, above what was allocated before it
            results[name].update(memory_mb_ours=_peak_memory_mb(workload.ours_step, device),
                                 memory_mb_reference=_peak_memory_mb(workload.reference_step, device))
    return results


def context(device: torch.device) -> dict:
    """What the numbers depend on: threads, device, native kernel build times, peak memory."""
    peak = (torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "device": str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "native_load_s": {k: round(v, 1) for k, v in kernel_build.BUILD_SECONDS.items()},  # compile on first use, else cache
        "peak_memory_mb": round(peak, 1),
        "peak_memory_kind": "CUDA max allocated" if device.type == "cuda" else "process max RSS (all workloads)",
    }
