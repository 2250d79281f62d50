"""3-D Helmholtz: where the direct solve stops, the shifted Laplacian, PyAMG and the learned step.

``-Δu - k^2 (1 - i γ) u = f`` (:class:`irsolve.solvers.Helmholtz3D`, 7-point,
complex128, sponge on all six faces) at 10 points per wavelength
(``k_max = 2 π (n + 1) / 10``: 20, 30, 40, 60, 80 at 31^3, 47^3, 63^3, 95^3,
127^3), a point source, ``--batch`` held-out media per size
(:func:`irsolve.learned.helmholtz_corrector.mixed_speed` with ``dim=3``, seed
1000 + n: smooth, inclusions, layered in turn; iterations are printed per
medium, since they depend on the medium more than on ``n``), from zero to a relative residual
``||f - A u|| / ||f|| <= 1e-7``. Each row runs in its own forked process
(peak resident memory per row, killed past ``--cap-s`` seconds, default 600).
Rows:

- ``splu(A)``: SciPy's SuperLU of ``A`` with the symmetric ordering
  ``MMD_AT_PLUS_A`` and ``diag_pivot_thresh=0`` (faster than the default
  COLAMD with pivoting on these matrices), factorisation and one solve per
  problem: the direct peer. Before each size its memory and time are
  extrapolated from the two previous sizes (a power law in ``N``); a size whose
  estimate exceeds the machine's available memory or the cap is refused with
  the estimate, not run;
- ``FGMRES(SL exact)``: the same FGMRES as the next row with the shifted
  Laplacian inverted by a sparse LU (``ShiftedLaplacian(SparseLU(0.0))``: the
  iterations any SL cycle can hope for; stops with ``splu``);
- ``FGMRES(SL MG)``: :class:`~irsolve.solvers.FlexibleGMRES` with
  :class:`~irsolve.solvers.ShiftedLaplacian` (``β = 1 - 0.5 i``, one V(1,1) of
  :class:`~irsolve.solvers.GeometricMultigrid`, Galerkin, Jacobi 0.8 on the levels
  where ``k h < 2``, a sparse LU on the first level beyond), batched;
- ``FGMRES(SL MG x3 on A)``: the learned row's cycle without its net, three
  corrections ``z <- z + B_M (r - A z)`` per iteration
  (``Cycle(ShiftedLaplacian(), repeats=3)``): the control that says what the
  net adds beyond more SL work;
- ``GMRES(PyAMG SA on SL)``: SciPy GMRES preconditioned by one V-cycle of PyAMG
  smoothed aggregation built on the SL matrix (skipped when PyAMG is missing);
- ``MG alone``: that V(1,1) cycle on ``A`` itself, 50 cycles (expected to fail);
- ``FGMRES(learned)``: the deployed cycle of ``--net`` (an
  ``irsolve train-corrector helmholtz --dim 3`` checkpoint, loaded with
  :func:`irsolve.learned.trained.load_corrector`), trained at one size and
  applied at every size.

Krylov rows: restart ``--restart`` (default 100), at most ``--maxiter``
iterations. Columns: worst iterations, wall seconds for the batch (set-up
included; ours batched, SciPy one problem at a time), worst relative residual
recomputed with ``to_scipy``, worst relative error against ``splu(A)``'s
solution where it ran, return codes, peak RSS. The last line per size gives
each row's time over the fastest classical row that converged.

Run: ``python benchmarks/bench_helmholtz3d.py --net runs/helmholtz3d/best.pt``
(``--sizes 31 47``, ``--rows FGMRES splu``, ``--quick``: 15^3 and 23^3, no net, for CI).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse.linalg as spl  # noqa: E402
import torch  # noqa: E402
from timing import run_in_child  # noqa: E402

from irsolve import Cycle, solve  # noqa: E402
from irsolve.learned.helmholtz_corrector import HelmholtzCorrectorConfig, mixed_speed  # noqa: E402
from irsolve.learned.trained import load_corrector  # noqa: E402
from irsolve.solvers import FlexibleGMRES, Helmholtz3D, ShiftedLaplacian, SparseLU  # noqa: E402
from irsolve.solvers.helmholtz import point_source  # noqa: E402
from irsolve.solvers.helmholtz_preconditioner import default_inner_solver  # noqa: E402

RTOL = 1e-7
DIRECT_ROWS = ("splu(A)", "FGMRES(SL exact)")


@dataclass
class Result:
    """What a row's child process returns: per-sample iterations, return codes and solutions."""

    iterations: list[int]
    codes: list[str]
    solutions: np.ndarray
    wall_s: float


def problems(n: int, args: argparse.Namespace, config: HelmholtzCorrectorConfig) -> Helmholtz3D:
    """The ``args.batch`` media of size ``n``; the sponge is 0.1 of the side, or
    ``args.sponge_wavelengths`` wavelengths at the slowest speed (``ppw h`` each)."""
    generator = torch.Generator().manual_seed(1000 + n)
    speed = mixed_speed(args.batch, n, generator, dim=3)
    f = point_source(args.batch, n, generator=generator, dim=3)
    wavelengths = args.sponge_wavelengths
    width = None if wavelengths is None else wavelengths * config.ppw / (n + 1)
    return config.problem(speed, f, sponge_width=width)


def _ours(problem: Helmholtz3D, solver, maxiter: int) -> Result:
    tic = time.perf_counter()
    with torch.no_grad():
        sol = solve(None, solver, problem, tol=0.0, rtol=RTOL, maxiter=maxiter)
    wall = time.perf_counter() - tic
    codes = [code.name for code in sol.retcodes]
    return Result(sol.iterations.tolist(), codes, sol.u.flatten(1).numpy(), wall)


def _factor(matrix):
    """SuperLU of ``matrix`` with the symmetric ordering and no pivoting threshold."""
    return spl.splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)


def _direct(problem: Helmholtz3D) -> Result:
    tic = time.perf_counter()
    b = problem.f.flatten(1).numpy()
    solutions = np.stack([_factor(m).solve(b[i]) for i, m in enumerate(problem.to_scipy())])
    count = len(solutions)
    return Result([1] * count, ["SUCCESS"] * count, solutions, time.perf_counter() - tic)


def _scipy_gmres(problem: Helmholtz3D, preconditioner, restart: int, maxiter: int) -> Result:
    """SciPy GMRES per sample, preconditioned by ``preconditioner(M)`` (set-up timed)."""
    tic = time.perf_counter()
    b = problem.f.flatten(1).numpy()
    shifted = problem.shifted_laplacian().to_scipy()
    its, codes, solutions = [], [], []
    for i, matrix in enumerate(problem.to_scipy()):
        count: list[float] = []
        u, info = spl.gmres(matrix, b[i], M=preconditioner(shifted[i]), rtol=RTOL,
                            restart=restart, maxiter=-(-maxiter // restart),
                            callback=count.append, callback_type="pr_norm")  # fmt: skip
        its.append(len(count))
        codes.append("SUCCESS" if info == 0 else "MAX_ITERS")
        solutions.append(u)
    return Result(its, codes, np.stack(solutions), time.perf_counter() - tic)


def _sl_pyamg(shifted):
    import pyamg

    return pyamg.smoothed_aggregation_solver(shifted.tocsr()).aspreconditioner(cycle="V")


def _row(name: str, n: int, args: argparse.Namespace, config, learned) -> Result:
    """Run row ``name`` at ``n^3`` (in the child process)."""
    torch.set_num_threads(1)
    problem = problems(n, args, config)
    fgmres = {"restart": args.restart}
    if name == "splu(A)":
        return _direct(problem)
    if name == "FGMRES(SL exact)":
        shifted = ShiftedLaplacian(SparseLU(pivot_threshold=0.0))
        return _ours(problem, FlexibleGMRES(shifted, **fgmres), args.maxiter)
    if name == "FGMRES(SL MG x3 on A)":
        return _ours(problem, FlexibleGMRES(Cycle(ShiftedLaplacian(), repeats=3), **fgmres),
                     args.maxiter)  # fmt: skip
    if name == "GMRES(PyAMG SA on SL)":
        return _scipy_gmres(problem, _sl_pyamg, args.restart, args.maxiter)
    if name == "FGMRES(SL MG)":
        return _ours(problem, FlexibleGMRES(ShiftedLaplacian(), **fgmres), args.maxiter)
    if name == "MG alone":
        return _ours(problem, default_inner_solver(problem), 50)
    if name == "FGMRES(learned)":
        return _ours(problem, FlexibleGMRES(learned, **fgmres), args.maxiter)
    raise ValueError(f"unknown row {name!r}")


def _power_law(history: list[tuple[int, float]], n: int) -> float | None:
    """``y(n)`` extrapolated from the last two ``(n, y)`` as a power law ``y ∝ n^p``."""
    if len(history) < 2:
        return None
    (n0, y0), (n1, y1) = history[-2:]
    power = math.log(y1 / y0) / math.log(n1 / n0)
    return y1 * (n / n1) ** power


def _available_gb() -> float:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) / 2**20


def _refusal(n: int, history: dict[str, list], cap_s: float) -> str | None:
    """Why the direct rows are not run at ``n`` (estimated memory or time), or ``None``."""
    memory = _power_law(history["memory"], n)
    seconds = _power_law(history["seconds"], n)
    if memory is not None and memory > 0.9 * _available_gb():
        return f"refused: estimated {memory:.0f} GB > {_available_gb():.0f} GB available"
    if seconds is not None and seconds > cap_s:
        return f"refused: estimated {seconds:.0f} s > the {cap_s:.0f} s cap"
    return None


def _check(problem: Helmholtz3D, result: Result, reference) -> tuple[float, float]:
    """Worst relative residual (recomputed with SciPy's matrices) and error vs ``reference``."""
    b = problem.f.flatten(1).numpy()
    matrices = problem.to_scipy()
    residual = max(float(np.linalg.norm(b[i] - m @ result.solutions[i]) / np.linalg.norm(b[i]))
                   for i, m in enumerate(matrices))  # fmt: skip
    if reference is None:
        return residual, math.nan
    error = max(float(np.linalg.norm(result.solutions[i] - x) / np.linalg.norm(x))
                for i, x in enumerate(reference))  # fmt: skip
    return residual, error


def run_size(n: int, args, config, learned, history) -> None:
    problem = problems(n, args, config)
    print(f"\n## {n}^3 = {n**3:,} unknowns, k_max = {float(problem.k_max.max()):.1f}, "
          f"{config.ppw:g} points per wavelength, {args.batch} problem(s)\n")  # fmt: skip
    print("| row | iterations: worst (per medium) | wall s | rel. residual | rel. error vs splu | "
          "return codes | peak RSS GB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    names = list(ROWS) + (["FGMRES(learned)"] if learned is not None else [])
    refusal = _refusal(n, history, args.cap_s)
    reference, seconds = None, {}
    for name in names:
        if args.rows and not any(key in name for key in args.rows):
            continue
        if name == "GMRES(PyAMG SA on SL)" and not _has_pyamg():
            print(f"| {name} | skipped: PyAMG is not installed | | | | | |")
            continue
        if name in DIRECT_ROWS and refusal is not None:
            print(f"| {name} | {refusal} | | | | | |", flush=True)
            continue
        outcome = run_in_child(_row, name, n, args, config, learned, timeout=args.cap_s)
        if outcome is None:
            print(f"| {name} | stopped at the {args.cap_s:.0f} s cap | | | | | |", flush=True)
            if name == "splu(A)":
                refusal = "not run: splu(A) passed the cap"
            continue
        result, peak = outcome
        if name == "splu(A)":
            reference = result.solutions
            history["memory"].append((n, peak))
            history["seconds"].append((n, result.wall_s))
        residual, error = _check(problem, result, reference)
        codes = ", ".join(f"{c}: {result.codes.count(c)}" for c in sorted(set(result.codes)))
        per_medium = "/".join(str(count) for count in result.iterations)
        print(f"| {name} | {max(result.iterations)} ({per_medium}) | {result.wall_s:.2f} | "
              f"{residual:.1e} | {error:.1e} | {codes} | {peak:.2f} |", flush=True)  # fmt: skip
        if all(code == "SUCCESS" for code in result.codes) and residual <= 1.01 * RTOL:
            seconds[name] = result.wall_s
    classical = {name: s for name, s in seconds.items() if name != "FGMRES(learned)"}
    if classical:
        best = min(classical, key=classical.get)
        print(f"\nwall time over the fastest converged classical row ({best}): " + ", ".join(
            f"{name} x{s / classical[best]:.2f}" for name, s in seconds.items()))  # fmt: skip


ROWS = (
    "splu(A)",
    "FGMRES(SL exact)",
    "FGMRES(SL MG)",
    "FGMRES(SL MG x3 on A)",
    "GMRES(PyAMG SA on SL)",
    "MG alone",
)


def _has_pyamg() -> bool:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[31, 47, 63, 95])
    parser.add_argument(
        "--batch", type=int, default=3, help="media per size (smooth, inclusions, layered in turn)"
    )
    parser.add_argument("--net", help="a train-corrector helmholtz --dim 3 checkpoint")
    parser.add_argument("--rows", nargs="+", help="run only rows whose name contains one of these")
    parser.add_argument("--restart", type=int, default=100)
    parser.add_argument("--maxiter", type=int, default=1000)
    parser.add_argument("--cap-s", type=float, default=600.0, help="seconds per row")
    parser.add_argument(
        "--sponge-wavelengths",
        type=float,
        help="sponge thickness in wavelengths at the slowest speed (default: 0.1 of the side, "
        "0.3 / 0.5 / 0.6 / 1.0 wavelengths at 31 / 47 / 63 / 95^3)",
    )
    parser.add_argument("--quick", action="store_true", help="15^3 and 23^3")
    args = parser.parse_args()
    sizes = [15, 23] if args.quick else args.sizes
    config, learned = HelmholtzCorrectorConfig(dim=3), None
    if args.net:
        learned, config = load_corrector(args.net)
        if config.dim != 3:
            parser.error(
                f"--net {args.net}: expected a 3-D checkpoint (dim 3), got dim {config.dim}"
            )
    if args.sponge_wavelengths is not None:
        if not args.sponge_wavelengths > 0:
            parser.error(f"--sponge-wavelengths: expected > 0, got {args.sponge_wavelengths}")
        widest = args.sponge_wavelengths * config.ppw / (min(sizes) + 1)
        if widest > 0.5:
            parser.error(f"--sponge-wavelengths {args.sponge_wavelengths:g}: the sponge would be "
                         f"{widest:.2f} of the side at {min(sizes)}^3 (at most 0.5)")  # fmt: skip
    print(f"# 3-D Helmholtz: {platform.machine()}, {os.cpu_count()} cores, torch threads 1, "
          f"rel. residual {RTOL:g}, restart {args.restart}")  # fmt: skip
    history: dict[str, list] = {"memory": [], "seconds": []}
    for n in sizes:
        run_size(n, args, config, learned, history)


if __name__ == "__main__":
    main()
