"""Weighted Jacobi against the analytic Poisson eigenvalues and the matrix formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from irsolve import ReturnCode, solve
from irsolve.solvers import Darcy2D, Jacobi, Poisson2D

DT = torch.float64


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


@pytest.mark.parametrize("omega", [0.5, 0.8, 1.0])
def test_asymptotic_factor_matches_analytic_poisson_value(omega):
    n = 15
    problem = Poisson2D(torch.zeros(1, 1, n, n, dtype=DT))
    solver = Jacobi(omega=omega)
    u = _rand(1, 1, n, n)
    for k in range(400):  # the error itself (f = 0), renormalised
        u = solver.step(problem, u, k)
        previous = u.norm()
        u = u / previous
    factor = solver.step(problem, u, 0).norm().item()
    # Briggs et al., A Multigrid Tutorial, Sec. 2.2: slowest mode sin(pi x) sin(pi y).
    analytic = 1 - omega * (1 - math.cos(math.pi / (n + 1)))
    assert factor == pytest.approx(analytic, rel=1e-2)


def test_step_equals_matrix_formula_and_sweeps_compose():
    n = 6
    problem = Darcy2D(torch.rand(2, 1, n, n, dtype=DT) + 0.5, f=_rand(2, 1, n, n))
    u = _rand(2, 1, n, n, seed=1)
    out = Jacobi(omega=0.7).step(problem, u, 0)
    for b, matrix in enumerate(problem.to_scipy()):
        uu, ff = u[b, 0].numpy().ravel(), problem.f[b, 0].numpy().ravel()
        expected = uu + 0.7 * (ff - matrix @ uu) / matrix.diagonal()
        assert np.allclose(out[b, 0].numpy().ravel(), expected, rtol=1e-13, atol=1e-13)
    twice = Jacobi(omega=0.7).step(problem, out, 1)
    assert torch.allclose(Jacobi(omega=0.7, sweeps=2).step(problem, u, 0), twice, rtol=1e-14)


def test_solve_converges_to_sparse_direct_solution():
    n = 7
    problem = Poisson2D(_rand(2, 1, n, n))
    result = solve(None, Jacobi(omega=1.0, sweeps=4), problem, tol=1e-10, maxiter=500)
    assert result.retcode == ReturnCode.SUCCESS
    for b, matrix in enumerate(problem.to_scipy()):
        exact = spla.spsolve(sp.csc_matrix(matrix), problem.f[b, 0].numpy().ravel())
        assert np.abs(result.u[b, 0].numpy().ravel() - exact).max() < 1e-8 * np.abs(exact).max()


@pytest.mark.parametrize("omega", [0.0, 2.0, -0.5, 3.0])
def test_omega_outside_open_interval_raises(omega):
    with pytest.raises(ValueError, match=r"omega in \(0, 2\)"):
        Jacobi(omega=omega)


def test_non_problem_context_raises_type_error():
    with pytest.raises(TypeError, match="Poisson2D, Darcy2D"):
        Jacobi().prepare(torch.zeros(1, 1, 4, 4))
