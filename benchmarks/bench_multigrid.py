"""Black-box multigrid (irsolve.solvers.Multigrid) beside PyAMG on Poisson and Darcy problems.

Prints these tables, every figure measured in this run on this machine:

1. Poisson 2D (5-point, Dirichlet): V(2,2) asymptotic convergence factor,
   cycles and time (set-up + solve) to a relative residual of 1e-8, beside
   PyAMG Ruge–Stüben and smoothed aggregation (stand-alone V-cycles, same
   matrices, same tolerance, zero initial guess).
2. Darcy 2D, smooth and high-contrast coefficients: cycles to 1e-8 (worst
   sample and each sample), mean factor and time per problem of the default
   V(2,2) and of ``Multigrid.robust()`` (K(2,2) cycle, zebra line relaxation
   and cluster blocks, coarsest grid 16), beside PyAMG
   Ruge–Stüben on the same matrices, with the ratios ours / RS. "FNO" is
   12 where a N(0, (-Δ + 9)^-2) sample is positive, else 3; "1|1000" draws the
   coefficient of every node from {1, 1000} with probability 1/2 each.
3. The same high-contrast matrices with conjugate gradients
   (``scipy.sparse.linalg.cg``, relative residual 1e-8) preconditioned by one
   symmetric cycle from zero (``Multigrid(..., symmetric=True).precondition``:
   red-black V(2,2), zebra W(2,2), ``Multigrid.robust(symmetric=True)``),
   beside PyAMG RS + CG; and ``irsolve.solvers.FlexibleCG`` (default ``m``)
   preconditioned by ``Multigrid.robust()`` (the K-cycle is not a fixed linear
   map, so plain CG does not apply).
4. A batch of 16 Darcy problems at 256^2: time per problem of
   ``irsolve.solve(None, Multigrid(), Darcy2D(a))`` (float64 cycles, and
   float32 cycles inside float64 refinement) vs PyAMG SA set-up + CG solve on
   the same fields, and the ratios.

Run: ``python benchmarks/bench_multigrid.py`` (``--quick`` for a smaller run,
``--only contrast`` for tables 2 and 3, ``--contrast-sizes 255`` for other
sizes there).
"""

from __future__ import annotations

import os

# One core for each side (set before NumPy loads its BLAS): PyAMG's BLAS calls otherwise
# spread over threads that thrash on a busy 2-core machine (SA set-up 5-10x slower).
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyamg  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
import torch  # noqa: E402

from irsolve import solve  # noqa: E402
from irsolve.solvers import (  # noqa: E402
    Darcy2D,
    FlexibleCG,
    GaussSeidel,
    Multigrid,
    Poisson2D,
    darcy_coefficient,
    gaussian_random_field,
)

TOL = 1e-8


def fno_darcy(batch: int, n: int, seed: int) -> Darcy2D:
    grf = gaussian_random_field(batch, n, generator=torch.Generator().manual_seed(seed))
    return Darcy2D(darcy_coefficient(grf))


def high_contrast_darcy(batch: int, n: int, seed: int) -> Darcy2D:
    """Coefficient 1 or 1000 at every node, each with probability 1/2."""
    draw = torch.rand(batch, 1, n, n, generator=torch.Generator().manual_seed(seed))
    return Darcy2D(torch.where(draw < 0.5, 1.0, 1000.0).to(torch.float64))


def robust() -> Multigrid:
    """``Multigrid.robust()``: K(2,2) cycle, zebra lines and cluster blocks, coarsest 16."""
    return Multigrid.robust()


def ours_per_sample(problem, solver: Multigrid, maxiter: int) -> tuple[list[int], float, float]:
    """Cycles of each sample, worst mean factor and wall time to ``TOL`` (``irsolve.solve``).

    A sample that does not reach ``TOL`` in ``maxiter`` cycles reports ``maxiter``.
    """
    start = time.perf_counter()
    result = solve(None, solver, problem, tol=0.0, rtol=TOL, maxiter=maxiter)
    elapsed = time.perf_counter() - start
    its = result.iterations
    final = result.residuals.gather(0, its[None]).squeeze(0)
    factors = (final / result.residuals[0]) ** (1.0 / its.clamp(min=1))
    return its.tolist(), float(factors.max()), elapsed


def ours(problem, maxiter: int = 40, solver: Multigrid | None = None) -> tuple[int, float, float]:
    """Cycles (worst sample), mean factor and wall time to ``TOL`` through ``irsolve.solve``."""
    its, factor, elapsed = ours_per_sample(problem, solver or Multigrid(), maxiter)
    return max(its), factor, elapsed


def asymptotic_factor(problem, cycles: int = 12) -> float:
    """Residual reduction of the last of ``cycles`` V(2,2) cycles on the error equation."""
    problem.f.zero_()
    mg = Multigrid()
    ctx = mg.prepare(problem)
    u = torch.randn(
        problem.f.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    ratio = 1.0
    for k in range(cycles):
        before = problem.residual(u).flatten(1).norm(dim=1)
        u = mg.step(ctx, u, k)
        after = problem.residual(u).flatten(1).norm(dim=1)
        ratio = float((after / before).max())
        u = u / after.max()
    return ratio


def pyamg_run(
    matrix, b: np.ndarray, kind: str, accel: str | None, maxiter: int = 200
) -> tuple[int, float, float]:
    """Cycles, mean factor and set-up + solve time of a PyAMG solver to ``TOL``."""
    start = time.perf_counter()
    if kind == "rs":
        ml = pyamg.ruge_stuben_solver(matrix)
    else:
        ml = pyamg.smoothed_aggregation_solver(matrix)
    residuals: list[float] = []
    ml.solve(b, tol=TOL, maxiter=maxiter, accel=accel, residuals=residuals)
    elapsed = time.perf_counter() - start
    cycles = len(residuals) - 1
    factor = (residuals[-1] / residuals[0]) ** (1.0 / max(cycles, 1))
    return cycles, factor, elapsed


def poisson_table(sizes: list[int]) -> None:
    print("\nPoisson 2D, 5-point Dirichlet, tolerance 1e-8 (relative residual), f = 1")
    print(
        f"{'n':>5} | {'ours: V(2,2) factor':>19} {'cycles':>6} {'time s':>7} | "
        f"{'RS: factor':>10} {'cycles':>6} {'time s':>7} | "
        f"{'SA: factor':>10} {'cycles':>6} {'time s':>7} | {'ours/RS':>7} {'ours/SA':>7}"
    )
    for n in sizes:
        factor = asymptotic_factor(Poisson2D(torch.zeros(1, 1, n, n, dtype=torch.float64)))
        problem = Poisson2D(torch.ones(1, 1, n, n, dtype=torch.float64))
        cycles, _, t_ours = ours(problem)
        matrix = problem.to_scipy()[0]
        b = problem.f[0, 0].numpy().ravel()
        rs = pyamg_run(matrix, b, "rs", None)
        sa = pyamg_run(matrix, b, "sa", None)
        print(
            f"{n:>5} | {factor:>19.4f} {cycles:>6d} {t_ours:>7.3f} | "
            f"{rs[1]:>10.4f} {rs[0]:>6d} {rs[2]:>7.3f} | {sa[1]:>10.4f} {sa[0]:>6d} {sa[2]:>7.3f}"
            f" | {t_ours / rs[2]:>7.2f} {t_ours / sa[2]:>7.2f}"
        )


def darcy_table(sizes: list[int], batch: int) -> None:
    print(f"\nDarcy 2D, FNO coefficients 12/3, f = 1, worst of {batch} samples, tolerance 1e-8")
    print(f"{'n':>5} | {'cycles':>6} {'mean factor':>11} {'asymptotic':>10} {'time s':>7}")
    for n in sizes:
        cycles, mean_factor, elapsed = ours(fno_darcy(batch, n, seed=n))
        factor = asymptotic_factor(fno_darcy(batch, n, seed=n))
        print(f"{n:>5} | {cycles:>6d} {mean_factor:>11.4f} {factor:>10.4f} {elapsed:>7.3f}")


def versus_rs_table(kind: str, sizes: list[int], batch: int, maxiter: int) -> None:
    """Stand-alone cycles to ``TOL``: default V(2,2) and the robust K-cycle against PyAMG RS."""
    make = high_contrast_darcy if kind == "1|1000" else fno_darcy
    print(
        f"\nDarcy 2D, {kind} coefficients, f = 1, {batch} samples, tolerance 1e-8, "
        f"stand-alone cycles (cap {maxiter}); time = set-up + solve per problem"
    )
    print(
        f"{'n':>5} {'solver':<24} | {'cycles per sample':<22} {'worst':>5} {'factor':>7} "
        f"{'time s':>7} | {'cycles/RS':>9} {'time/RS':>7}"
    )
    for n in sizes:
        problem = make(batch, n, seed=n)
        b = problem.f[0, 0].numpy().ravel()
        rs = [pyamg_run(m, b, "rs", None, maxiter) for m in problem.to_scipy()]
        rs_its = [r[0] for r in rs]
        rs_time = sum(r[2] for r in rs) / batch
        rows = {
            "PyAMG RS": (rs_its, max(r[1] for r in rs), rs_time),
            "ours V(2,2) (default)": ours_per_sample(problem, Multigrid(), maxiter),
            "ours robust() K(2,2)": ours_per_sample(problem, robust(), maxiter),
        }
        for name, (its, factor, elapsed) in rows.items():
            per = elapsed if name == "PyAMG RS" else elapsed / batch
            ratio = max(i / r for i, r in zip(its, rs_its, strict=True))
            print(
                f"{n:>5} {name:<24} | {str(its):<22} {max(its):>5d} {factor:>7.4f} "
                f"{per:>7.3f} | {ratio:>9.2f} {per / rs_time:>7.2f}"
            )


def _scipy_cg(matrix, b: np.ndarray, apply) -> tuple[int, float]:
    """Iterations and time of ``scipy.sparse.linalg.cg`` to ``TOL``, preconditioned by ``apply``."""
    count = [0]

    def callback(_: np.ndarray) -> None:
        count[0] += 1

    operator = spla.LinearOperator(matrix.shape, matvec=apply, dtype=np.float64)
    start = time.perf_counter()
    _, info = spla.cg(matrix, b, rtol=TOL, maxiter=200, M=operator, callback=callback)
    elapsed = time.perf_counter() - start
    return (count[0] if info == 0 else -1), elapsed


def _cycle_operator(solver: Multigrid, ctx, n: int):
    """``r -> B r`` on flat NumPy vectors: one cycle from zero for one sample's hierarchy."""

    def apply(r: np.ndarray) -> np.ndarray:
        rr = torch.from_numpy(np.ascontiguousarray(r).reshape(1, 1, n, n))
        return solver.precondition(ctx, rr).numpy().ravel()

    return apply


def cg_table(sizes: list[int], batch: int) -> None:
    """Multigrid as a CG preconditioner on the high-contrast matrices, beside PyAMG RS + CG."""
    print(
        f"\nDarcy 2D, 1|1000 coefficients, {batch} samples: preconditioned CG iterations to a "
        "relative residual of 1e-8 (-1: not reached in 200); time = set-up + solve per problem"
    )
    print(f"{'n':>5} {'preconditioner':<34} | {'iterations':<16} {'worst':>5} {'time s':>7}")
    for n in sizes:
        problem = high_contrast_darcy(batch, n, seed=n)
        matrices = problem.to_scipy()
        b = problem.f[0, 0].numpy().ravel()
        rows = {}
        rs = [pyamg_run(m, b, "rs", "cg") for m in matrices]
        rows["PyAMG RS + CG"] = ([r[0] for r in rs], sum(r[2] for r in rs) / batch)
        configs = {
            "sym V(2,2) red-black + CG": Multigrid(symmetric=True),
            "sym W(2,2) zebra + CG": Multigrid(
                cycle="W", smoother=GaussSeidel(ordering="zebra"), symmetric=True
            ),
            "robust(symmetric=True) + CG": Multigrid.robust(symmetric=True),
        }
        for name, solver in configs.items():
            start = time.perf_counter()
            ctx = solver.prepare(problem)
            setup = (time.perf_counter() - start) / batch
            its, times = [], []
            for k, matrix in enumerate(matrices):
                apply = _cycle_operator(solver, solver.restrict(ctx, torch.tensor([k])), n)
                count, elapsed = _scipy_cg(matrix, b, apply)
                its.append(count)
                times.append(elapsed)
            rows[name] = (its, setup + float(np.mean(times)))
        start = time.perf_counter()
        result = solve(None, FlexibleCG(robust()), problem, tol=0.0, rtol=TOL, maxiter=200)
        rows["robust() K-cycle + FlexibleCG"] = (
            result.iterations.tolist(),
            (time.perf_counter() - start) / batch,
        )
        for name, (its, per) in rows.items():
            print(f"{n:>5} {name:<34} | {str(its):<16} {max(its):>5d} {per:>7.3f}")


def batch_table(n: int, batch: int, pyamg_samples: int) -> None:
    problem = fno_darcy(batch, n, seed=2024)
    variants = {
        "V(2,2), float64": Multigrid(),
        "V(2,2), float32 cycles in float64 refinement": Multigrid(cycle_dtype=torch.float32),
    }
    rows = {name: ours(problem, solver=solver) for name, solver in variants.items()}
    b = np.ones(n * n)
    times, iterations = [], []
    for matrix in problem.to_scipy()[:pyamg_samples]:
        its, _, elapsed = pyamg_run(matrix, b, "sa", "cg")
        times.append(elapsed)
        iterations.append(its)
    per_pyamg = float(np.mean(times))
    print(f"\nDarcy batch of {batch} at {n}^2 (FNO coefficients), tolerance 1e-8, set-up + solve")
    print(
        f"  PyAMG SA + CG ({pyamg_samples} of the same fields): {per_pyamg:.4f} s/problem "
        f"({max(iterations)} iterations)"
    )
    for name, (cycles, _, elapsed) in rows.items():
        per = elapsed / batch
        print(
            f"  ours {name} (irsolve.solve): {per:.4f} s/problem ({cycles} cycles), "
            f"ratio ours / PyAMG = {per / per_pyamg:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and batch")
    parser.add_argument(
        "--only",
        choices=("all", "contrast"),
        default="all",
        help="'contrast': only the smooth / high-contrast Darcy comparison and the CG table",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: PyAMG runs on one core too)",
    )
    parser.add_argument(
        "--contrast-sizes",
        type=int,
        nargs="+",
        default=None,
        help="grid sizes of the Darcy comparison and CG tables (default 63 64 127; quick 63 64)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    blas = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"machine: {platform.machine()} with {os.cpu_count()} cores; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), pyamg {pyamg.__version__} (BLAS threads {blas})"
    )
    ours(fno_darcy(2, 33, seed=0))  # warm-up
    contrast_sizes = args.contrast_sizes or ([63, 64] if args.quick else [63, 64, 127])
    versus_rs_table("FNO", contrast_sizes, batch=3, maxiter=100)
    versus_rs_table("1|1000", contrast_sizes, batch=3, maxiter=500)
    cg_table(contrast_sizes, batch=3)
    if args.only == "contrast":
        return
    if args.quick:
        poisson_table([64, 128])
        darcy_table([64, 100, 128], batch=4)
        batch_table(128, batch=8, pyamg_samples=4)
    else:
        poisson_table([64, 128, 256, 512])
        darcy_table([64, 100, 128, 256, 512], batch=4)
        batch_table(256, batch=16, pyamg_samples=16)


if __name__ == "__main__":
    main()
