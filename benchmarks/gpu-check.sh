#!/usr/bin/env bash
# The one prepared GPU check (issue 16): on a lent GPU machine with this checkout, install the
# project, run the CUDA-marked tests and the Triton interpreter test, time ours vs snnTorch / ncps on
# the GPU, train the SNN study end to end when its data is here, and print a short summary. Meant
# to fit in 8 minutes of a 15-minute device budget: every step has its own time limit, and a step
# that fails is reported and the next one runs.
#   bash benchmarks/gpu-check.sh                # from the repository root
# Writes its logs and the summary to ${OUT:-gpu-check-out}/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check-out}"
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
step() {  # step NAME SECONDS COMMAND...: run with a limit, log it, note the outcome in the summary
  local name="$1" limit="$2"; shift 2
  local started=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local code=$?
  echo "$name: exit $code in $((SECONDS - started)) s" | tee -a "$summary"
  return 0
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$summary" 2>&1
# The machine has no network: install the project itself only, over the packages it already has.
step install 120 python -m pip install --no-deps --no-build-isolation -e .
python - >> "$summary" 2>&1 <<'PY'
import importlib
for name in ("torch", "triton", "snntorch", "ncps", "medmnist", "sklearn"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as error:  # report, do not stop: the steps below say what they need
        print(f"{name} missing: {error}")
import torch
print("cuda available:", torch.cuda.is_available())
PY
step cuda-tests 150 python -m pytest -q -m cuda -p no:cacheprovider tests
step triton-interpreter 60 python -m pytest -q -p no:cacheprovider tests/test_kernel_triton.py
step bench 150 python -m neurocomp bench --device cuda --json
data="${NEUROCOMP_DATA_DIR:-../shared/medmnist}"
if [[ -f "$data/pneumoniamnist_balanced.npz" ]]; then
  step snn-study 150 python -m neurocomp run pneumonia-balanced --config configs/studies/snn-pneumonia.yaml \
    --device cuda --data-dir "$data" --out "$out/results" --quiet
else
  echo "snn-study: skipped ($data/pneumoniamnist_balanced.npz not here)" | tee -a "$summary"
fi
echo "--- bench (ours vs reference on the GPU, JSON) ---" >> "$summary"
grep -h '^{' "$out/bench.log" >> "$summary" 2>/dev/null
grep -h -E "wall time|epoch|kernels" "$out/snn-study.log" >> "$summary" 2>/dev/null
echo "=== summary ==="; cat "$summary"
