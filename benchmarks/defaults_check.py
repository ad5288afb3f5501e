"""Does any built-in model at its defaults predict one class for every test image? Runs the sweep
configs/defaults/check.yaml (resumable: recorded runs are kept) and prints each run's test AUC,
sensitivity or macro recall, and the classes it predicts; exits 1 when any run predicts one class.

    NEUROCOMP_DATA_DIR=../shared/medmnist python benchmarks/defaults_check.py [--workers 2] [--out results]
"""

from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from neurocomp.runs.record import RunRecord
from neurocomp.runs.pipeline import run_dir
from neurocomp.runs.sweep import expand, load_sweep, run_sweep

SWEEP = "configs/defaults/check.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="results")
    args = parser.parse_args()
    configs = expand(load_sweep(SWEEP), out=args.out)
    run_sweep(configs, workers=args.workers, progress=False)
    rows, one_class = [], []
    for config in configs:
        record = RunRecord.read(run_dir(config))
        test = record.metrics["test"]
        rows.append([record.run_id, f"{test['auc']:.3f}", f"{test['sensitivity']:.3f}", test["predicted_classes"]])
        if test["predicted_classes"] == 1:
            one_class.append(record.run_id)
    print(tabulate(rows, headers=["run", "test auc", "sensitivity (macro recall)", "classes predicted"], tablefmt="github"))
    print(f"\n{len(one_class)} of {len(configs)} runs predict one class" + (f": {', '.join(one_class)}" if one_class else ""))
    return 1 if one_class else 0


if __name__ == "__main__":
    sys.exit(main())
