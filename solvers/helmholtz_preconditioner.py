"""The shifted-Laplacian preconditioner for Helmholtz, as a fixed-point solver.

For ``A u = f`` (:class:`~irsolve.solvers.Helmholtz2D`, :class:`~irsolve.solvers.Helmholtz3D`)
one step of
:class:`ShiftedLaplacian` is preconditioned Richardson

``h <- h + B_M (f - A h)``,

with ``B_M`` an approximate inverse of the shifted Laplacian
``M = -Δ - k^2 (β_1 - i (β_2 + γ))``: one step of an inner solver on
``M e = r`` from ``e = 0`` (by default one V(1,1) cycle with damped Jacobi, ``ω = 0.8``: of
:class:`~irsolve.solvers.Multigrid` in 2-D, of :class:`~irsolve.solvers.GeometricMultigrid`
in 3-D; ``Cycle(Multigrid(...), repeats=2)`` for two). From ``h = 0`` one
step is ``B_M f``, so inside :class:`~irsolve.solvers.FlexibleGMRES` it is the
classical preconditioner of Erlangga, Oosterlee and Vuik (2006). Stand-alone
the iteration diverges (``I - B_M A`` has eigenvalues beyond 1: ``M`` differs
from ``A`` by ``i β_2 k^2``); it is meant as a preconditioner.

References
----------
Y. A. Erlangga, C. W. Oosterlee, C. Vuik, "A novel multigrid based
preconditioner for heterogeneous Helmholtz problems", SIAM J. Sci. Comput. 27
(2006) 1471-1492.
"""

from __future__ import annotations

import cmath
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from irsolve._validate import check_int
from irsolve.composition import Cycle
from irsolve.interface import FixedPointSolver, apply_from_zero, require_solver
from irsolve.solvers.corrector import ResidualCorrector
from irsolve.solvers.direct import SparseLU
from irsolve.solvers.geometric_multigrid import GeometricMultigrid
from irsolve.solvers.helmholtz import HelmholtzProblem
from irsolve.solvers.jacobi import Jacobi
from irsolve.solvers.multigrid import Multigrid

#: Coarsen the 3-D SL cycle while a level's ``k_max h`` is below this (see
#: :func:`default_inner_solver`).
SMOOTHING_KH = 2.0

__all__ = [
    "ShiftedLaplacian",
    "ShiftedLaplacianContext",
    "default_inner_solver",
    "learned_preconditioner",
]


@dataclass
class ShiftedLaplacianContext:
    """Per-solve state: the Helmholtz problem, the inner solver on ``M`` and its context."""

    problem: HelmholtzProblem
    inner: Any
    solver: FixedPointSolver


class ShiftedLaplacian(FixedPointSolver):
    """``h <- h + B_M (f - A h)`` with ``B_M`` one step of ``solver`` on the shifted Laplacian.

    As a Krylov preconditioner, ``Cycle(ShiftedLaplacian(), repeats=m)`` applies
    that correction ``m`` times from ``z = 0``: the polynomial preconditioner
    ``(I - (I - B_M A)^m) A^-1``. Its eigenvalues ``1 - (1 - λ)^m`` (``λ`` those of
    ``B_M A``) move the ones near zero ``m`` times further out, so FGMRES needs
    fewer, dearer iterations; measured (``benchmarks/bench_helmholtz3d.py``,
    worst of 3 media) with ``m = 1 / 3``: 82 / 44 at 31^3, 54 / 29 at 63^3, in
    0.6 to 1.1 times the wall time (less orthogonalisation against more V-cycles).

    Parameters
    ----------
    solver
        Inner solver for ``M e = r`` (a :class:`~irsolve.FixedPointSolver`
        instance whose context accepts a new right-hand side); default
        :func:`default_inner_solver` of each problem (one V(1,1) cycle).
    beta
        ``β_1 - i β_2`` with finite ``β_1`` and ``β_2 >= 0`` (default ``1 - 0.5 i``), see
        :meth:`~irsolve.solvers.Helmholtz2D.shifted_laplacian`.
    """

    def __init__(self, solver: FixedPointSolver | None = None, beta: complex = 1 - 0.5j) -> None:
        if solver is not None:
            require_solver("ShiftedLaplacian", "solver", solver)
        self.solver = solver
        if (
            isinstance(beta, bool)
            or not isinstance(beta, (int, float, complex))
            or not cmath.isfinite(beta)
            or complex(beta).imag > 0
        ):
            raise ValueError(
                f"ShiftedLaplacian: expected beta = b1 - i b2, finite, with b2 >= 0, got {beta!r}"
            )
        self.beta = complex(beta)

    def prepare(self, x: HelmholtzProblem) -> ShiftedLaplacianContext:
        """Build ``M`` and the inner solver's context on it (a multigrid hierarchy)."""
        if not isinstance(x, HelmholtzProblem):
            raise TypeError(
                f"ShiftedLaplacian expected a Helmholtz2D or Helmholtz3D, got {type(x).__name__}"
            )
        solver = self.inner_solver(x)
        return ShiftedLaplacianContext(x, solver.prepare(x.shifted_laplacian(self.beta)), solver)

    def step(self, ctx: ShiftedLaplacianContext, h: Tensor, k: int) -> Tensor:
        """``h + B_M (f - A h)``."""
        return h + apply_from_zero(ctx.solver, ctx.inner, ctx.problem.residual(h))

    def inner_solver(self, problem: HelmholtzProblem) -> FixedPointSolver:
        """The solver on ``problem``'s ``M``: the one given, else
        :func:`default_inner_solver` of ``problem``."""
        return default_inner_solver(problem) if self.solver is None else self.solver

    def residual(self, ctx: ShiftedLaplacianContext, h: Tensor) -> Tensor:
        return ctx.problem.residual(h)

    def restrict(self, ctx: ShiftedLaplacianContext, index: Tensor) -> ShiftedLaplacianContext:
        """The samples ``index``: the problem and the inner context restricted, the inner
        solver kept."""
        inner = ctx.solver.restrict(ctx.inner, index)
        return ShiftedLaplacianContext(ctx.problem.restrict(index), inner, ctx.solver)

    def with_rhs(self, ctx: ShiftedLaplacianContext, f: Tensor) -> ShiftedLaplacianContext:
        """The same ``M`` and hierarchy for ``A z = f`` (only the Helmholtz right-hand side changes;
        the inner right-hand side is set per step)."""
        return ShiftedLaplacianContext(ctx.problem.with_rhs(f), ctx.inner, ctx.solver)

    def __repr__(self) -> str:
        inner = "default" if self.solver is None else repr(self.solver)
        return f"ShiftedLaplacian({inner}, beta={self.beta!r})"


def default_inner_solver(problem: HelmholtzProblem) -> FixedPointSolver:
    """The SL's inner cycle on ``problem``'s ``M``: one V(1,1) with damped Jacobi (``ω = 0.8``),
    coarsened while a level's ``k_max h_l`` stays below :data:`SMOOTHING_KH` (2).

    That level, the first where Jacobi no longer smooths ``M`` (its amplification
    on the Galerkin operator exceeds 1 there), is solved by
    :class:`~irsolve.solvers.SparseLU`; a grid that reaches the smallest size with
    ``k_max h_l < 2`` gets the dense LU there. 2-D: :class:`~irsolve.solvers.Multigrid`
    (``n -> n / 2``; 16^2 at 64^2, 64^2 at 256^2); 3-D:
    :class:`~irsolve.solvers.GeometricMultigrid` (``n -> (n - 1) / 2``; 5^3 at 23^3,
    15^3 at 63^3, 23^3 at 95^3): small beside the fine grid. Measured at 10 points
    per wavelength, FGMRES(SL) worst iterations (``benchmarks/bench_helmholtz.py``,
    ``benchmarks/bench_helmholtz3d.py``) with Jacobi on every level -> this cycle:
    82 / 186 / over 1,000 -> 68 / 84 / 255 at 64^2 / 128^2 / 256^2, and 131 / 174 / 395
    -> 85 / 105 / 83 at 31^3 / 47^3 / 63^3 (worst of 2 media), as many as with ``M``
    inverted exactly (80 / 89 / 287 in 2-D); the 3-D V-cycle factor on ``M`` went from
    1.0-19 to 0.50-0.56 (23^3 to 63^3).
    """
    n, kh = problem.n, float(problem.k_max.max()) * problem.h if len(problem.k_max) else 0.0
    while kh < SMOOTHING_KH and n > 3 and (problem.dim == 2 or n % 2):
        n, kh = (n // 2 if problem.dim == 2 else (n - 1) // 2), 2 * kh
    smoother = Jacobi(omega=0.8)
    if problem.dim == 2:
        if kh < SMOOTHING_KH:
            return Multigrid(cycle="V", pre=1, post=1, smoother=smoother)
        return Multigrid(cycle="V", pre=1, post=1, smoother=smoother, coarsest=n,
                         coarse=SparseLU())  # fmt: skip
    if kh < SMOOTHING_KH:
        return GeometricMultigrid(smoother, presmooth=1, postsmooth=1)
    return GeometricMultigrid(smoother, presmooth=1, postsmooth=1, coarsest=n, coarse=SparseLU())


def learned_preconditioner(
    net: nn.Module, repeats: int = 3, shifted: ShiftedLaplacian | None = None, coarsen: int = 0
) -> Cycle:
    """The learned Helmholtz preconditioner: the SL cycle, then a learned step, ``repeats`` times.

    ``Cycle(shifted, ResidualCorrector(net, "residual"), repeats=repeats)``: one
    step from ``z = 0`` on ``A z = r`` (what :class:`~irsolve.solvers.FlexibleGMRES`
    applies each iteration, with its defaults) is, ``repeats`` times,
    ``z <- z + B_M (r - A z)``, then ``z <- z + α d(r - A z)`` with the
    minimal-residual ``α = <A d, ρ> / ||A d||^2`` (``ρ = r - A z``), so the
    learned half can never increase the residual, whatever the net returns.
    The net reads ``[k^2 h^2 / KH2_UNIT, γ, Re(ρ / s), Im(ρ / s)]`` and returns
    ``(Re, Im)`` of the direction (:class:`~irsolve.solvers.ResidualCorrector`).
    It corrects the SL cycle, as in Azulay and Treister (SIAM J. Sci. Comput.
    45 (2023) S127-S151), who put a U-Net beside an SL multigrid cycle inside
    FGMRES; the net changes with the residual, which flexible GMRES allows.
    Measured at 64^2 (8 held-out media of ``benchmarks/bench_helmholtz.py``,
    ``repeats = 3``): worst FGMRES iterations 18 to 26 (by checkpoint), against 68
    for the SL cycle alone and 36 for the same three SL corrections without the net
    (``Cycle(ShiftedLaplacian(), repeats=3)``), which is faster in wall time there
    and in 3-D matches the learned cycle's iterations (the README's tables).
    ``coarsen`` runs the net that many grid levels down
    (:class:`~irsolve.solvers.ResidualCorrector`): in 3-D the net costs
    ``8^coarsen`` times less.
    """
    repeats = check_int("learned_preconditioner", "repeats", repeats, minimum=1)
    shifted = ShiftedLaplacian() if shifted is None else shifted
    if not isinstance(shifted, ShiftedLaplacian):
        raise TypeError(
            f"learned_preconditioner: expected shifted to be a ShiftedLaplacian instance, "
            f"got {shifted!r}"
        )
    corrector = ResidualCorrector(net, step_length="residual", coarsen=coarsen)
    return Cycle(shifted, corrector, repeats=repeats)
