#!/usr/bin/env bash
# GPU check and throughput figures of irsolve, in one go (under 8 minutes on one GPU).
#
#   benchmarks/gpu.sh OUT [--dry-run] [--corrector CHECKPOINT]
#
# 1. installs irsolve and its test dependencies (torch itself only when missing);
# 2. runs the GPU-marked tests (pytest -m gpu) and the 2-process torchrun tests
#    (tests/test_distributed.py), logs in OUT/tests_*.txt;
# 3. runs benchmarks/bench_gpu.py: training samples/s (fp32/bf16, eager/compiled) and
#    solve() throughput of the learned refiner, multigrid and the FCG + learned-corrector
#    hybrid on 256^2 and 512^2 batches, written to OUT/bench_gpu.json.
# With --dry-run it runs on the CPU at tiny sizes (the GPU tests are then skipped).
set -euo pipefail

out=${1:?usage: benchmarks/gpu.sh OUT [--dry-run] [--corrector CHECKPOINT]}
shift
cd "$(dirname "$0")/.."
mkdir -p "$out"

python -c "import torch" 2>/dev/null || python -m pip install torch
python -m pip install --quiet -e ".[test]"

limit=330  # seconds for bench_gpu.py on a GPU; compiling on a CPU takes longer
if [[ " $* " == *" --dry-run "* ]]; then
    limit=900
else
    if ! python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
        echo "gpu.sh: no CUDA device visible; use --dry-run to check the CPU path" >&2
        exit 2
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
fi

status=0
timeout 60 python -m pytest -q -m gpu tests/ | tee "$out/tests_gpu.txt" || status=1
timeout 60 python -m pytest -q tests/test_distributed.py | tee "$out/tests_distributed.txt" \
    || status=1
timeout "$limit" python benchmarks/bench_gpu.py --out "$out" "$@" | tee "$out/bench_gpu.txt"
exit $status
