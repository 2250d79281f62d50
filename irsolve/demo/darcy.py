"""Parts 2 and 3 of the demo: Darcy solved by classical, learned and hybrid solvers.

Part 2 trains the closed-loop :class:`~irsolve.solvers.ResidualCorrector`
(``h + s Phi(a, r / s)``, ``s = ||r||``, energy step length) with
:class:`~irsolve.learned.corrector_training.CorrectorObjective` (Darcy family) and solves
held-out problems from zero to a relative residual of :data:`TOL` by Jacobi
alone, the corrector interleaved with Jacobi, Jacobi-PCG, flexible CG
preconditioned by the corrector cycle, and multigrid V(2,2). Part 3 sets
irsolve's multigrid (alone and as FCG preconditioner) beside PyAMG smoothed
aggregation + CG. Every row's error is measured against
:func:`scipy.sparse.linalg.spsolve`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from irsolve import FixedPointSolver, solve
from irsolve.analysis.reference import reference_solve
from irsolve.learned.corrector_training import CorrectorObjective
from irsolve.learned.darcy_corrector import DarcyCorrector, corrector_net, darcy_pairs
from irsolve.learned.trained import load_corrector
from irsolve.learned.training import TrainConfig, fit, seed_everything
from irsolve.solvers import (
    Darcy2D,
    FlexibleCG,
    Jacobi,
    Multigrid,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers.peers import pyamg_cg

from .report import plot_histories, row
from .settings import DemoCache, DemoSettings

__all__ = ["TOL", "run_hybrid", "run_multigrid_table"]

logger = logging.getLogger(__name__)

#: Relative residual every Darcy row is solved to (``f = 1``, so also absolute RMS).
TOL = 1e-8


def darcy_problems(count: int, n: int, seed: int) -> tuple[Darcy2D, list[np.ndarray]]:
    """``count`` FNO Darcy problems on ``n^2`` and their ``spsolve`` solutions (flattened)."""
    generator = torch.Generator().manual_seed(seed)
    problem = Darcy2D(darcy_coefficient(gaussian_random_field(count, n, generator=generator)))
    return problem, list(reference_solve(problem).flatten(1).numpy())


def solve_row(
    solver: FixedPointSolver, problem: Darcy2D, exact: list[np.ndarray], maxiter: int
) -> dict[str, Any]:
    """Solve from zero to ``TOL``; worst iterations, residual, error vs ``spsolve``, history."""
    tic = time.perf_counter()
    sol = solve(None, solver, problem, tol=TOL, rtol=0.0, maxiter=maxiter)
    wall = time.perf_counter() - tic
    u = sol.u.flatten(1).numpy()
    errors = [np.linalg.norm(u[b] - e) / np.linalg.norm(e) for b, e in enumerate(exact)]
    return {
        "iterations": int(sol.iterations.max()),
        "wall_s": wall,
        "final_residual": float(sol.final_residuals.max()),
        "error_vs_spsolve": float(max(errors)),
        "retcodes": {c.name: sol.retcodes.count(c) for c in set(sol.retcodes)},
        "history": sol.residuals.nan_to_num(0.0).max(dim=1).values.tolist(),
    }


def train_corrector(settings: DemoSettings, cache: DemoCache, *, progress: bool = True) -> Path:
    """The corrector's checkpoint, trained on ``darcy_n^2`` problems unless cached."""
    s = settings

    def make(folder: Path) -> None:
        seed_everything(s.seed)
        net = corrector_net(modes=s.corrector_modes, width=s.corrector_width)
        config = TrainConfig(
            epochs=s.corrector_epochs,
            batch_size=16,
            lr=1e-3,
            seed=s.seed,
            device="cpu",
            progress=progress,
        )
        fit(
            CorrectorObjective(DarcyCorrector(), net),
            darcy_pairs(s.corrector_problems, s.darcy_n, seed=s.seed),
            darcy_pairs(16, s.darcy_n, seed=s.seed + 1),
            config,
            checkpoint_dir=folder,
            overwrite=True,
        )

    return cache.get("corrector", "best.pt", make)


def run_hybrid(
    settings: DemoSettings, cache: DemoCache, out: Path, *, progress: bool = True
) -> dict[str, Any]:
    """Part 2: the closed-loop corrector beside Jacobi, Jacobi-PCG and multigrid on Darcy.

    Writes ``hybrid_residuals.png`` (worst problem's residual per solver
    step) to ``out``; returns the rows with their residual histories.
    """
    s = settings
    cycle, config = load_corrector(train_corrector(settings, cache, progress=progress))
    train_s = cache.wall_s("corrector")
    nu = config.nu
    smoothing = f"{config.smoother.capitalize()} x{nu}"
    problem, exact = darcy_problems(s.test_problems, s.test_n, seed=s.seed + 1000)
    plans: list[tuple[str, FixedPointSolver, int, Callable[[int], str]]] = [
        ("Jacobi alone (omega 0.8)", Jacobi(), s.max_sweeps, lambda it: f"{it} sweeps"),
        (
            f"corrector + {smoothing}",
            cycle,
            s.max_cycles,
            lambda it: f"{it} cycles ({it} learned + {it * nu} sweeps)",
        ),
        (
            "Jacobi-PCG",
            FlexibleCG(Jacobi(omega=1.0), m=1),
            s.max_sweeps,
            lambda it: f"{it} CG its",
        ),
        (
            f"FCG(corrector + {smoothing}), m=5",
            FlexibleCG(cycle),
            500,
            lambda it: f"{it} FCG its ({it} learned + {it * nu} sweeps)",
        ),
        ("Multigrid V(2,2)", Multigrid(), 100, lambda it: f"{it} V-cycles"),
    ]
    rows, summary = [], []
    label = f"Darcy {s.test_n}^2, {s.test_problems} problems"
    learned = ("corrector", "FCG(corrector")
    for name, solver, maxiter, work in tqdm(
        plans, desc="Darcy rows", unit="row", disable=not progress
    ):
        result = {"row": name, **solve_row(solver, problem, exact, maxiter)}
        rows.append(result)
        codes = ", ".join(f"{k} {v}" for k, v in sorted(result["retcodes"].items()))
        text = f"res {result['final_residual']:.1e}, err {result['error_vs_spsolve']:.1e}, {codes}"
        trained_for = train_s if name.startswith(learned) else None
        summary.append(
            row(label, name, work(result["iterations"]), result["wall_s"], text, trained_for)
        )
    plot_histories(rows, out / "hybrid_residuals.png", f"Darcy {s.test_n}^2 from zero", TOL)
    return {"nu": nu, "tol": TOL, "train_s": train_s, "rows": rows, "summary": summary}


def run_multigrid_table(settings: DemoSettings, *, progress: bool = True) -> dict[str, Any]:
    """Part 3: multigrid V(2,2), multigrid-preconditioned FCG and PyAMG SA + CG per size."""
    try:
        import pyamg
    except ImportError:
        pyamg = None
        logger.warning("pyamg is not installed: the PyAMG rows are skipped")
    rows, summary = [], []
    for n in tqdm(settings.amg_sizes, desc="multigrid vs PyAMG", unit="size", disable=not progress):
        problem, exact = darcy_problems(4, n, seed=settings.seed + 2000 + n)
        label = f"AMG {n}^2, 4 problems"
        for name, solver in (
            ("irsolve Multigrid V(2,2)", Multigrid()),
            ("FCG(Multigrid)", FlexibleCG(Multigrid())),
        ):
            result = {"n": n, "row": name, **solve_row(solver, problem, exact, 100)}
            del result["history"]
            rows.append(result)
            text = f"res {result['final_residual']:.1e}, err {result['error_vs_spsolve']:.1e}"
            summary.append(row(label, name, f"{result['iterations']} its", result["wall_s"], text))
        if pyamg is None:
            continue
        peer = pyamg_cg(problem, TOL)
        result = {
            "n": n,
            "row": "PyAMG SA + CG (set-up + solve)",
            "iterations": max(peer.iterations),
            "wall_s": peer.wall_s,
            "final_residual": max(peer.relative_residuals),
            "error_vs_spsolve": max(peer.errors(exact)),
        }
        rows.append(result)
        text = f"res {result['final_residual']:.1e}, err {result['error_vs_spsolve']:.1e}"
        summary.append(row(label, result["row"], f"{result['iterations']} its", peer.wall_s, text))
    return {"rows": rows, "summary": summary}
