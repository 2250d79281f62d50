"""Multicolour Gauss–Seidel / SOR against triangular solves and the SOR eigenvalue theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from irsolve import ReturnCode, solve
from irsolve.solvers import Darcy2D, GaussSeidel, Poisson2D
from irsolve.solvers._interpolation import galerkin, interpolation
from irsolve.solvers._stencil import stencil_to_scipy
from irsolve.solvers.gauss_seidel import (
    COLOURS,
    colour_split,
    coloured_sweeps,
    multicolour_sweeps,
)

DT = torch.float64


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def _nine_point(n: int) -> torch.Tensor:
    """A random diagonally dominant 9-point stencil with zero couplings out of the grid."""
    stencil = -torch.rand(1, 9, n, n, dtype=DT, generator=torch.Generator().manual_seed(5))
    stencil[:, [0, 1, 2], 0, :] = 0
    stencil[:, [6, 7, 8], -1, :] = 0
    stencil[:, [0, 3, 6], :, 0] = 0
    stencil[:, [2, 5, 8], :, -1] = 0
    stencil[:, 4] = 9.0
    return stencil


@pytest.mark.parametrize("case", ["poisson", "darcy", "nine-point", "periodic"])
@pytest.mark.parametrize("omega", [1.0, 1.4])
@pytest.mark.parametrize("layout", ["strided", "colour-split"])
def test_sweep_equals_sor_triangular_solve_in_colour_order(case, omega, layout):
    n = 8 if case == "periodic" else 7
    periodic = case == "periodic"
    if case == "poisson":
        stencil = Poisson2D(torch.zeros(1, 1, n, n)).stencil
    elif case == "darcy":
        stencil = Darcy2D(torch.rand(1, 1, n, n, dtype=DT) + 0.2).stencil
    elif periodic:
        stencil = Poisson2D(torch.zeros(1, 1, n, n), bc="periodic").stencil
    else:
        stencil = _nine_point(n)
    centre = stencil.shape[1] // 2
    u, f = _rand(1, 1, n, n), _rand(1, 1, n, n, seed=1)
    if layout == "strided":
        inv_diag = 1 / stencil[:, centre : centre + 1]
        out = multicolour_sweeps(stencil, inv_diag, u, f, periodic, omega, 1)
    else:
        out = coloured_sweeps(colour_split(stencil, periodic), u, f, omega, 1)
    # Reference: SOR u + (D / omega + L)^-1 (f - A u) with the unknowns numbered colour by colour.
    index = np.arange(n * n).reshape(n, n)
    order = np.concatenate([index[ci::2, cj::2].ravel() for ci, cj in COLOURS])
    matrix = stencil_to_scipy(stencil, periodic)[0][order][:, order]
    uu, ff = u.numpy().ravel()[order], f.numpy().ravel()[order]
    lower = sp.diags(matrix.diagonal() / omega) + sp.tril(matrix, -1)
    expected = uu + spla.spsolve_triangular(lower.tocsr(), ff - matrix @ uu)
    assert np.abs(out.numpy().ravel()[order] - expected).max() < 1e-13


def _asymptotic_factor(solver: GaussSeidel, n: int, steps: int) -> float:
    problem = Poisson2D(torch.zeros(1, 1, n, n, dtype=DT))
    u = _rand(1, 1, n, n)
    for k in range(steps):
        u = solver.step(problem, u, k)
        u = u / u.norm()
    return solver.step(problem, u, 0).norm().item()


def test_redblack_gauss_seidel_factor_is_square_of_jacobi_factor():
    n = 15
    # Red-black is a consistent ordering (Young): rho_GS = rho_J^2 = cos^2(pi h).
    analytic = math.cos(math.pi / (n + 1)) ** 2
    assert _asymptotic_factor(GaussSeidel(), n, 300) == pytest.approx(analytic, rel=1e-3)


def test_sor_factor_follows_young_formula():
    n, omega = 15, 1.3
    mu = math.cos(math.pi / (n + 1))
    # Young's relation (lambda + omega - 1)^2 = lambda omega^2 mu^2, below omega_opt.
    root = (omega * mu + math.sqrt(omega**2 * mu**2 - 4 * (omega - 1))) / 2
    assert omega < 2 / (1 + math.sqrt(1 - mu**2))
    assert _asymptotic_factor(GaussSeidel(omega=omega), n, 300) == pytest.approx(root**2, rel=1e-3)


@pytest.mark.parametrize("omega", [0.0, 2.0, 2.5, -1.0])
def test_omega_outside_open_interval_raises(omega):
    with pytest.raises(ValueError, match=r"omega in \(0, 2\)"):
        GaussSeidel(omega=omega)


def test_prepared_context_and_raw_problem_give_the_same_step():
    problem = Darcy2D(torch.rand(2, 1, 9, 9, dtype=DT) + 0.5, f=_rand(2, 1, 9, 9))
    solver = GaussSeidel(omega=1.2, sweeps=2)
    u = _rand(2, 1, 9, 9, seed=2)
    assert torch.equal(solver.step(solver.prepare(problem), u, 0), solver.step(problem, u, 0))


def test_solve_converges_to_sparse_direct_solution_per_sample():
    # Different coefficients converge after different step counts, so the engine restricts
    # the prepared context to the samples still running.
    a = torch.cat([torch.ones(1, 1, 7, 7), 1 + 50 * torch.rand(1, 1, 7, 7)]).to(DT)
    problem = Darcy2D(a, f=_rand(2, 1, 7, 7))
    result = solve(None, GaussSeidel(), problem, tol=0.0, rtol=1e-11, maxiter=2000)
    assert result.retcode == ReturnCode.SUCCESS
    assert result.iterations[0] != result.iterations[1]
    for b, matrix in enumerate(problem.to_scipy()):
        exact = spla.spsolve(matrix.tocsc(), problem.f[b, 0].numpy().ravel())
        assert np.abs(result.u[b, 0].numpy().ravel() - exact).max() < 1e-8 * np.abs(exact).max()


def test_step_on_periodic_grid_of_odd_size_uses_the_strided_sweep():
    problem = Poisson2D(_rand(1, 1, 7, 7), bc="periodic")
    u = _rand(1, 1, 7, 7, seed=3)
    inv_diag = 1 / problem.diagonal()
    expected = multicolour_sweeps(problem.stencil, inv_diag, u, problem.f, True, 1.0, 2)
    expected = expected - expected.mean()  # periodic steps return the mean-zero iterate
    assert torch.allclose(GaussSeidel(sweeps=2).step(problem, u, 0), expected, rtol=0, atol=1e-15)


def test_unknown_ordering_raises():
    with pytest.raises(ValueError, match="redblack"):
        GaussSeidel(ordering="lexicographic")


@pytest.mark.parametrize("n", [2, 4, 7])
def test_periodic_solve_returns_the_mean_zero_pseudo_inverse_solution(n):
    # A is singular on the periodic grid; the documented solution is the minimum-norm
    # (mean-zero) one, pinv(A) f. Residual 1e-12 relative: the error is below cond * 1e-12,
    # cond(A restricted to mean-zero) <= n^2 here, so 1e-9 relative is a safe bound.
    problem = Poisson2D(_rand(2, 1, n, n), bc="periodic")
    result = solve(None, GaussSeidel(), problem, tol=0.0, rtol=1e-12, maxiter=5000)
    assert result.retcode == ReturnCode.SUCCESS
    for b, matrix in enumerate(problem.to_scipy()):
        exact = np.linalg.pinv(matrix.toarray()) @ problem.f[b, 0].numpy().ravel()
        assert np.abs(result.u[b, 0].numpy().ravel() - exact).max() < 1e-9 * np.abs(exact).max()


def test_periodic_step_is_plain_sweep_shifted_to_mean_zero():
    # A 1 = 0, so the sweep maps u + c to G(u) + c: projecting each step changes only the mean.
    problem = Poisson2D(_rand(1, 1, 8, 8), bc="periodic")
    u = _rand(1, 1, 8, 8, seed=4)
    solver = GaussSeidel(sweeps=3)
    plain = solver.smooth(solver.prepare(problem).data, u + 5.0, problem.f, 3)
    stepped = solver.step(problem, u, 0)
    assert abs(stepped.mean().item()) < 1e-15
    assert torch.allclose(stepped, plain - plain.mean(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("ordering", ["redblack", "zebra"])
@pytest.mark.parametrize("case", ["darcy", "galerkin"])
def test_reversed_sweep_is_the_adjoint_so_forward_then_reversed_is_symmetric(case, ordering):
    # Symmetric SOR in colour (or line) order: the map r -> (forward then reversed sweep
    # from zero on A e = r) is M^-1 of symmetric SOR, a symmetric matrix when A is.
    # The Galerkin coarse operator P^T A P is a symmetric 9-point stencil.
    stencil = Darcy2D(torch.rand(1, 1, 9, 9, dtype=DT) + 0.2).stencil
    if case == "galerkin":
        stencil = galerkin(stencil, interpolation(stencil, False))
    n = stencil.shape[-1]
    units = torch.eye(n * n, dtype=DT).reshape(n * n, 1, n, n)
    smoother = GaussSeidel(ordering=ordering)
    data = smoother.setup(stencil.expand(n * n, -1, -1, -1), False)
    forward = smoother.smooth(data, torch.zeros_like(units), units, 1)
    both = smoother.smooth(data, forward, units, 1, reverse=True)
    m = both.reshape(n * n, n * n).numpy()
    assert np.abs(m - m.T).max() < 1e-13 * np.abs(m).max()
    # Without the reversal the two-sweep map is not symmetric.
    twice = smoother.smooth(data, forward, units, 1).reshape(n * n, n * n).numpy()
    assert np.abs(twice - twice.T).max() > 1e-3 * np.abs(twice).max()


def _block_sor(matrix: sp.csr_matrix, parity: np.ndarray, omega: float, u, f) -> np.ndarray:
    """One block-SOR step with blocks of equal ``parity``, even before odd.

    ``(T / omega + L) (u_new - u) = f - A u``: ``T`` the couplings inside a block (only
    within one line for 5- and 9-point stencils), ``L`` those to blocks visited earlier.
    """
    a = matrix.toarray()
    same = parity[:, None] == parity[None, :]
    earlier = parity[None, :] < parity[:, None]
    m = np.where(same, a / omega, 0.0) + np.where(earlier, a, 0.0)
    return u + np.linalg.solve(m, f - a @ u)


@pytest.mark.parametrize("case", ["darcy", "nine-point"])
@pytest.mark.parametrize("omega", [1.0, 1.3])
def test_zebra_sweep_equals_block_sor_by_rows_then_by_columns(case, omega):
    n = 7
    if case == "darcy":
        stencil = Darcy2D(torch.rand(1, 1, n, n, dtype=DT) + 0.2).stencil
    else:
        stencil = _nine_point(n)
    u, f = _rand(1, 1, n, n), _rand(1, 1, n, n, seed=1)
    smoother = GaussSeidel(omega=omega, ordering="zebra")
    out = smoother.smooth(smoother.setup(stencil, False), u, f, 1).numpy().ravel()
    matrix = stencil_to_scipy(stencil, False)[0]
    i, j = np.divmod(np.arange(n * n), n)
    expected = _block_sor(matrix, i % 2, omega, u.numpy().ravel(), f.numpy().ravel())
    expected = _block_sor(matrix, j % 2, omega, expected, f.numpy().ravel())
    assert np.abs(out - expected).max() < 1e-12 * np.abs(expected).max()


def test_zebra_solve_converges_to_sparse_direct_solution():
    # Line relaxation solves a strongly anisotropic chain exactly: coefficient 1000 on
    # every other row makes those rows near-1-D problems that point relaxation crawls on.
    a = torch.ones(2, 1, 9, 9, dtype=DT)
    a[:, :, ::2] = 1000.0
    problem = Darcy2D(a, f=_rand(2, 1, 9, 9))
    result = solve(None, GaussSeidel(ordering="zebra"), problem, tol=0.0, rtol=1e-11, maxiter=400)
    assert result.retcode == ReturnCode.SUCCESS
    # Measured: 8 zebra sweeps against 232-240 red-black sweeps.
    point = solve(None, GaussSeidel(), problem, tol=0.0, rtol=1e-11, maxiter=400)
    assert point.iterations.min() > 10 * result.iterations.max()
    for b, matrix in enumerate(problem.to_scipy()):
        exact = spla.spsolve(matrix.tocsc(), problem.f[b, 0].numpy().ravel())
        assert np.abs(result.u[b, 0].numpy().ravel() - exact).max() < 1e-8 * np.abs(exact).max()


def test_zebra_on_a_periodic_grid_raises():
    with pytest.raises(ValueError, match="Dirichlet grid for zebra"):
        GaussSeidel(ordering="zebra").prepare(Poisson2D(torch.zeros(1, 1, 8, 8), bc="periodic"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"clusters": 0.0},
            r"^GaussSeidel: expected clusters to be a finite real > 0 and <= 1, got 0.0",
        ),
        ({"clusters": 1.5}, r"clusters .*<= 1, got 1.5"),
        ({"clusters": 0.25, "cluster_size": 1}, "cluster_size to be an int >= 2, got 1"),
        ({"cluster_size": 2.5}, "cluster_size to be an int >= 2, got 2.5"),
    ],
)
def test_bad_cluster_arguments_raise_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussSeidel(**kwargs)


def test_cluster_step_on_a_periodic_grid_keeps_the_mean_zero_solution():
    # Block relaxation works on any grid; on periodic Poisson every coupling is strong and
    # the one component exceeds cluster_size, so the sweep alone acts (no blocks).
    problem = Poisson2D(_rand(1, 1, 8, 8), bc="periodic")
    solver = GaussSeidel(clusters=0.25)
    assert solver.prepare(problem).data.blocks.index == []
    u = _rand(1, 1, 8, 8, seed=2)
    assert torch.allclose(solver.step(problem, u, 0), GaussSeidel().step(problem, u, 0))
