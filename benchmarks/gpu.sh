#!/usr/bin/env bash
# GPU check and throughput figures of irsolve, in one go (under 8 minutes on one GPU).
#
#   benchmarks/gpu.sh OUT [--dry-run] [--corrector CHECKPOINT]
#
# 1. installs irsolve: from the wheels in $IRSOLVE_WHEELS (a folder carried to a machine
#    without network: pip download -d DIR -r <(python -m pip freeze)), else with --no-deps
#    when torch and scipy are importable (a bare GPU machine; the modules a missing peer
#    serves are skipped), else with its test dependencies from the index;
# 2. runs the GPU-marked tests (pytest -m gpu) and the 2-process torchrun tests
#    (tests/test_distributed.py), logs in OUT/tests_*.txt;
# 3. runs benchmarks/bench_gpu.py: training samples/s (fp32/bf16, eager/compiled) and
#    solve() throughput of the learned refiner, multigrid and the FCG + learned-corrector
#    hybrid on 256^2 and 512^2 batches, written to OUT/bench_gpu.json;
# 4. runs benchmarks/bench_helmholtz3d.py --quick (3-D Helmholtz rows at 15^3 and 23^3;
#    PyAMG rows are skipped where PyAMG is missing), OUT/bench_helmholtz3d.txt.
# With --dry-run it runs on the CPU at tiny sizes (the GPU tests are then skipped).
set -euo pipefail

out=${1:?usage: benchmarks/gpu.sh OUT [--dry-run] [--corrector CHECKPOINT]}
shift
cd "$(dirname "$0")/.."
mkdir -p "$out"

python -c "import torch" 2>/dev/null || python -m pip install torch
if [[ -n "${IRSOLVE_WHEELS:-}" ]]; then
    python -m pip install --quiet --no-index --find-links "$IRSOLVE_WHEELS" -e ".[test]"
elif python -c "import torch, scipy" 2>/dev/null; then
    # Without network the build runs in place: it needs setuptools >= 70.1 (bdist_wheel
    # built in) or the wheel package (a venv's bundled setuptools 65 has neither).
    if ! python -c "import wheel" 2>/dev/null && ! python - <<'PY'
import sys
import setuptools
major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
sys.exit((major, minor) < (70, 1))
PY
    then
        echo "gpu.sh: installing irsolve without network needs setuptools >= 70.1 or the" \
            "wheel package; found setuptools $(python -c 'import setuptools as s; print(s.__version__)')" \
            "and no wheel: carry wheels in IRSOLVE_WHEELS" >&2
        exit 2
    fi
    python -m pip install --quiet --no-deps --no-build-isolation -e .
else
    python -m pip install --quiet -e ".[test]"
fi

limit=270  # seconds for bench_gpu.py on a GPU; compiling on a CPU takes longer
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
timeout 90 python benchmarks/bench_helmholtz3d.py --quick | tee "$out/bench_helmholtz3d.txt" \
    || status=1
exit $status
