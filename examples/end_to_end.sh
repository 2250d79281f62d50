#!/usr/bin/env bash
# End to end on embedded data, no downloads: simulate Navier-Stokes, train an FNO
# base, train the IRNO refiner on it, then analyse it (per-step error, spectral
# ratios, contraction certificate) into runs/report/report.md and figures.
# The recipe of benchmarks/bench_irno.py at 32^2: one (w_0, w_0.1) pair per
# trajectory at nu = 1e-4, an FNO keeping n/8 modes, the refiner trained with
# unroll lengths up to 2K (later steps weighted more) and evaluated with alpha
# decaying past K (gamma = 0.25).
# Small sizes so it finishes in about three minutes on two CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs}

irsolve data generate navier_stokes --samples 400 --resolution 32 --frames 2 --record-dt 0.1 \
    --viscosity 1e-4 --seed 0 --out "$out/data" --overwrite
irsolve train-base --data "$out/data/navier_stokes" --n-steps-input 1 --epochs 10 \
    --modes 4 --hidden 32 --lr 3e-3 --batch-size 8 --out "$out/base" --overwrite
irsolve train --data "$out/data/navier_stokes" --n-steps-input 1 --base "$out/base/best.pt" \
    --K 4 --epochs 6 --width 8 --depth 4 --lr 2e-3 --batch-size 8 --beta-fp 0.05 \
    --unroll-max 8 --step-weights linear --alpha-decay 0.25 --out "$out/irno" --overwrite
irsolve analyze --refiner "$out/irno/best.pt" --base "$out/base/best.pt" \
    --data "$out/data/navier_stokes" --n-steps-input 1 --samples 8 --out "$out/report"
echo "report: $out/report/report.md"
