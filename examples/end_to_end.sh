#!/usr/bin/env bash
# End to end on embedded data, no downloads: simulate Navier-Stokes, train an FNO
# base, train the IRNO refiner on it, then analyse it (per-step error, spectral
# ratios, contraction certificate) into runs/report/report.md and figures.
# Small sizes so it finishes in about five minutes on two CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs}

irsolve data generate navier_stokes --n 24 --resolution 32 --steps 10 --record-dt 0.5 \
    --burn-in 2 --seed 0 --out "$out/data" --overwrite
irsolve train-base --data "$out/data/navier_stokes" --n-steps-input 1 --epochs 8 \
    --modes 8 --hidden 16 --lr 3e-3 --out "$out/base"
irsolve train --data "$out/data/navier_stokes" --n-steps-input 1 --base "$out/base/best.pt" \
    --K 4 --epochs 4 --width 8 --depth 3 --lr 2e-3 --out "$out/irno"
irsolve analyze --checkpoint "$out/irno/best.pt" --base-checkpoint "$out/base/best.pt" \
    --data "$out/data/navier_stokes" --n-steps-input 1 --samples 8 --out "$out/report"
echo "report: $out/report/report.md"
