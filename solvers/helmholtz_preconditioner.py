"""The shifted-Laplacian preconditioner for Helmholtz, as a fixed-point solver.

For ``A u = f`` (:class:`~irsolve.solvers.Helmholtz2D`) one step of
:class:`ShiftedLaplacian` is preconditioned Richardson

``h <- h + B_M (f - A h)``,

with ``B_M`` an approximate inverse of the shifted Laplacian
``M = -Δ - k^2 (β_1 - i (β_2 + γ))``: ``steps`` steps of an inner solver
(by default one V(1,1) cycle of :class:`~irsolve.solvers.Multigrid` with
damped Jacobi, ``ω = 0.8``) on ``M e = r`` from ``e = 0``. From ``h = 0`` one
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

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from irsolve._validate import check_int
from irsolve.interface import FixedPointSolver
from irsolve.solvers.helmholtz import Helmholtz2D
from irsolve.solvers.jacobi import Jacobi
from irsolve.solvers.multigrid import Multigrid

__all__ = ["ShiftedLaplacian", "ShiftedLaplacianContext"]


@dataclass
class ShiftedLaplacianContext:
    """Per-solve state: the Helmholtz problem and the inner solver's context on ``M``."""

    problem: Helmholtz2D
    inner: Any


class ShiftedLaplacian(FixedPointSolver):
    """``h <- h + B_M (f - A h)`` with ``B_M`` a few steps of ``solver`` on the shifted Laplacian.

    Parameters
    ----------
    solver
        Inner solver for ``M e = r`` (a :class:`~irsolve.FixedPointSolver`
        whose context accepts a new right-hand side); default
        ``Multigrid(cycle="V", pre=1, post=1, smoother=Jacobi(omega=0.8))``.
    beta
        ``β_1 - i β_2`` (default ``1 - 0.5 i``), see
        :meth:`~irsolve.solvers.Helmholtz2D.shifted_laplacian`.
    steps
        Inner steps per application (>= 1).
    """

    def __init__(
        self, solver: FixedPointSolver | None = None, beta: complex = 1 - 0.5j, steps: int = 1
    ) -> None:
        if solver is None:
            solver = Multigrid(cycle="V", pre=1, post=1, smoother=Jacobi(omega=0.8))
        if not isinstance(solver, FixedPointSolver):
            raise TypeError(
                f"ShiftedLaplacian: expected solver to be a FixedPointSolver, "
                f"got {type(solver).__name__}"
            )
        if not isinstance(beta, (int, float, complex)) or complex(beta).imag > 0:
            raise ValueError(
                f"ShiftedLaplacian: expected beta = b1 - i b2 with b2 >= 0, got {beta!r}"
            )
        self.solver = solver
        self.beta = complex(beta)
        self.steps = check_int("ShiftedLaplacian", "steps", steps, minimum=1)

    def prepare(self, x: Helmholtz2D) -> ShiftedLaplacianContext:
        """Build ``M`` and the inner solver's context on it (a multigrid hierarchy)."""
        if not isinstance(x, Helmholtz2D):
            raise TypeError(f"ShiftedLaplacian expected a Helmholtz2D, got {type(x).__name__}")
        return ShiftedLaplacianContext(x, self.solver.prepare(x.shifted_laplacian(self.beta)))

    def correction(self, ctx: ShiftedLaplacianContext, r: Tensor) -> Tensor:
        """``B_M r``: ``steps`` inner steps on ``M e = r`` from ``e = 0``."""
        inner = self.solver.with_rhs(ctx.inner, r)
        e = torch.zeros_like(r)
        for s in range(self.steps):
            e = self.solver.step(inner, e, s)
        return e

    def step(self, ctx: ShiftedLaplacianContext, h: Tensor, k: int) -> Tensor:
        return h + self.correction(ctx, ctx.problem.residual(h))

    def residual(self, ctx: ShiftedLaplacianContext, h: Tensor) -> Tensor:
        return ctx.problem.residual(h)

    def with_rhs(self, ctx: ShiftedLaplacianContext, f: Tensor) -> ShiftedLaplacianContext:
        """The same ``M`` and hierarchy for ``A z = f`` (only the Helmholtz right-hand side changes;
        the inner right-hand side is set per step)."""
        return ShiftedLaplacianContext(ctx.problem.with_rhs(f), ctx.inner)

    def __repr__(self) -> str:
        return f"ShiftedLaplacian({self.solver!r}, beta={self.beta!r}, steps={self.steps})"
