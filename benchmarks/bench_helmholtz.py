"""Helmholtz: the shifted-Laplacian preconditioner, its peers and the learned preconditioner.

``-Δu - k^2 (1 - i γ) u = f`` (:class:`irsolve.solvers.Helmholtz2D`) at 10
points per wavelength (``k_max`` = 40.8, 80.4, 159.6 at 64^2, 128^2, 256^2),
sponge layer (quadratic ramp to γ = 1 over 10 % of each side), optional
uniform attenuation (``--attenuation``, default 0), a point source. Per size
8 held-out media (:func:`irsolve.learned.helmholtz_corrector.mixed_speed`,
seed 1000 + n: smooth and two-phase with contrast 2, layered with 2.5) are
solved from zero to a relative residual ``||f - A u|| / ||f|| <= 1e-7``.
Rows, all measured in this run:

- ``splu(A)``: the direct solve, SciPy's sparse LU of ``A`` itself (SuperLU,
  its default COLAMD ordering) and one triangular solve per problem: in 2D the
  strongest peer a user would pick (fill ``O(N log N)``);
- ``GMRES``: SciPy GMRES without preconditioner (capped at ``--cap``);
- ``FGMRES(SL MG)``: our :class:`~irsolve.solvers.FlexibleGMRES` with the
  shifted Laplacian ``β = 1 - 0.5 i`` approximated by one V(1,1) cycle of our
  :class:`~irsolve.solvers.Multigrid` (damped Jacobi 0.8, coarsened while
  ``k h < 2``, a sparse LU there:
  :func:`~irsolve.solvers.helmholtz_preconditioner.default_inner_solver`),
  batched over the 8;
- ``FGMRES(SL MG x3)``: the same with three V(1,1) cycles on ``M e = r`` per
  iteration (a better ``M^-1``);
- ``FGMRES(SL MG x3 on A)``: three SL corrections ``z <- z + B_M (r - A z)``
  per iteration (``Cycle(ShiftedLaplacian(), repeats=3)``): the learned row's
  cycle without its net, the control that says what the net adds;
- ``GMRES(SL exact)``: SciPy GMRES with the SL inverted by a sparse LU
  (``splu``): the best any SL cycle can do;
- ``GMRES(PyAMG SA on SL)``: SciPy GMRES preconditioned by one V-cycle of
  PyAMG smoothed aggregation built on the SL matrix, the peer;
- ``MG alone``: that V(1,1) cycle on the Helmholtz operator
  itself (expected to fail: DIVERGED);
- ``FGMRES(learned)``: the learned step alone as preconditioner, and
  ``FGMRES(SL MG + learned)``: the SL cycle then the learned step, three
  times per iteration, the deployed cycle of the checkpoint ``--net`` (an
  ``irsolve train-corrector helmholtz`` run, loaded by
  :func:`irsolve.learned.trained.load_corrector`), trained at one size and
  applied at every size; its problems use the checkpoint's points per
  wavelength and attenuation.

All Krylov rows use restart ``--restart`` (default 100). Columns: worst
iterations of the 8, wall time for all 8 (ours batched, SciPy / PyAMG one at
a time, set-up included), worst relative residual, worst relative error
against ``scipy.sparse.linalg.spsolve``, return codes. The last lines print
each row's worst iterations and wall time over the PyAMG peer's, measured in
the same run, and ``irsolve.analysis``-style residual factors per iteration
(``(||r_k|| / ||r_0||)^(1/k)``, the geometric mean over the solve).

Run: ``python benchmarks/bench_helmholtz.py --net runs/helmholtz/best.pt``
(``--sizes 64 128``, ``--attenuation 0.01``, ``--rows SL learned``,
``--quick``: 32^2 and 48^2, no net needed, for CI).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pyamg  # noqa: E402
import scipy.sparse.linalg as spl  # noqa: E402
import torch  # noqa: E402

from irsolve import Cycle, solve  # noqa: E402
from irsolve.learned.helmholtz_corrector import HelmholtzCorrectorConfig, mixed_speed  # noqa: E402
from irsolve.learned.trained import load_corrector  # noqa: E402
from irsolve.solvers import (  # noqa: E402
    FlexibleGMRES,
    Helmholtz2D,
    ResidualCorrector,
    ShiftedLaplacian,
)
from irsolve.solvers.helmholtz import point_source  # noqa: E402
from irsolve.solvers.helmholtz_preconditioner import default_inner_solver  # noqa: E402

RTOL = 1e-7


@dataclass
class Row:
    """One row: per-sample iterations, residuals, errors and return codes, and the wall time."""

    name: str
    iterations: list[int]
    residuals: list[float]
    errors: list[float]
    codes: list[str]
    wall_s: float
    factors: list[float]

    def line(self) -> str:
        codes = ", ".join(f"{c}: {self.codes.count(c)}" for c in sorted(set(self.codes)))
        return (
            f"| {self.name} | {max(self.iterations)} | {self.wall_s:.2f} | "
            f"{max(self.residuals):.1e} | {max(self.errors):.1e} | {codes} |"
        )


def _relative(matrix, b: np.ndarray, u: np.ndarray) -> float:
    return float(np.linalg.norm(b - matrix @ u) / np.linalg.norm(b))


def _ours(name: str, problem: Helmholtz2D, solver, exact, cap: int) -> Row:
    tic = time.perf_counter()
    sol = solve(None, solver, problem, tol=0.0, rtol=RTOL, maxiter=cap)
    wall = time.perf_counter() - tic
    matrices = problem.to_scipy()
    b = problem.f.flatten(1).numpy()
    u = sol.u.flatten(1).numpy()
    residuals = [_relative(m, b[i], u[i]) for i, m in enumerate(matrices)]
    errors = [float(np.linalg.norm(u[i] - x) / np.linalg.norm(x)) for i, x in enumerate(exact)]
    its = sol.iterations.tolist()
    factors = [r ** (1 / max(k, 1)) for r, k in zip(residuals, its, strict=True)]
    return Row(name, its, residuals, errors, [c.name for c in sol.retcodes], wall, factors)


def _scipy(
    name: str, problem: Helmholtz2D, preconditioner: Callable | None, exact, cap: int, restart: int
) -> Row:
    """SciPy GMRES per sample; ``preconditioner(matrix_M)`` builds an operator (set-up timed)."""
    tic = time.perf_counter()
    its, residuals, errors, codes, factors = [], [], [], [], []
    shifted = problem.shifted_laplacian().to_scipy()
    for i, matrix in enumerate(problem.to_scipy()):
        b = problem.f[i].flatten().numpy()
        m = None if preconditioner is None else preconditioner(shifted[i])
        count: list[float] = []
        u, info = spl.gmres(matrix, b, M=m, rtol=RTOL, restart=restart, maxiter=-(-cap // restart),
                            callback=count.append, callback_type="pr_norm")  # fmt: skip
        its.append(len(count))
        residuals.append(_relative(matrix, b, u))
        errors.append(float(np.linalg.norm(u - exact[i]) / np.linalg.norm(exact[i])))
        codes.append("SUCCESS" if info == 0 and residuals[-1] <= 1.01 * RTOL else "MAX_ITERS")
        factors.append(residuals[-1] ** (1 / max(len(count), 1)))
    return Row(name, its, residuals, errors, codes, time.perf_counter() - tic, factors)


def _direct(name: str, problem: Helmholtz2D, exact) -> Row:
    """``splu(A)`` and one solve per problem (factorisation timed); ``iterations`` 1."""
    tic = time.perf_counter()
    residuals, errors = [], []
    for i, matrix in enumerate(problem.to_scipy()):
        b = problem.f[i].flatten().numpy()
        u = spl.splu(matrix.tocsc()).solve(b)
        residuals.append(_relative(matrix, b, u))
        errors.append(float(np.linalg.norm(u - exact[i]) / np.linalg.norm(exact[i])))
    count = len(residuals)
    wall = time.perf_counter() - tic
    return Row(name, [1] * count, residuals, errors, ["SUCCESS"] * count, wall, residuals)


def _splu(shifted):
    lu = spl.splu(shifted.tocsc())
    return spl.LinearOperator(shifted.shape, matvec=lu.solve, dtype=np.complex128)


def _pyamg(shifted):
    return pyamg.smoothed_aggregation_solver(shifted.tocsr()).aspreconditioner(cycle="V")


def run_size(
    n: int,
    args: argparse.Namespace,
    learned: FlexibleGMRES | None,
    config: HelmholtzCorrectorConfig,
) -> list[Row]:
    generator = torch.Generator().manual_seed(1000 + n)
    speed = mixed_speed(8, n, generator)
    problem = config.problem(speed, point_source(8, n, generator=generator))
    exact = [spl.spsolve(m.tocsc(), problem.f[i].flatten().numpy())
             for i, m in enumerate(problem.to_scipy())]  # fmt: skip
    print(f"\n## {n}^2, k_max = {float(problem.k_max.max()):.1f}, {config.ppw:g} points per "
          f"wavelength, attenuation {config.attenuation:g}\n")  # fmt: skip
    print("| row | iterations (worst of 8) | wall s (8 problems) | rel. residual | "
          "rel. error vs spsolve | return codes |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    fg = {"restart": args.restart}
    inner = default_inner_solver(problem)  # ShiftedLaplacian's cycle on M
    rows: list[tuple[str, Callable[[], Row]]] = [
        ("splu(A)", lambda: _direct("splu(A)", problem, exact)),
        ("GMRES", lambda: _scipy("GMRES", problem, None, exact, args.cap, args.restart)),
        ("FGMRES(SL MG)", lambda: _ours("FGMRES(SL MG)", problem,
                                        FlexibleGMRES(ShiftedLaplacian(), **fg), exact, args.cap)),
        ("FGMRES(SL MG x3)", lambda: _ours("FGMRES(SL MG x3)", problem,
                                           FlexibleGMRES(ShiftedLaplacian(Cycle(inner,
                                           repeats=3)), **fg), exact, args.cap)),
        ("FGMRES(SL MG x3 on A)", lambda: _ours("FGMRES(SL MG x3 on A)", problem,
                                                FlexibleGMRES(Cycle(ShiftedLaplacian(), repeats=3),
                                                              **fg), exact, args.cap)),
        ("GMRES(SL exact)", lambda: _scipy("GMRES(SL exact)", problem, _splu, exact, args.cap,
                                           args.restart)),
        ("GMRES(PyAMG SA on SL)", lambda: _scipy("GMRES(PyAMG SA on SL)", problem, _pyamg, exact,
                                                 args.cap, args.restart)),
        ("MG alone", lambda: _ours("MG alone", problem,
                                   inner, exact, args.cap)),
    ]  # fmt: skip
    if learned is not None:
        net = learned.solvers[1].net
        rows += [
            ("FGMRES(learned)", lambda: _ours("FGMRES(learned)", problem,
                                              FlexibleGMRES(ResidualCorrector(net, "residual"),
                                                            **fg), exact, args.cap)),
            ("FGMRES(SL MG + learned)", lambda: _ours(
                "FGMRES(SL MG + learned)", problem, FlexibleGMRES(learned, **fg), exact, args.cap)),
        ]  # fmt: skip
    done = []
    for name, run in rows:
        if args.rows and not any(key in name for key in args.rows) or name in args.skip:
            continue
        with torch.no_grad():
            row = run()
        print(row.line(), flush=True)
        done.append(row)
    peer = next((r for r in done if r.name.startswith("GMRES(PyAMG")), None)
    if peer is not None:
        print(f"\nratios against the peer {peer.name} (worst iterations, wall time):")
        for row in done:
            print(f"  {row.name}: iterations x{max(row.iterations) / max(peer.iterations):.2f}, "
                  f"wall x{row.wall_s / peer.wall_s:.2f}")  # fmt: skip
    print("residual factor per iteration (geometric mean, worst of 8): "
          + ", ".join(f"{r.name} {max(r.factors):.3f}" for r in done))  # fmt: skip
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", help="checkpoint of the learned preconditioner (best.pt)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument(
        "--attenuation", type=float, default=None, help="default: the checkpoint's (else 0)"
    )
    parser.add_argument("--restart", type=int, default=100)
    parser.add_argument("--cap", type=int, default=1000, help="iteration cap of every row")
    parser.add_argument("--rows", nargs="*", help="run only rows whose names contain these")
    parser.add_argument("--skip", nargs="*", default=[], help="rows (exact names) to leave out")
    parser.add_argument("--quick", action="store_true", help="32^2 and 48^2, cap 300")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.cap = [32, 48], 300
    torch.set_num_threads(1)
    learned, config = load_corrector(args.net) if args.net else (None, HelmholtzCorrectorConfig())
    if not isinstance(config, HelmholtzCorrectorConfig):
        raise SystemExit(f"expected --net to be a helmholtz corrector checkpoint, got {args.net}")
    if args.attenuation is not None:
        config = dataclasses.replace(config, attenuation=args.attenuation)
    print(f"# Helmholtz benchmark: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch threads 1, net {args.net}")  # fmt: skip
    for n in args.sizes:
        run_size(n, args, learned, config)


if __name__ == "__main__":
    main()
