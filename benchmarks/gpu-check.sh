#!/usr/bin/env bash
# The one prepared GPU check (issue 16): on a lent GPU machine with this checkout, install the
# project, run the CUDA-marked tests and the Triton interpreter test, time ours vs snnTorch / ncps on
# the GPU, train the SNN study end to end (fp32 and bf16) and an LTC and a CfC when the data is here, and print a short
# summary. Meant to fit in 8 minutes of a 15-minute device budget: every step has its own time
# limit, and a step that fails is reported and the next one runs.
#   bash benchmarks/gpu-check.sh                # from the repository root
# A machine without network gets the packages it lacks (snntorch, ncps, medmnist, ...) as wheels in
# .whl/ (benchmarks/README.md says how to fetch them). Logs and the summary go to
# ${OUT:-gpu-check-out}/ (8 files); results to ${RESULTS:-/tmp/gpu-check-results}.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check-out}"
results="${RESULTS:-/tmp/gpu-check-results}"
python="${PYTHON:-python3}"
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
if compgen -G ".whl/*.whl" > /dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# No network: install the project itself only, over the packages the machine has.
step install 120 "$python" -m pip install --no-deps --no-build-isolation -e .
"$python" - >> "$summary" 2>&1 <<'PY'
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
step cuda-tests 240 "$python" -m pytest -q -m cuda -p no:cacheprovider tests
step triton-interpreter 90 "$python" -m pytest -q -p no:cacheprovider tests/test_kernel_triton.py
step bench 200 bash -c "'$python' -m neurocomp bench --device cuda --json && '$python' benchmarks/triton_warps.py"
data="${NEUROCOMP_DATA_DIR:-../shared/medmnist}"
if [[ -f "$data/pneumoniamnist_balanced.npz" ]]; then
  for precision in fp32 bf16; do
    step "snn-study-$precision" 120 "$python" -m neurocomp run pneumonia-balanced --config configs/studies/snn-pneumonia.yaml \
      --device cuda --data-dir "$data" --out "$results/$precision" --set "train.precision=$precision"
  done
  step liquid-runs 200 bash -c "for model in ltc cfc; do '$python' -m neurocomp run pneumonia-balanced --model \$model \
    --device cuda --data-dir '$data' --out '$results/liquid'; done"
else
  echo "snn-study: skipped ($data/pneumoniamnist_balanced.npz not here)" | tee -a "$summary"
fi
echo "--- cuda tests ---" >> "$summary"
tail -n 3 "$out/cuda-tests.log" >> "$summary"
echo "--- bench (ours vs reference on the GPU, JSON; context) ---" >> "$summary"
grep -h -E '^\{|^context' "$out/bench.log" >> "$summary" 2>/dev/null  # the warps' timings too
for log in snn-study-fp32 snn-study-bf16 liquid-runs; do
  echo "--- $log ---" >> "$summary"
  grep -h -E "^\| (accuracy|auc) |wall time|kernels|^device" "$out/$log.log" >> "$summary" 2>/dev/null
done
echo "=== summary ==="; cat "$summary"
