"""Flexible Krylov solvers (irsolve.solvers.FlexibleCG / FlexibleGMRES) beside scipy and PyAMG.

Darcy 2D with FNO coefficients (12 where a N(0, (-Δ + 9)^-2) sample is
positive, else 3), f = 1, zero initial guess, relative residual 1e-8. For
each grid size it prints, measured in this run on this machine, the
iterations (worst and mean over the batch) and the wall time per problem of

* Jacobi-preconditioned CG: ours (``FlexibleCG(Jacobi(), m=1)``, the whole
  batch in one ``irsolve.solve``) against ``scipy.sparse.linalg.cg`` with
  ``M = D^-1`` (one problem at a time), and their time ratio;
* multigrid-preconditioned CG: ours (``FlexibleCG(Multigrid())``, one V(2,2)
  cycle per iteration, set-up included) against PyAMG smoothed aggregation
  with CG acceleration (set-up + solve), and their ratio; plus our stationary
  multigrid and ``FlexibleGMRES(Multigrid())`` for reference.

Run: ``python benchmarks/bench_krylov.py`` (``--quick`` for a smaller run).
"""

from __future__ import annotations

import os

# One core for each side (set before NumPy loads its BLAS), as in bench_multigrid.py.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyamg  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
import torch  # noqa: E402

from irsolve import FixedPointSolver, solve  # noqa: E402
from irsolve.solvers import (  # noqa: E402
    Darcy2D,
    FlexibleCG,
    FlexibleGMRES,
    Jacobi,
    Multigrid,
    darcy_coefficient,
    gaussian_random_field,
)

RTOL = 1e-8


def fno_darcy(batch: int, n: int, seed: int) -> Darcy2D:
    grf = gaussian_random_field(batch, n, generator=torch.Generator().manual_seed(seed))
    return Darcy2D(darcy_coefficient(grf))


def ours(problem: Darcy2D, solver: FixedPointSolver, maxiter: int) -> tuple[list[int], float]:
    """Iterations per sample and wall time per problem of one batched ``irsolve.solve``."""
    start = time.perf_counter()
    result = solve(None, solver, problem, tol=0.0, rtol=RTOL, maxiter=maxiter)
    elapsed = time.perf_counter() - start
    if not result.success:
        raise RuntimeError(f"{solver!r} did not reach {RTOL}: {result.retcodes}")
    return result.iterations.tolist(), elapsed / problem.batch_size


def scipy_pcg(problem: Darcy2D) -> tuple[list[int], float]:
    """Iterations per sample and time per problem of scipy's CG with the Jacobi preconditioner."""
    matrices = problem.to_scipy()
    iterations = []
    start = time.perf_counter()
    for b, matrix in enumerate(matrices):
        count = [0]

        def tick(_: np.ndarray, count: list[int] = count) -> None:
            count[0] += 1

        rhs = problem.f[b, 0].numpy().ravel()
        _, info = spla.cg(
            matrix, rhs, rtol=RTOL, atol=0.0, M=sp.diags(1.0 / matrix.diagonal()), callback=tick
        )
        if info != 0:
            raise RuntimeError(f"scipy cg did not converge on sample {b} (info {info})")
        iterations.append(count[0])
    return iterations, (time.perf_counter() - start) / len(matrices)


def pyamg_sa_cg(problem: Darcy2D) -> tuple[list[int], float]:
    """Iterations per sample and set-up + solve time per problem of PyAMG SA + CG."""
    matrices = problem.to_scipy()
    iterations = []
    start = time.perf_counter()
    for b, matrix in enumerate(matrices):
        residuals: list[float] = []
        ml = pyamg.smoothed_aggregation_solver(matrix)
        ml.solve(problem.f[b, 0].numpy().ravel(), tol=RTOL, accel="cg", residuals=residuals)
        iterations.append(len(residuals) - 1)
    return iterations, (time.perf_counter() - start) / len(matrices)


def _row(name: str, iterations: list[int], seconds: float, peer: float | None = None) -> str:
    ratio = f"{seconds / peer:>8.2f}" if peer is not None else f"{'':>8}"
    mean = sum(iterations) / len(iterations)
    return f"  {name:<44} {max(iterations):>5d} {mean:>7.1f} {seconds:>9.4f} {ratio}"


def table(n: int, batch: int) -> None:
    problem = fno_darcy(batch, n, seed=n)
    print(f"\nDarcy {n}^2, FNO coefficients 12/3, f = 1, batch {batch}, relative residual {RTOL}")
    print(f"  {'solver':<44} {'worst':>5} {'mean':>7} {'s/problem':>9} {'ratio':>8}")
    peer = scipy_pcg(problem)
    print(_row("scipy cg, M = D^-1 (peer)", *peer))
    mine = ours(problem, FlexibleCG(Jacobi(), m=1), maxiter=5000)
    print(_row("ours FlexibleCG(Jacobi(), m=1) / scipy", *mine, peer[1]))
    peer = pyamg_sa_cg(problem)
    print(_row("PyAMG SA + CG, set-up + solve (peer)", *peer))
    for name, solver in (
        ("ours FlexibleCG(Multigrid()) / PyAMG", FlexibleCG(Multigrid())),
        ("ours FlexibleGMRES(Multigrid()) / PyAMG", FlexibleGMRES(Multigrid())),
        ("ours Multigrid() stationary / PyAMG", Multigrid()),
    ):
        print(_row(name, *ours(problem, solver, maxiter=200), peer[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="63^2 only, batch 2")
    parser.add_argument("--batch", type=int, default=4, help="problems per size (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.machine()} with {os.cpu_count()} cores; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), scipy {scipy.__version__}, "
        f"pyamg {pyamg.__version__}"
    )
    ours(fno_darcy(2, 31, seed=0), FlexibleCG(Multigrid()), maxiter=50)  # warm-up
    if args.quick:
        table(63, batch=2)
    else:
        for n in (63, 127):
            table(n, args.batch)


if __name__ == "__main__":
    main()
