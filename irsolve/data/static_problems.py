"""Input/solution pairs of the static elliptic benchmarks: Darcy flow and Poisson.

* Darcy (the FNO benchmark, Li et al., 2021, "Fourier Neural Operator for
  Parametric Partial Differential Equations", ICLR, Sec. 5.2):
  ``-div(a grad u) = 1`` on the unit square, ``u = 0`` on the boundary, with
  ``a = 12`` where a sample of ``N(0, (-Δ + 9)^-2)`` is positive and ``a = 3``
  elsewhere.
* Poisson: ``-Δu = f``, ``u = 0`` on the boundary, with a smooth random
  ``f ~ N(0, (-Δ + tau^2)^-alpha)``.

Both are discretised by :class:`irsolve.solvers.Darcy2D` /
:class:`irsolve.solvers.Poisson2D` on the ``n x n`` interior nodes
``x_i = (i + 1) / (n + 1)`` and solved by :func:`irsolve.solve` with
:class:`irsolve.solvers.Multigrid` V-cycles to a relative residual
``||f - A u|| / ||f|| <= rtol`` (1e-10 by default), in float64.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from irsolve.engine import solve
from irsolve.interface import Problem
from irsolve.solvers import (
    Darcy2D,
    Multigrid,
    Poisson2D,
    darcy_coefficient,
    gaussian_random_field,
)

__all__ = ["darcy_samples", "poisson_samples", "solve_to_tolerance"]

logger = logging.getLogger(__name__)


def solve_to_tolerance(problem: Problem, rtol: float = 1e-10, maxiter: int = 200) -> Tensor:
    """Solve ``A u = f`` by multigrid V-cycles until ``||f - A u|| <= rtol ||f||`` per sample.

    Starts from ``u = 0``, so the initial residual is ``f`` and
    :func:`irsolve.solve`'s ``rtol`` is the relative residual asked for.

    Raises
    ------
    RuntimeError
        If a sample has not reached ``rtol`` within ``maxiter`` cycles.
    """
    solution = solve(None, Multigrid(), problem, tol=0.0, rtol=rtol, maxiter=maxiter)
    if not solution.success:
        raise RuntimeError(
            f"expected multigrid to reach relative residual {rtol:g} within {maxiter} cycles, "
            f"got return codes {[str(code) for code in solution.retcodes]}"
        )
    logger.debug("multigrid: %s cycles", solution.iterations.tolist())
    return solution.u


def darcy_samples(
    n_samples: int,
    n: int,
    *,
    generator: torch.Generator | None = None,
    alpha: float = 2.0,
    tau: float = 3.0,
    high: float = 12.0,
    low: float = 3.0,
    forcing: float = 1.0,
    rtol: float = 1e-10,
) -> tuple[Tensor, Tensor]:
    """FNO Darcy pairs ``(a, u)``: ``-div(a grad u) = forcing``, ``u = 0`` on the boundary.

    Parameters
    ----------
    n_samples, n
        Number of pairs and interior nodes per side.
    generator
        ``torch.Generator`` for the coefficient fields.
    alpha, tau
        Covariance ``(-Δ + tau^2)^-alpha`` of the field thresholded at 0.
    high, low
        Coefficient where the field is positive / not positive.
    forcing
        Constant right-hand side.
    rtol
        Relative residual the solution is solved to.

    Returns
    -------
    tuple of Tensor
        ``a`` and ``u``, each ``(n_samples, 1, n, n)`` float64.
    """
    field = gaussian_random_field(n_samples, n, alpha=alpha, tau=tau, generator=generator)
    a = darcy_coefficient(field, high=high, low=low)
    return a, solve_to_tolerance(Darcy2D(a, forcing), rtol)


def poisson_samples(
    n_samples: int,
    n: int,
    *,
    generator: torch.Generator | None = None,
    alpha: float = 2.0,
    tau: float = 3.0,
    rtol: float = 1e-10,
) -> tuple[Tensor, Tensor]:
    """Poisson pairs ``(f, u)``: ``-Δu = f``, ``u = 0`` on the boundary.

    The right-hand side is a sample of ``N(0, (-Δ + tau^2)^-alpha)``
    (:func:`irsolve.solvers.gaussian_random_field`); parameters as in
    :func:`darcy_samples`.

    Returns
    -------
    tuple of Tensor
        ``f`` and ``u``, each ``(n_samples, 1, n, n)`` float64.
    """
    f = gaussian_random_field(n_samples, n, alpha=alpha, tau=tau, generator=generator)
    return f, solve_to_tolerance(Poisson2D(f, bc="dirichlet"), rtol)
