"""Multigrid on a Darcy data file's coefficients, against the file's own solutions.

Builds ``Darcy2D`` problems from the file's coefficient fields
(:func:`irsolve.data.darcy_problems`; a boolean mask becomes 3 / 12, the
forcing is 1, or PDEBench's ``beta``), solves them with ``Multigrid`` (V(2,2),
relative residual 1e-10) and reports, per refinement ``r`` of our grid:

* the relative L2 gap ``||u - y|| / ||y||`` between our solution ``u`` at the
  file's points and the file's solution ``y`` (median and max over samples),
  raw and after the one least-squares scale ``c = <u, y> / <u, u>`` over all
  samples (the file's solution scale is not stored with it);
* the multigrid wall time beside scipy's sparse direct solve (``spsolve``)
  of the same systems, measured in the same run, and their ratio.

Refinement ``r`` solves on ``r (n + 1) - 1`` nodes per side, so that the
file's ``n`` points stay nodes (``(i + 1) / (n + 1)``), with the coefficient
of the nearest file point (piecewise constant): the part of the gap that
shrinks with ``r`` is our discretisation error, the rest is the difference of
the two problems (grid placement, coefficient resolution, scaling). Single
CPU thread.

    python benchmarks/bench_own_data_darcy.py --file darcy_test_16.pt [--refine 1 2 4]

neuraloperator's ``darcy_test_16.pt`` is in its 0.3.0 wheel
(``pip download --no-deps neuraloperator==0.3.0``, unzip,
``neuralop/datasets/data/``).

Measured (2-core CPU, shared; 50 samples of each file; r = 1 / 2 / 4 / 8):

* ``darcy_test_16.pt``: raw gap 0.986 (median), least-squares scale
  c = 66.4-67.1, scaled gap median 0.361 / 0.357 / 0.361 / 0.361, max
  0.545-0.549; 8 V-cycles; multigrid 0.07 / 0.16 / 0.34 / 1.65 s against
  spsolve 0.06 / 0.19 / 0.83 / 4.37 s (ratio 0.78 / 1.19 / 2.42 / 2.65).
* ``darcy_test_32.pt`` (r = 1 / 2 / 4): c = 69.5-69.9, scaled gap median
  0.334 at every r, max 0.506-0.510; ratio 1.27 / 1.83 / 2.53.

The gap does not shrink with our grid: it is the difference of the problems,
not our discretisation. The files store neither the coefficient values nor
the forcing nor the grid; their solutions are about 67 times ours for
``a`` in {3, 12}, ``f = 1``; the last row and column are far from zero (mean
0.107 on the 32 file: the points stop short of the boundary x = 1), and the
16 x 16 file is exactly the 32 x 32 file's ``[::2, ::2]``, both subsamples
of a finer solution whose coefficient the mask only samples.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from irsolve import solve
from irsolve.analysis import reference_solve
from irsolve.data import darcy_problems, load_dataset
from irsolve.solvers import Darcy2D, Multigrid


def refined(problem: Darcy2D, r: int) -> tuple[Darcy2D, np.ndarray]:
    """The problem on ``r (n + 1) - 1`` nodes per side, and the fine indices of the file's nodes."""
    n = problem.n
    fine = r * (n + 1) - 1
    nearest = np.clip(np.rint((np.arange(fine) + 1) / r - 1).astype(int), 0, n - 1)
    a = problem.a[..., nearest, :][..., :, nearest]
    return Darcy2D(a, f=float(problem.f.flatten()[0])), r * (np.arange(n) + 1) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", required=True, help="Darcy data file (e.g. darcy_test_16.pt)")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--refine", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = load_dataset(args.file, split=None)
    count = min(args.samples, len(data))
    y = torch.stack([data[i][1] for i in range(count)]).to(torch.float64)
    problem = darcy_problems(args.file, indices=range(count))
    print(f"{args.file}: {count} samples, {problem.n}x{problem.n}, forcing {problem.f.max():g}")
    print(
        f"{'r':>2} {'nodes':>5} {'gap med':>8} {'gap max':>8} {'scale c':>8} "
        f"{'scaled med':>10} {'scaled max':>10} {'cycles':>6} {'MG s':>7} {'spsolve s':>9} "
        f"{'ratio':>6}"
    )
    for r in args.refine:
        fine, nodes = refined(problem, r)
        start = time.perf_counter()
        sol = solve(None, Multigrid(), fine, tol=0.0, rtol=1e-10, maxiter=100)
        mg = time.perf_counter() - start
        start = time.perf_counter()
        reference_solve(fine)
        direct = time.perf_counter() - start
        u = sol.u[..., nodes, :][..., :, nodes]
        norm_y = y.flatten(1).norm(dim=1)
        gap = (u - y).flatten(1).norm(dim=1) / norm_y
        c = float((u * y).sum() / (u * u).sum())
        scaled = (c * u - y).flatten(1).norm(dim=1) / norm_y
        print(
            f"{r:2d} {fine.n:5d} {gap.median():8.4f} {gap.max():8.4f} {c:8.3f} "
            f"{scaled.median():10.4f} {scaled.max():10.4f} {int(sol.iterations.max()):6d} "
            f"{mg:7.3f} {direct:9.3f} {direct / mg:6.2f}"
        )


if __name__ == "__main__":
    main()
