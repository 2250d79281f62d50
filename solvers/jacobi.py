"""Weighted (damped) Jacobi relaxation for stencil problems.

``u <- u + omega D^-1 (f - A u)`` with ``D = diag(A)``. On the 5-point
Dirichlet Poisson problem the error mode ``sin(p pi x) sin(q pi y)`` is
multiplied by ``1 - omega (1 - (cos(p pi h) + cos(q pi h)) / 2)``, so the
asymptotic factor is ``1 - omega (1 - cos(pi h))`` (Briggs, Henson and
McCormick, *A Multigrid Tutorial*, 2nd ed., SIAM 2000, Sec. 2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from irsolve._validate import check_int
from irsolve.interface import FixedPointSolver
from irsolve.solvers._stencil import apply_stencil, centre_index
from irsolve.solvers.problems import StencilProblem, check_omega, require_stencil_problem

__all__ = ["Jacobi", "JacobiData", "jacobi_sweeps"]


@dataclass
class JacobiData:
    """Operator data of a Jacobi smoother: stencil ``(B, K, n, n)`` and ``1 / diag(A)``."""

    stencil: Tensor
    inv_diag: Tensor
    periodic: bool


def jacobi_sweeps(
    stencil: Tensor,
    inv_diag: Tensor,
    u: Tensor,
    f: Tensor,
    periodic: bool,
    omega: float,
    sweeps: int,
) -> Tensor:
    """``sweeps`` weighted Jacobi sweeps ``u <- u + omega D^-1 (f - A u)``; returns a new tensor."""
    for _ in range(sweeps):
        u = u + omega * inv_diag * (f - apply_stencil(stencil, u, periodic))
    return u


class Jacobi(FixedPointSolver):
    """Weighted Jacobi as a fixed-point solver: one step is ``sweeps`` sweeps.

    Parameters
    ----------
    omega
        Relaxation weight in (0, 2); ``omega <= 1`` is needed for convergence
        on diagonally dominant operators such as :class:`Poisson2D`, and
        ``omega = 4/5`` is the best smoother for the 5-point Laplacian.
    sweeps
        Sweeps per step (>= 1).

    The context is the problem itself (``prepare`` checks it), so ``step`` also
    accepts a :class:`~irsolve.solvers.Poisson2D` or
    :class:`~irsolve.solvers.Darcy2D` directly; ``residual`` is ``f - A h``.
    """

    def __init__(self, omega: float = 0.8, sweeps: int = 1) -> None:
        self.omega = check_omega(omega, "Jacobi")
        self.sweeps = check_int("Jacobi", "sweeps", sweeps, minimum=1)

    def prepare(self, x: StencilProblem) -> StencilProblem:
        return require_stencil_problem(x, "Jacobi", dims=(2, 3))

    def step(self, ctx: StencilProblem, h: Tensor, k: int) -> Tensor:
        problem = require_stencil_problem(ctx, "Jacobi", dims=(2, 3))
        return self.smooth(self.setup(problem.stencil, problem.periodic), h, problem.f, self.sweeps)

    def setup(self, stencil: Tensor, periodic: bool) -> JacobiData:
        """Per-operator data for :meth:`smooth` (used once per multigrid level)."""
        c = centre_index(stencil)
        return JacobiData(stencil, 1.0 / stencil[:, c : c + 1], periodic)

    def smooth(self, data: JacobiData, u: Tensor, f: Tensor, sweeps: int) -> Tensor:
        """``sweeps`` sweeps from ``u`` with the data of :meth:`setup`; returns a new tensor."""
        return jacobi_sweeps(data.stencil, data.inv_diag, u, f, data.periodic, self.omega, sweeps)

    def __repr__(self) -> str:
        return f"Jacobi(omega={self.omega}, sweeps={self.sweeps})"
