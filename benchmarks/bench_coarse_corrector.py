"""The learned corrector as the coarse solve of multigrid, inside flexible CG, on Darcy.

``Multigrid(coarse=Cycle(corrector, GaussSeidel(sweeps=s), repeats=m), coarsest=32)``
(:mod:`irsolve.solvers.multigrid`): a V(2,2)-cycle from the fine grid down to
a fixed 32^2 level, where a :class:`~irsolve.solvers.ResidualCorrector`
trained at 32^2 replaces the dense LU solve (``m`` learned steps with the
energy step length on the Galerkin ``A_c``, each followed by ``s``
Gauss-Seidel sweeps), then prolongation back. Each is the preconditioner of
``FlexibleCG(m=5)``. Peers,
measured in the same run on the same problems:

- ``FCG(MG, LU 32^2)``: the same cycle with the exact LU coarse solve the
  learned one replaces (the ratio column is against it);
- ``FCG(MG, LU 8^2)``: the default multigrid (coarsest grid 8^2);
- the control ``no learned step``: the same coarse solves with a net that
  returns zero (``alpha = 0``), i.e. the coarse Gauss-Seidel sweeps alone, to
  show what the trained net adds;
- with ``--fine-corrector``: ``FCG(GS x nu, corrector, GS x nu)``, the corrector
  trained at 64^2 applied on the fine grid (README, "Hybrid solving").

Problems: the held-out Darcy problems of ``benchmarks/bench_hybrid.py`` (8
per size, FNO coefficients 3 / 12, ``f = 1``), solved from zero to a relative
residual of 1e-8. Columns: worst Krylov iterations of the 8, wall time of
the batch of 8 (set-up, i.e. the hierarchy and the LU factors, plus solve;
the minimum of ``--repeats`` runs), worst final residual, worst relative error
against ``scipy.sparse.linalg.spsolve`` (:func:`irsolve.analysis.reference_solve`),
return codes, and wall time over the LU-32^2 and LU-8^2 rows.

Run (from the repository root; training the 32^2 corrector took 67 s, the
64^2 one 3 min 22 s, one thread each, while the other trained)::

    irsolve train-corrector darcy --out runs/corrector32 --resolution 32 --epochs 25
    irsolve train-corrector darcy --out runs/corrector64 --resolution 64 --epochs 25
    python benchmarks/bench_coarse_corrector.py --corrector runs/corrector32/best.pt \\
        --fine-corrector runs/corrector64/best.pt

Measured with that command (Intel Xeon x86-64, torch 2.13 CPU, one thread of a
shared 2-core machine; ``uptime`` load average 1.78 at the start, 1.00 at the
end; a short count-only job ran beside it for ~20 s during the
256^2 rows). Wall times of the batch of 8, min of 3 runs, are good to ~20 %;
every row reached 1e-8 on 8 of 8 problems (SUCCESS 8) and agrees with
spsolve to 3.7e-9 or better. Ratio columns: wall time over the LU-32^2 peer
and over the default multigrid (LU 8^2); ``it N``: FCG iterations at N^2
(worst of 8), ``s 256``: wall seconds at 256^2.

=============================================  =====  ======  ======  ======  =====  ====
preconditioner of FCG (m=5)                    it 64  it 128  it 256  s 256   /LU32  /LU8
=============================================  =====  ======  ======  ======  =====  ====
MG, LU 8^2 (default multigrid)                 5      5       5       0.51    0.39   1.00
MG, LU 32^2 (the exact peer replaced)          5      5       5       1.30    1.00   2.54
MG, learned 32^2: [step] x1                    17     18      17      1.65    1.27   3.24
MG, learned 32^2: [step, GS x2] x1             13     14      13      1.36    1.04   2.66
MG, learned 32^2: [step, GS x2] x2             7      8       8       1.02    0.78   1.99
MG, learned 32^2: [step, GS x3] x3             6      6       6       0.89    0.69   1.75
control, no learned step: GS x2                44     40      37      2.80    2.16   5.49
control, no learned step: GS x4                34     28      29      2.33    1.79   4.56
control, no learned step: GS x9                21     20      20      1.68    1.29   3.29
GS x5, corrector 64^2 on the fine grid, GS x5  13     24      56      117.6   90.6   230
=============================================  =====  ======  ======  ======  =====  ====

Wall s at 64^2 / 128^2: LU 8^2 0.04 / 0.12, LU 32^2 0.78 / 0.87, learned
[step, GS x3] x3 0.32 / 0.40, fine-grid corrector 0.72 / 8.00. The LU 32^2
row's time is mostly the set-up: factorising eight dense 1024 x 1024 coarse
matrices (~0.7 s); its solves are cheap. So the learned coarse solve beats
this peer only by avoiding that factorisation, and the default multigrid
(coarsening on to 8^2) is faster than both; the learned coarse level pays off
only where a coarse problem is too big for LU or has no direct solver. The
trained net matters: the same coarse solves with the net replaced by zero
(the sweeps alone) need 20-44 iterations against 6-18.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from bench_hybrid import held_out_problems, log, run_row  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from irsolve import Cycle, FixedPointSolver  # noqa: E402
from irsolve.analysis import reference_solve  # noqa: E402
from irsolve.learned.trained import load_corrector  # noqa: E402
from irsolve.solvers import FlexibleCG, GaussSeidel, Multigrid, ResidualCorrector  # noqa: E402

LU_PEER = "FCG(MG, LU 32^2)"
DEFAULT_MG = "FCG(MG, LU 8^2)"
#: Learned coarse solves measured: (learned steps, Gauss-Seidel sweeps after each).
COARSE_RECIPES = ((1, 0), (1, 2), (2, 2), (3, 3))


class ZeroDirection(nn.Module):
    """The control net: ``Phi = 0``, so the energy step is 0 and only the coarse sweeps act."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x[:, 1:2])


def coarse_solve(corrector: ResidualCorrector, steps: int, sweeps: int) -> Cycle:
    """``steps`` learned steps on ``A_c``, each followed by ``sweeps`` Gauss-Seidel sweeps."""
    if sweeps == 0:
        return Cycle(corrector, repeats=steps)
    return Cycle(corrector, GaussSeidel(sweeps=sweeps), repeats=steps)


def plans(
    corrector: ResidualCorrector, fine: tuple[ResidualCorrector, int] | None
) -> list[tuple[str, FixedPointSolver]]:
    """The rows: name and FCG solver."""
    rows = [
        (DEFAULT_MG, FlexibleCG(Multigrid())),
        (LU_PEER, FlexibleCG(Multigrid(coarsest=32))),
    ]
    control = ResidualCorrector(ZeroDirection())
    for steps, sweeps in COARSE_RECIPES:
        mg = Multigrid(coarse=coarse_solve(corrector, steps, sweeps), coarsest=32)
        rows.append((f"FCG(MG, learned 32^2: [step, GS x{sweeps}] x{steps})", FlexibleCG(mg)))
    for steps, sweeps in COARSE_RECIPES[1:]:
        mg = Multigrid(coarse=coarse_solve(control, steps, sweeps), coarsest=32)
        rows.append((f"FCG(MG, no learned step 32^2: GS x{sweeps * steps})", FlexibleCG(mg)))
    if fine is not None:
        net, nu = fine
        cycle = Cycle(GaussSeidel(sweeps=nu), net, GaussSeidel(sweeps=nu))
        rows.append((f"FCG(GS x{nu}, corrector 64^2, GS x{nu})", FlexibleCG(cycle)))
    return rows


def print_table(n: int, rows: list[dict[str, Any]]) -> None:
    peer = next(r for r in rows if r["row"] == LU_PEER)
    default = next(r for r in rows if r["row"] == DEFAULT_MG)
    print(f"\nDarcy {n}x{n}, 8 held-out problems, relative residual 1e-8 (worst problem)")
    print(
        f"{'row':44s} {'krylov':>6s} {'wall s':>7s} {'residual':>9s} {'err/spsolve':>11s}"
        f" {'/LU32':>6s} {'/LU8':>6s}  retcodes"
    )
    for r in rows:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(r["retcodes"].items()))
        print(
            f"{r['row']:44s} {r['krylov']:6d} {r['wall_s']:7.2f} {r['final_residual']:9.1e}"
            f" {r['error_vs_spsolve']:11.1e} {r['wall_s'] / peer['wall_s']:6.2f}"
            f" {r['wall_s'] / default['wall_s']:6.2f}  {codes}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corrector", required=True, help="train-corrector checkpoint at 32^2")
    parser.add_argument("--fine-corrector", default=None, help="checkpoint at 64^2 (fine row)")
    parser.add_argument("--quick", action="store_true", help="64^2 and 128^2, one repeat")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=None, help="wall time: min of (default 3)")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = args.sizes or ([64, 128] if args.quick else [64, 128, 256])
    repeats = args.repeats or (1 if args.quick else 3)
    log(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    corrector = load_corrector(args.corrector)[0].solvers[0]
    fine = None
    if args.fine_corrector:
        cycle, config = load_corrector(args.fine_corrector)
        fine = (cycle.solvers[0], config.nu)

    def krylov(it: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"krylov": it}

    report: dict[str, Any] = {"sizes": {}}
    for n, problem in held_out_problems(None, sizes):
        exact = reference_solve(problem)
        rows = []
        for name, solver in plans(corrector, fine):
            runs = [run_row(name, problem, exact, solver, krylov, 500) for _ in range(repeats)]
            row = min(runs, key=lambda r: r["wall_s"])
            rows.append(row)
            log(f"  n={n} {name}: {row['krylov']} iterations, {row['wall_s']:.2f} s")
        print_table(n, rows)
        report["sizes"][n] = rows
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=2, default=float)


if __name__ == "__main__":
    main()
