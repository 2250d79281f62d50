"""``irsolve solve``: a classical or hybrid solve of Darcy or Poisson problems from the shell.

The problems are generated (``--problem darcy``: FNO coefficients, 12 where
a Gaussian random field is positive and 3 elsewhere, ``f = 1``;
``--problem poisson``: ``-lap u = f`` with a Gaussian random field ``f``;
both with ``u = 0`` on the boundary, ``--resolution`` interior points per
side, ``--samples`` problems drawn with ``--seed``), or they are the
coefficient fields of a Darcy data file (``--data``, see
:func:`irsolve.data.darcy_problems`). Each is solved from ``u = 0`` to a
relative residual ``--rtol`` (RMS of ``f - A u`` over its value at the
start) by one of :data:`SOLVERS`; the ``Solution`` summary is printed.
``--check`` also solves each problem with ``scipy.sparse.linalg.spsolve``
(:func:`irsolve.analysis.reference_solve`) and prints the relative error
``||u - u_ref||_2 / ||u_ref||_2``.

The exit status is 0 when every sample converged, 1 when one did not.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from irsolve import FixedPointSolver, Solution, solve
from irsolve._validate import check_memory
from irsolve.analysis.reference import reference_solve
from irsolve.cli import plain_text
from irsolve.cli.data_flags import add_format_argument
from irsolve.cli.flags import add_flags, add_settings_arguments
from irsolve.cli.types import integer, real
from irsolve.data.darcy_files import darcy_count, darcy_problems
from irsolve.distributed import resolve_device
from irsolve.learned.darcy_corrector import DarcyCorrectorConfig
from irsolve.learned.trained import family_of, load_corrector
from irsolve.learned.training import TrainConfig
from irsolve.reductions import norm
from irsolve.solvers import (
    Darcy2D,
    FlexibleCG,
    GaussSeidel,
    Jacobi,
    Multigrid,
    Poisson2D,
    StencilProblem,
    darcy_coefficient,
    gaussian_random_field,
)

__all__ = [
    "SOLVERS",
    "SOLVE_ARRAYS",
    "add_subcommands",
    "build_solver",
    "check_solve_memory",
    "make_problem",
    "relative_errors",
]

logger = logging.getLogger(__name__)


def _corrector_cycle(args: argparse.Namespace) -> FixedPointSolver:
    """The trained hybrid cycle: one learned corrector step, then its trained smoothing."""
    cycle, config = load_corrector(args.corrector, flag="--corrector", device=args.device)
    if not isinstance(config, DarcyCorrectorConfig):
        raise ValueError(
            f"expected --corrector to be a darcy corrector checkpoint (irsolve train-corrector "
            f"darcy), got one of the {family_of(config)} family: {args.corrector}"
        )
    return cycle


#: ``--solver`` name -> how to build it from the parsed flags.
SOLVERS: dict[str, Callable[[argparse.Namespace], FixedPointSolver]] = {
    "jacobi": lambda args: Jacobi(),
    "gauss-seidel": lambda args: GaussSeidel(),
    "multigrid": lambda args: Multigrid(),
    "fcg-jacobi": lambda args: FlexibleCG(Jacobi(omega=1.0), m=1),
    "fcg-multigrid": lambda args: FlexibleCG(Multigrid()),
    "corrector+jacobi": _corrector_cycle,
    "fcg-corrector": lambda args: FlexibleCG(_corrector_cycle(args)),
}

#: The ``--solver`` names that read ``--corrector``.
NEEDS_CORRECTOR = ("corrector+jacobi", "fcg-corrector")


def build_solver(args: argparse.Namespace) -> FixedPointSolver:
    """The :class:`~irsolve.FixedPointSolver` that ``--solver`` names.

    ``jacobi``: weighted Jacobi (omega 0.8); ``gauss-seidel``: red-black
    Gauss-Seidel; ``multigrid``: V(2,2) cycles; ``fcg-jacobi``: CG
    preconditioned by one Jacobi sweep (omega 1); ``fcg-multigrid``: flexible
    CG (m = 5) preconditioned by one V-cycle; ``corrector+jacobi``: the hybrid
    cycle of ``--corrector`` (:func:`~irsolve.learned.trained.load_corrector`:
    one learned step, then the ``nu`` sweeps of the smoother it was trained
    with) per step; ``fcg-corrector``: flexible CG preconditioned by one such
    cycle.

    Raises
    ------
    ValueError
        ``--corrector`` missing for a solver in :data:`NEEDS_CORRECTOR`, or
        given for one that would ignore it.
    """
    needs = args.solver in NEEDS_CORRECTOR
    if needs and args.corrector is None:
        raise ValueError(
            f"expected --corrector PATH with --solver {args.solver}, got none "
            "(irsolve train-corrector darcy --out FOLDER makes one: FOLDER/best.pt)"
        )
    if not needs and args.corrector is not None:
        raise ValueError(
            f"expected --corrector only with --solver {' or '.join(NEEDS_CORRECTOR)}, "
            f"got it with --solver {args.solver}, which would ignore it"
        )
    return SOLVERS[args.solver](args)


#: Peak memory of ``irsolve solve`` per problem in float64 arrays of its grid, by ``--solver``:
#: drawing the field, building the problem and solving it (RSS above the start, measured at
#: 2047^2, one thread, the larger of darcy and poisson, rounded up; the corrector rows with a
#: small net: a wider one needs more).
SOLVE_ARRAYS = {
    "jacobi": 22,
    "gauss-seidel": 21,
    "multigrid": 40,
    "fcg-jacobi": 34,
    "fcg-multigrid": 50,
    "corrector+jacobi": 40,
    "fcg-corrector": 52,
}


def check_solve_memory(args: argparse.Namespace, samples: int, n: int) -> None:
    """Refuse, before anything is drawn, a run whose measured peak (:data:`SOLVE_ARRAYS`)
    exceeds the machine's memory, naming ``--resolution`` (or ``--data``) and the solver
    (flags without ``--solver``: the largest peak)."""
    solver = getattr(args, "solver", None)
    arrays = SOLVE_ARRAYS.get(solver, max(SOLVE_ARRAYS.values()))
    check_memory(
        "arguments --samples and --resolution" if args.data is None else "argument --data",
        f"{samples} {args.problem} problem(s) on a {n} x {n} grid with --solver {solver} "
        f"(about {arrays} float64 arrays of the grid per problem, measured)",
        8 * arrays * samples * n * n,
    )


def make_problem(args: argparse.Namespace) -> StencilProblem:
    """The batch of problems the flags describe (see the module docstring)."""
    device = resolve_device(args.device)
    if args.data is not None:
        if args.problem != "darcy":
            raise ValueError(f"expected --problem darcy with --data, got {args.problem}")
        held = darcy_count(args.data, format=args.format, split=args.split)
        if args.samples > held:
            raise ValueError(
                f"expected --samples <= {held}, the samples {args.data} holds, got {args.samples}"
            )
        indices = range(args.samples)
        problem = darcy_problems(args.data, format=args.format, indices=indices, split=args.split)
        check_solve_memory(args, problem.batch_size, problem.n)
        return Darcy2D(problem.a.to(device), f=problem.f.to(device))
    check_solve_memory(args, args.samples, args.resolution)
    generator = torch.Generator().manual_seed(args.seed)
    field = gaussian_random_field(args.samples, args.resolution, generator=generator)
    field = field.to(device=device, dtype=torch.float64)
    if args.problem == "darcy":
        return Darcy2D(darcy_coefficient(field))
    return Poisson2D(field)


def relative_errors(problem: StencilProblem, u: torch.Tensor) -> np.ndarray:
    """``||u_b - u_ref,b||_2 / ||u_ref,b||_2`` per sample, ``u_ref`` from
    :func:`~irsolve.analysis.reference_solve`."""
    exact = reference_solve(problem)
    return (norm(u - exact) / norm(exact)).cpu().numpy()


def _report(args: argparse.Namespace, sol: Solution, errors: np.ndarray | None) -> dict[str, Any]:
    return {
        "solver": args.solver,
        "problem": args.problem if args.data is None else str(args.data),
        "rtol": args.rtol,
        "maxiter": args.maxiter,
        "retcodes": [code.name for code in sol.retcodes],
        "iterations": sol.iterations.tolist(),
        "final_residuals": sol.final_residuals.tolist(),
        "wall_time": sol.stats.get("wall_time"),
        "relative_errors": None if errors is None else errors.tolist(),
    }


#: Coefficient contrast max(a) / min(a) from which the default multigrid is known to slow
#: down (166-217 V-cycles at 1e3 on 19^2 binary per-node fields; README, "Robustness envelope").
HIGH_CONTRAST = 100.0


def _advise_robust_multigrid(
    args: argparse.Namespace, problem: StencilProblem, sol: Solution
) -> None:
    """Warn, naming ``Multigrid.robust()``, when the default multigrid failed or needed more
    than 100 cycles on a Darcy problem of high coefficient contrast (a cheap check after the
    solve: one min and max per sample)."""
    if args.solver != "multigrid" or not isinstance(problem, Darcy2D):
        return
    a = problem.a.flatten(1)
    contrast = float((a.max(dim=1).values / a.min(dim=1).values).max())
    if contrast >= HIGH_CONTRAST and (not sol.success or int(sol.iterations.max()) > 100):
        logger.warning(
            "the default multigrid needed %d cycles (%s) on coefficients of contrast up to %.3g; "
            "for high contrast use Multigrid.robust() or FlexibleCG(Multigrid.robust()) "
            "(README: robustness envelope)",
            int(sol.iterations.max()),
            "converged" if sol.success else "not converged",
            contrast,
        )


def run_solve(args: argparse.Namespace) -> int:
    """Handler of ``irsolve solve``; returns the exit status."""
    problem = make_problem(args)
    solver = build_solver(args)
    sol = solve(None, solver, problem, tol=0.0, rtol=args.rtol, maxiter=args.maxiter)
    print(sol)
    _advise_robust_multigrid(args, problem, sol)
    errors = relative_errors(problem, sol.u) if args.check else None
    if errors is not None:
        print(f"relative error vs scipy spsolve: max {errors.max():.3g}, mean {errors.mean():.3g}")
    if args.json is not None:
        args.json.write_text(json.dumps(_report(args, sol, errors), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if sol.success else 1


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``solve``."""
    p = subparsers.add_parser(
        "solve",
        help="solve generated or file Darcy/Poisson problems with a classical or hybrid solver",
        description=plain_text(__doc__.split("\n\n")[1]),
    )
    p.add_argument(
        "--problem", choices=("darcy", "poisson"), default="darcy", help="(default: darcy)"
    )
    add_flags(
        p,
        "--resolution",
        "--samples",
        resolution={"default": 64, "help": "grid points per side"},
        samples={"default": 4, "help": "problems, the first of --data's"},
    )
    p.add_argument(
        "--seed", type=integer(0), default=0, help="seed of the generated fields (default: 0)"
    )
    add_flags(p, "--data", "--split", data={"help": "a Darcy data file instead of --problem"})
    add_format_argument(p)
    p.add_argument(
        "--solver",
        choices=tuple(SOLVERS),
        default="multigrid",
        help="jacobi: weighted Jacobi sweeps (omega 0.8); gauss-seidel: red-black "
        "Gauss-Seidel sweeps; multigrid: geometric multigrid V(2,2) cycles; fcg-jacobi: "
        "conjugate gradients preconditioned by the diagonal (Jacobi-PCG); fcg-multigrid: "
        "flexible CG preconditioned by one V-cycle; corrector+jacobi: the learned "
        "corrector's cycle, one learned step then its trained smoothing sweeps (needs "
        "--corrector); fcg-corrector: flexible CG preconditioned by that cycle (needs "
        "--corrector). One iteration is one sweep, V-cycle, cycle or CG step "
        "(default: multigrid)",
    )
    add_flags(p, "--corrector")
    p.add_argument(
        "--rtol",
        type=real(0.0, open_min=True),
        default=1e-8,
        help="relative residual to reach (default: 1e-8)",
    )
    p.add_argument("--maxiter", type=integer(1), default=1000, help="steps at most (default: 1000)")
    p.add_argument("--check", action="store_true", help="compare with scipy spsolve")
    add_flags(p, "--json")
    add_flags(p, "--threads", threads={"default": 1})
    add_settings_arguments(p, TrainConfig, only=("device",))
    p.set_defaults(handler=run_solve)
