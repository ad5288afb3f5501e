"""How many warps each program of the Triton LTC and CfC kernels should have (GPU only): times the
bench's LTC and CfC training steps (ours, Triton on CUDA) for 1, 2, 4 and 8 warps, interleaved,
with torch.utils.benchmark (which synchronises CUDA), and prints the median per step.

    python benchmarks/triton_warps.py            # on a machine with CUDA
"""

from __future__ import annotations

import json

import torch
from torch.utils.benchmark import Timer

from neurocomp.analysis.bench import WORKLOADS
from neurocomp.kernels import triton_cfc, triton_ltc

MODULES = {"ltc": triton_ltc, "cfc": triton_cfc}
CHOICES = (1, 2, 4, 8)


def main() -> None:
    device = torch.device("cuda")
    results = {}
    for name, module in MODULES.items():
        torch.manual_seed(0)
        step = WORKLOADS[name](device).ours_step
        times = {warps: [] for warps in CHOICES}
        for warps in CHOICES:  # compile each variant before timing any
            module.NUM_WARPS = warps
            step()
        for _ in range(5):
            for warps in CHOICES:
                module.NUM_WARPS = warps
                times[warps].append(Timer("step()", globals={"step": step}).timeit(5).median)
        results[name] = {warps: round(sorted(t)[len(t) // 2] * 1e3, 3) for warps, t in times.items()}
    print(json.dumps({"ms_per_training_step_by_warps": results, "device": torch.cuda.get_device_name(device)}))


if __name__ == "__main__":
    main()
