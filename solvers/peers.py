"""Peer solvers from other libraries, run on our problems for side-by-side figures.

:func:`pyamg_cg` solves each sample of a :class:`~irsolve.solvers.StencilProblem`
with PyAMG's smoothed aggregation as a conjugate-gradient preconditioner, the
usual reference for algebraic multigrid (PyAMG is an optional dependency, in
the ``test`` and ``bench`` extras).

References
----------
N. Bell, L. N. Olson, J. Schroder, "PyAMG: Algebraic Multigrid Solvers in
Python", J. Open Source Softw. 7 (2022) 4142.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from irsolve.solvers.problems import StencilProblem

__all__ = ["PeerResult", "pyamg_cg"]


@dataclass(frozen=True)
class PeerResult:
    """Per-sample figures of a peer solve: iterations, ``||f - A u|| / ||f||``, the solutions."""

    iterations: list[int]
    relative_residuals: list[float]
    solutions: list[np.ndarray]
    wall_s: float

    def errors(self, exact: list[np.ndarray]) -> list[float]:
        """Relative errors ``||u - u_exact|| / ||u_exact||`` against reference solutions."""
        return [
            float(np.linalg.norm(u - x) / np.linalg.norm(x))
            for u, x in zip(self.solutions, exact, strict=True)
        ]


def pyamg_cg(problem: StencilProblem, tol: float, maxiter: int = 200) -> PeerResult:
    """PyAMG smoothed aggregation + CG on each sample, from zero to relative residual ``tol``.

    The wall time includes PyAMG's set-up (the hierarchy is built per sample).
    """
    import pyamg  # optional: only the comparison needs it

    tic = time.perf_counter()
    iterations, residuals, solutions = [], [], []
    for b, matrix in enumerate(problem.to_scipy()):
        rhs = problem.f[b].flatten().numpy()
        history: list[float] = []
        hierarchy = pyamg.smoothed_aggregation_solver(matrix.tocsr())
        u = hierarchy.solve(rhs, tol=tol, accel="cg", residuals=history, maxiter=maxiter)
        iterations.append(len(history) - 1)
        residuals.append(float(history[-1] / np.linalg.norm(rhs)))
        solutions.append(u)
    return PeerResult(iterations, residuals, solutions, time.perf_counter() - tic)
