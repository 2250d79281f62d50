"""Hybrid solving: the closed-loop learned corrector beside classical solvers on Darcy.

Darcy ``-div(a grad u) = 1`` with FNO coefficients (12 where a
``N(0, (-Δ + 9)^-2)`` sample is positive, else 3), zero Dirichlet values.
The corrector (:class:`irsolve.solvers.ResidualCorrector`, a neuralop FNO)
is trained at 64^2 (``irsolve.learned.darcy_corrector``) or loaded from
``--corrector``; then 8 held-out problems per size (64^2, 128^2, 256^2,
without retraining; or, with ``--data FILE``, the first 8 coefficient fields
of a Darcy data file, see :func:`irsolve.data.darcy_problems`) are solved from
zero to a relative residual of 1e-8 (``tol = 1e-8 * rms(f)``, the same for
every row, including warm starts).
Rows, all measured in this run:

- Jacobi (omega 0.8) and red-black Gauss-Seidel alone, capped at
  ``--max-sweeps``; a capped row prints MAX_ITERS and the sweeps
  extrapolated from its measured asymptotic factor (last 10 % of the run);
- Jacobi-preconditioned CG (``FlexibleCG(Jacobi(omega=1), m=1)``, i.e. PCG);
- multigrid V(2,2) and multigrid-preconditioned FCG; PyAMG smoothed
  aggregation + CG, the peer (set-up and solve, one problem at a time);
- the IRNO ``Refiner`` (small U-Net trained on an FNO base) interleaved with
  Jacobi, with ``GeometricAlpha`` (the negative control: it converges only
  because its step dies out);
- the trained hybrid cycle (:func:`irsolve.learned.trained.load_corrector`:
  the corrector, then ``nu`` sweeps of the smoother it was trained with, as
  one :class:`irsolve.Cycle`) and the same with the other smoother (Jacobi /
  red-black Gauss-Seidel), capped at ``--max-cycles`` cycles and
  extrapolated like the smoothers alone;
- ``FlexibleCG(cycle, m=5)`` with that trained cycle, and FCG preconditioned
  by ``Cycle(GS x nu, corrector, GS x nu)`` (a two-level cycle whose coarse
  correction is learned) and by ``Cycle(GS, corrector, GS, corrector, GS)``;
- an FNO warm start (a small FNO trained on ``a -> u``) followed by multigrid.

Columns: learned steps, smoother sweeps or V-cycles, Krylov iterations (each
the worst of the 8 problems), wall time for the batch of 8, worst final
residual, worst relative error against ``scipy.sparse.linalg.spsolve``, and
the return codes. At 64^2 it also prints the contraction estimates of
:mod:`irsolve.analysis`: for the corrector cycle, the per-cycle energy-norm
factor ``||e_{k+1}||_A / ||e_k||_A`` on the test trajectories (the
difference quotient towards the fixed point) and the local Lipschitz
constant ``||J||_A`` (Lanczos) at trajectory points; for the IRNO step
``||J||_2`` at its trajectory points.

Run (2-core CPU): ``python benchmarks/bench_hybrid.py --corrector runs/corrector/best.pt
--max-sweeps 20000 --max-cycles 200`` (``--quick``: 64^2 and 128^2 only,
smaller caps and base training; ``--rows`` runs the rows whose names contain
the given strings; ``--json out.json`` writes every row after each size).
Measured on one thread of a shared 2-core CPU with the README's corrector:
64^2 and 128^2 with the Jacobi, multigrid and corrector rows about 3 minutes
(the stationary learned hybrids at 128^2 take 20-30 s each); at 256^2 the
two corrector FCG rows take 2.5 and 3.5 minutes.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pyamg  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from irsolve import Cycle, FixedPointSolver, solve  # noqa: E402
from irsolve.analysis import lipschitz, reference_solve  # noqa: E402
from irsolve.data import darcy_problems  # noqa: E402
from irsolve.learned.corrector_training import CorrectorObjective  # noqa: E402
from irsolve.learned.darcy_corrector import (  # noqa: E402
    DarcyCorrector,
    DarcyCorrectorConfig,
    corrector_net,
    darcy_pairs,
)
from irsolve.learned.nets import RefinementUNet, base_operator  # noqa: E402
from irsolve.learned.trained import load_corrector  # noqa: E402
from irsolve.learned.training import RefinerConfig, TrainConfig, fit, train_base, train_refiner  # noqa: E402
from irsolve.reductions import dot, norm  # noqa: E402
from irsolve.solvers import (  # noqa: E402
    Darcy2D,
    FlexibleCG,
    GaussSeidel,
    GeometricAlpha,
    Jacobi,
    Multigrid,
    Refiner,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers.peers import pyamg_cg  # noqa: E402

TOL = 1e-8


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def train_corrector(args: argparse.Namespace) -> tuple[Cycle, DarcyCorrectorConfig]:
    """The trained hybrid cycle and its settings: ``--corrector``'s, or one trained here."""
    if args.corrector:
        cycle, config = load_corrector(args.corrector)
        log(f"loaded corrector {args.corrector}: {cycle}")
        return cycle, config
    objective = CorrectorObjective(DarcyCorrector(), corrector_net())
    epochs = 2 if args.quick else 25  # 25: the README's training command
    log(f"training the corrector at 64^2: 256 problems, {epochs} epochs")
    tic = time.perf_counter()
    fit(
        objective,
        darcy_pairs(256, 64, seed=0),
        darcy_pairs(16, 64, seed=1),
        TrainConfig(epochs=epochs, batch_size=16, lr=1e-3, progress=False),
        checkpoint_dir=args.out,
        overwrite=True,
        callback=lambda r: log(f"  epoch {r['epoch']:.0f}: val factor {r['val_cycle_factor']:.3f}"),
    )
    log(f"corrector trained in {time.perf_counter() - tic:.0f} s")
    return load_corrector(Path(args.out) / "best.pt")


def features(problem: Darcy2D) -> Tensor:
    return problem.features().float()


def train_baselines(quick: bool) -> tuple[torch.nn.Module, Refiner]:
    """The FNO warm start (``[a, f] -> u``) and an IRNO refiner (small U-Net) on top of it."""
    a, u = darcy_pairs(64 if quick else 128, 64, seed=0).tensors
    x = Darcy2D(a).features().float()
    data = torch.utils.data.TensorDataset(x, u.float())
    epochs = 3 if quick else 10
    fno = base_operator("fno", 2, 1, n_modes=(12, 12), hidden_channels=24, n_layers=4)
    tic = time.perf_counter()
    train_base(fno, data, None, TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, progress=False))
    fno.eval()
    log(f"FNO warm start trained ({epochs} epochs) in {time.perf_counter() - tic:.0f} s")
    unet = RefinementUNet(3, 1, base_channels=8, depth=3, padding="zeros")
    cfg = RefinerConfig(K=4)
    tic = time.perf_counter()
    settings = TrainConfig(epochs=max(1, epochs // 3), batch_size=16, progress=False)
    train_refiner(fno, unet, data, None, settings, cfg)
    log(f"IRNO refiner trained in {time.perf_counter() - tic:.0f} s")
    refiner = Refiner(unet.eval(), alpha=GeometricAlpha(cfg.alpha, 0.5, start=cfg.K))
    return fno, refiner


def extrapolated(residuals: np.ndarray) -> float:
    """Steps to ``TOL`` from the asymptotic factor over the last 10 % of a capped run.

    ``residuals`` holds the worst sample's residual after each step (a
    hybrid's step is a whole :class:`~irsolve.Cycle`).
    """
    steps = len(residuals) - 1
    span = max(1, steps // 10)
    first, last = residuals[-1 - span], residuals[-1]
    factor = (last / first) ** (1.0 / span)
    if not 0 < factor < 1:
        return math.inf
    return steps + math.log(TOL / last) / math.log(factor)


def run_row(
    name: str,
    problem: Darcy2D,
    exact: Tensor,
    solver: FixedPointSolver,
    counts: Callable[[Tensor], dict[str, Tensor]],
    maxiter: int,
    base: Any = None,
) -> dict[str, Any]:
    tic = time.perf_counter()
    sol = solve(base, solver, problem, tol=TOL, rtol=0.0, maxiter=maxiter)
    wall = time.perf_counter() - tic
    errors = norm(sol.u - exact) / norm(exact)
    row = {
        "row": name,
        "wall_s": wall,
        "final_residual": float(sol.final_residuals.max()),
        "error_vs_spsolve": float(errors.max()),
        "retcodes": {c.name: sol.retcodes.count(c) for c in set(sol.retcodes)},
    }
    row.update({k: int(v.max()) for k, v in counts(sol.iterations).items()})
    if not sol.success and "sweeps" in row:
        steps = extrapolated(sol.residuals.nan_to_num(0.0).max(dim=1).values.numpy())
        if math.isfinite(steps):
            steps_t = torch.tensor([math.ceil(steps)])
            row["extrapolated_sweeps"] = float(counts(steps_t)["sweeps"].max())
        else:
            row["extrapolated_sweeps"] = math.inf
    return row


def pyamg_row(problem: Darcy2D, exact: Tensor) -> dict[str, Any]:
    peer = pyamg_cg(problem, TOL)
    references = list(exact.reshape(exact.shape[0], -1).numpy())
    iterations, finals = peer.iterations, peer.relative_residuals
    errors = peer.errors(references)
    ok = sum(f <= TOL for f in finals)
    retcodes = {"SUCCESS": ok, "MAX_ITERS": len(finals) - ok}
    return {
        "row": "PyAMG SA + CG (peer)",
        "wall_s": peer.wall_s,
        "cycles": max(iterations),
        "krylov": max(iterations),
        "final_residual": max(finals),
        "error_vs_spsolve": max(errors),
        "retcodes": {k: v for k, v in retcodes.items() if v},
    }


def energy(problem: Darcy2D, e: Tensor) -> Tensor:
    return dot(e, problem.apply(e)).clamp_min(0).sqrt()


def contraction(
    cycle: Cycle, refiner: Refiner, fno: torch.nn.Module, problem: Darcy2D
) -> dict[str, float]:
    """Contraction estimates at 64^2 on two test problems (see the module docstring)."""
    problem = problem.restrict(torch.arange(2))
    u = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-12).u
    ctx = cycle.prepare(problem)
    h, factors, points = problem.zeros(), [], []
    with torch.no_grad():
        for k in range(12):
            new = cycle.step(ctx, h, k)
            if k >= 1:
                factors.append(energy(problem, u - new) / energy(problem, u - h))
            if k in (2, 6, 10):
                points.append(new)
            h = new
    factor = torch.stack(factors)
    jac = torch.stack([lipschitz(cycle, problem, p, norm="energy", iters=15) for p in points])
    h = fno(features(problem)).to(problem.f.dtype)
    irno_points = []
    rctx = refiner.prepare(problem)
    with torch.no_grad():
        for k in range(3):
            h = refiner.step(rctx, h, k)
            irno_points.append(h)
    irno = torch.stack([lipschitz(refiner, problem, p, iters=15) for p in irno_points])
    return {
        "cycle_factor_mean": float(factor.mean()),
        "cycle_factor_max": float(factor.max()),
        "cycle_lipschitz_A_max": float(jac.max()),
        "irno_lipschitz_max": float(irno.max()),
        "irno_lipschitz_min": float(irno.min()),
    }


def print_table(n: int, rows: list[dict[str, Any]]) -> None:
    print(f"\nDarcy {n}x{n}, 8 held-out problems, relative residual {TOL:g} (worst problem)")
    head = f"{'row':44s} {'learned':>8s} {'sweeps/V':>9s} {'krylov':>7s} {'wall s':>8s}"
    print(head + f" {'residual':>9s} {'err/spsolve':>11s}  retcodes")
    for r in rows:
        sweeps = r.get("sweeps", r.get("cycles", ""))
        if "extrapolated_sweeps" in r:
            sweeps = f"{sweeps}*"
        print(
            f"{r['row']:44s} {r.get('learned', ''):>8} {sweeps:>9} {r.get('krylov', ''):>7}"
            f" {r['wall_s']:8.2f} {r['final_residual']:9.1e} {r['error_vs_spsolve']:11.1e}  "
            + ", ".join(f"{k} {v}" for k, v in sorted(r["retcodes"].items()))
        )
        if "extrapolated_sweeps" in r:
            print(
                f"{'':44s}   * capped; extrapolated from the last 10 %: "
                f"{r['extrapolated_sweeps']:.0f} sweeps"
            )


def print_ratios(rows: list[dict[str, Any]]) -> None:
    """Iterations and wall time of the learned rows against their classical peers."""
    by_name = {r["row"]: r for r in rows}
    peers = ("Jacobi-PCG", "Multigrid V(2,2)", "PyAMG SA + CG (peer)", "Jacobi alone (omega 0.8)")
    if not all(name in by_name for name in peers):
        return  # a --rows selection without the peers
    pcg, mg, amg, jacobi = (by_name[name] for name in peers)
    jacobi_sweeps = jacobi.get("extrapolated_sweeps", jacobi["sweeps"])
    for r in rows:
        if "learned" not in r or r["row"].startswith("IRNO"):
            continue
        if "krylov" in r:
            versus = f"{pcg['krylov'] / r['krylov']:.1f}x fewer iterations than Jacobi-PCG"
        else:
            sweeps = r.get("extrapolated_sweeps", r["sweeps"])
            versus = f"{jacobi_sweeps / sweeps:.1f}x fewer sweeps than Jacobi alone"
        print(
            f"  {r['row']}: {versus}; wall time {r['wall_s'] / mg['wall_s']:.0f}x multigrid's, "
            f"{r['wall_s'] / amg['wall_s']:.1f}x PyAMG's"
        )


def held_out_problems(data: str | None, sizes: list[int]) -> Iterator[tuple[int, Darcy2D]]:
    """8 held-out problems per size, or the first 8 coefficient fields of a data file."""
    if data is not None:
        problem = darcy_problems(data, indices=range(8))
        yield problem.n, problem
        return
    for n in sizes:
        grf = gaussian_random_field(8, n, generator=torch.Generator().manual_seed(1000 + n))
        yield n, Darcy2D(darcy_coefficient(grf))  # the coefficients of darcy_pairs(8, n, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corrector", default=None, help="checkpoint of train-corrector")
    parser.add_argument("--out", default="/tmp/corrector/bench", help="where a trained one goes")
    parser.add_argument("--quick", action="store_true", help="64^2 and 128^2, small caps")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument(
        "--data", default=None, help="test on a Darcy data file's first 8 coefficient fields"
    )
    parser.add_argument("--max-sweeps", type=int, default=None, help="cap of Jacobi / GS alone")
    parser.add_argument(
        "--max-cycles", type=int, default=None, help="cap of the stationary learned hybrids"
    )
    parser.add_argument(
        "--rows", nargs="+", default=None, help="run only rows whose name contains one of these"
    )
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = args.sizes or ([64, 128] if args.quick else [64, 128, 256])
    cap = args.max_sweeps or (4000 if args.quick else 40000)
    cycles = args.max_cycles or (150 if args.quick else 300)
    log(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), pyamg {pyamg.__version__}"
    )

    cycle, config = train_corrector(args)
    corrector, nu = cycle.solvers[0], config.nu
    smoothers = {"jacobi": "Jacobi", "gauss-seidel": "Gauss-Seidel"}
    other = "gauss-seidel" if config.smoother == "jacobi" else "jacobi"
    other_config = dataclasses.replace(config, smoother=other, omega=None)
    other_cycle = DarcyCorrector().cycle(corrector.net, other_config)
    learned_peers = ("irno (geometricalpha) + jacobi", "fno warm start + multigrid")
    if args.rows is None or any(k.lower() in name for k in args.rows for name in learned_peers):
        fno, refiner = train_baselines(args.quick)
    else:
        fno, refiner = None, None

    def warm(problem: Darcy2D) -> Tensor:
        with torch.no_grad():
            return fno(features(problem)).to(problem.f.dtype)

    def stationary(it: Tensor) -> dict[str, Tensor]:
        return {"learned": it, "sweeps": it * nu}

    def fcg(it: Tensor) -> dict[str, Tensor]:
        return {"learned": it, "sweeps": it * nu, "krylov": it}

    def fcg_symmetric(it: Tensor) -> dict[str, Tensor]:
        return {"learned": it, "sweeps": 2 * it * nu, "krylov": it}

    def fcg_two_cycles(it: Tensor) -> dict[str, Tensor]:
        return {"learned": 2 * it, "sweeps": 3 * it * nu, "krylov": it}

    report: dict[str, Any] = {"tol": TOL, "nu": nu, "sizes": {}}
    for n, problem in held_out_problems(args.data, sizes):
        exact = reference_solve(problem)
        log(f"n = {n}: references solved")
        rows = []
        plans: list[tuple[str, FixedPointSolver, Callable, int, Any]] = [
            ("Jacobi alone (omega 0.8)", Jacobi(), lambda it: {"sweeps": it}, cap, None),
            ("Gauss-Seidel alone (red-black)", GaussSeidel(), lambda it: {"sweeps": it}, cap, None),
            (
                "Jacobi-PCG",
                FlexibleCG(Jacobi(omega=1.0), m=1),
                lambda it: {"sweeps": it, "krylov": it},
                5000,
                None,
            ),
            ("Multigrid V(2,2)", Multigrid(), lambda it: {"cycles": it}, 100, None),
            (
                "Multigrid-PCG (FCG, m=5)",
                FlexibleCG(Multigrid()),
                lambda it: {"cycles": it, "krylov": it},
                100,
                None,
            ),
            (
                f"corrector + {smoothers[config.smoother]} x{nu}",
                cycle,
                stationary,
                cycles,
                None,
            ),
            (
                f"corrector + {smoothers[other]} x{nu}",
                other_cycle,
                stationary,
                cycles,
                None,
            ),
            (
                f"FCG(corrector + {smoothers[config.smoother]} x{nu}), m=5",
                FlexibleCG(cycle),
                fcg,
                1000,
                None,
            ),
            (
                f"FCG(GS x{nu}, corrector, GS x{nu}), m=5",
                FlexibleCG(Cycle(GaussSeidel(sweeps=nu), corrector, GaussSeidel(sweeps=nu))),
                fcg_symmetric,
                1000,
                None,
            ),
            (
                f"FCG(GS x{nu}, [corrector, GS x{nu}] x2), m=5",
                FlexibleCG(Cycle(*[GaussSeidel(sweeps=nu), corrector] * 2, GaussSeidel(sweeps=nu))),
                fcg_two_cycles,
                1000,
                None,
            ),
        ]
        if refiner is not None:
            plans[5:5] = [
                ("FNO warm start + multigrid", Multigrid(), lambda it: {"cycles": it}, 100, warm),
                (
                    f"IRNO (GeometricAlpha) + Jacobi x{nu}",
                    Cycle(refiner, Jacobi(sweeps=nu)),
                    stationary,
                    cycles,
                    warm,
                ),
            ]
        if args.rows:
            plans = [p for p in plans if any(key.lower() in p[0].lower() for key in args.rows)]
        for name, solver, counts, maxiter, base in plans:
            rows.append(run_row(name, problem, exact, solver, counts, maxiter, base))
            keys = ("learned", "sweeps", "cycles", "krylov")
            counts_text = ", ".join(f"{k} {rows[-1][k]}" for k in keys if k in rows[-1])
            log(f"  {name}: {counts_text}, {rows[-1]['wall_s']:.1f} s, {rows[-1]['retcodes']}")
        rows.insert(min(5, len(rows)), pyamg_row(problem, exact))
        print_table(n, rows)
        print_ratios(rows)
        report["sizes"][n] = rows
        if n == 64 and refiner is not None:
            q = contraction(cycle, refiner, fno, problem)
            report["contraction_64"] = q
            print(
                f"\ncontraction at 64^2 (irsolve.analysis, 2 test problems): corrector cycle "
                f"||e_k+1||_A/||e_k||_A mean {q['cycle_factor_mean']:.3f}, max "
                f"{q['cycle_factor_max']:.3f}; local ||J||_A (Lanczos) at trajectory points max "
                f"{q['cycle_lipschitz_A_max']:.3f}; IRNO step ||J||_2 at its trajectory points "
                f"{q['irno_lipschitz_min']:.3f} .. {q['irno_lipschitz_max']:.3f}"
            )
        if args.json:  # after every size, so an interrupted run keeps what it measured
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=2, default=float)
            log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
