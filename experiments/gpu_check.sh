#!/usr/bin/env bash
# GPU check of the SW step, in under 5 minutes on one GPU (not run in the CPU-only sessions so far).
#
# 1. One loss+grad step at N=1,000,000, d=128, K=64, L=1,024 (FitConfig defaults: 64 levels,
#    10 quantile iterations, XLA sort): compile time and median step time, recorded next to
#    the 65 ms floor measured on an H200 (sorting 1,024 x 1M along the last axis took 63 ms
#    there) -> results/gpu_point.json.
# 2. The scaling grid (step time vs N, d, K, L with log-log slopes; ott-jax and POT peers
#    along N) at --scale gpu -> results/benchmark_scaling_gpu.json.
#
#    bash experiments/gpu_check.sh            # PYTHON=/path/to/python to choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root: the scripts run as python -m experiments.NAME
PY=${PYTHON:-python}
start=$(date +%s)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import jax; b = jax.default_backend(); print('backend', b, jax.devices()); assert b == 'gpu', 'no GPU backend'"

# The point that matters first, so that a later timeout still leaves it recorded.
timeout 150 "$PY" -m experiments.benchmark_scaling --point 1000000 128 64 1024 --floor-ms 65 --repeats 10 \
    --out results/gpu_point.json

left=$(( 285 - ($(date +%s) - start) ))
if (( left > 30 )); then
    timeout "$left" "$PY" -m experiments.benchmark_scaling --scale gpu --repeats 5 \
        --out results/benchmark_scaling_gpu.json || echo "grid stopped after ${left} s (timeout or error)"
else
    echo "no time left for the grid"
fi
echo "gpu_check done in $(( $(date +%s) - start )) s"
