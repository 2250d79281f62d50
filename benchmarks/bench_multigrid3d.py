"""3-D Poisson and Darcy: GeometricMultigrid beside PyAMG and the sparse direct solve.

Problems: :class:`~irsolve.solvers.Poisson3D` (7-point, Dirichlet, ``f = 1``)
and :class:`~irsolve.solvers.Darcy3D` with a two-phase coefficient (12 where a
uniform draw exceeds 1/2, else 3, per node, seed 0), ``n^3`` unknowns for
``n = 15, 31, 63`` (``--sizes``). One problem per row, from zero to a relative
residual ``||f - A u|| / ||f|| <= 1e-8``. Rows, all measured in this run:

- ``GMG V(2,2)``: :class:`~irsolve.solvers.GeometricMultigrid` (trilinear
  transfers, Galerkin coarse operators, Jacobi 0.8), stand-alone cycles;
- ``FCG(GMG)``: flexible CG preconditioned by one such V-cycle;
- ``PyAMG SA + CG``: PyAMG smoothed aggregation as a CG preconditioner, set-up
  included, on the same matrix (``to_scipy``), the peer;
- ``splu(A)``: SciPy's SuperLU with the symmetric ordering ``MMD_AT_PLUS_A``
  and no pivoting threshold (the best SuperLU does on these SPD matrices),
  factorisation plus one solve; skipped above ``--direct-max`` (default 31,
  where it already takes seconds; fill grows as ``N^(4/3)``).

Columns: iterations, wall seconds (set-up included), relative residual
recomputed with SciPy's matrix, and the peak resident memory of the process
that ran the row (each row runs in its own forked process, so the figure is
that row's peak; it includes about 0.2 GB of Python, torch and SciPy). The
last lines give each row's time over PyAMG's.

Run: ``python benchmarks/bench_multigrid3d.py`` (``--quick``: 15^3 and 31^3).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
import torch  # noqa: E402
from timing import run_in_child  # noqa: E402

from irsolve import solve  # noqa: E402
from irsolve.solvers import Darcy3D, FlexibleCG, GeometricMultigrid, Poisson3D  # noqa: E402

TOL = 1e-8


def problems(n: int) -> dict[str, Poisson3D | Darcy3D]:
    generator = torch.Generator().manual_seed(0)
    draw = torch.rand(1, 1, n, n, n, generator=generator, dtype=torch.float64)
    return {
        "Poisson": Poisson3D(torch.ones(1, 1, n, n, n, dtype=torch.float64)),
        "Darcy 12|3": Darcy3D(torch.where(draw > 0.5, 12.0, 3.0)),
    }


def ours(problem, solver) -> tuple[int, np.ndarray]:
    sol = solve(None, solver, problem, tol=0.0, rtol=TOL, maxiter=100)
    return int(sol.iterations.max()), sol.u[0, 0].numpy().ravel()


def pyamg_cg(problem) -> tuple[int, np.ndarray]:
    import pyamg

    matrix, b = problem.to_scipy()[0], problem.f[0, 0].numpy().ravel()
    residuals: list[float] = []
    u = pyamg.smoothed_aggregation_solver(matrix).solve(
        b, tol=TOL, maxiter=200, accel="cg", residuals=residuals
    )
    return len(residuals) - 1, u


def direct(problem) -> tuple[int, np.ndarray]:
    matrix, b = problem.to_scipy()[0].tocsc(), problem.f[0, 0].numpy().ravel()
    lu = spla.splu(matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
    return 1, lu.solve(b)


ROWS: dict[str, Callable] = {
    "GMG V(2,2)": lambda p: ours(p, GeometricMultigrid()),
    "FCG(GMG)": lambda p: ours(p, FlexibleCG(GeometricMultigrid())),
    "PyAMG SA + CG": pyamg_cg,
    "splu(A)": direct,
}


def _run_row(row: str, kind: str, n: int) -> tuple[int, float, float]:
    """In a child process: build the problem, time the row, return its figures."""
    torch.set_num_threads(1)
    problem = problems(n)[kind]
    start = time.perf_counter()
    iterations, u = ROWS[row](problem)
    seconds = time.perf_counter() - start
    matrix, b = problem.to_scipy()[0], problem.f[0, 0].numpy().ravel()
    relative = float(np.linalg.norm(b - matrix @ u) / np.linalg.norm(b))
    return iterations, seconds, relative


def measure(row: str, kind: str, n: int) -> tuple[int, float, float, float]:
    """The row's iterations, seconds, relative residual and peak RSS (GB), from its own process."""
    (iterations, seconds, relative), peak = run_in_child(_run_row, row, kind, n)
    return iterations, seconds, relative, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[15, 31, 63])
    parser.add_argument("--direct-max", type=int, default=31, help="largest n for splu(A)")
    parser.add_argument("--quick", action="store_true", help="15^3 and 31^3")
    args = parser.parse_args()
    sizes = [15, 31] if args.quick else args.sizes
    print(f"# 3-D multigrid: {platform.machine()}, {os.cpu_count()} cores, torch threads 1")
    for n in sizes:
        for kind in problems(3):
            print(f"\n## {kind}, {n}^3 = {n**3:,} unknowns, relative residual {TOL:g}\n")
            print("| row | iterations | wall s | rel. residual | peak RSS GB |")
            print("|---|---|---|---|---|")
            seconds = {}
            for row in ROWS:
                if row == "splu(A)" and n > args.direct_max:
                    print(f"| {row} | skipped: n > --direct-max {args.direct_max} | | | |")
                    continue
                iterations, seconds[row], relative, peak = measure(row, kind, n)
                figures = f"{iterations} | {seconds[row]:.2f} | {relative:.1e} | {peak:.2f}"
                print(f"| {row} | {figures} |")
            peer = seconds["PyAMG SA + CG"]
            print("wall time over PyAMG SA + CG: " + ", ".join(
                f"{row} x{value / peer:.2f}" for row, value in seconds.items()
            ))  # fmt: skip


if __name__ == "__main__":
    main()
