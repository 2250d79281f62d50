"""Helmholtz2D, its shifted Laplacian and the classical preconditioner, against SciPy.

References: the operator is assembled here independently with ``scipy.sparse``
(``-Δ`` as a Kronecker sum, ``k^2 (1 - i γ)`` on the diagonal); solutions come
from ``scipy.sparse.linalg.spsolve`` and iteration counts from SciPy's
``gmres`` with the same preconditioner.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch

from irsolve import solve
from irsolve.interface import FixedPointSolver, apply_from_zero
from irsolve.solvers import FlexibleGMRES, Helmholtz2D, Jacobi, Multigrid, ShiftedLaplacian
from irsolve.solvers.direct import SparseLU
from irsolve.solvers.helmholtz import (
    layered_speed,
    piecewise_speed,
    point_source,
    random_source,
    smooth_speed,
    sponge_profile,
)
from irsolve.solvers.helmholtz_preconditioner import SMOOTHING_KH, default_inner_solver

GENERATORS = (smooth_speed, piecewise_speed, layered_speed)


def _scipy_helmholtz(problem: Helmholtz2D, shift: complex | None = None) -> sp.csr_matrix:
    """Sample 0's matrix assembled from ``k^2`` and ``γ`` alone (``shift``: the SL's ``β``)."""
    n = problem.n
    t = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]) * (n + 1) ** 2
    lap = sp.kronsum(t, t)  # -Δ in the C-order numbering i * n + j
    k2 = problem.k2[0, 0].flatten().numpy()
    gamma = problem.gamma[0, 0].flatten().numpy()
    if shift is None:
        diag = k2 * (1 - 1j * gamma)
    else:
        diag = k2 * (shift.real - 1j * (-shift.imag + gamma))
    return (lap - sp.diags(diag)).tocsr()


def _problem(n: int = 31, batch: int = 2, seed: int = 0, kind=layered_speed) -> Helmholtz2D:
    g = torch.Generator().manual_seed(seed)
    return Helmholtz2D(kind(batch, n, generator=g), point_source(batch, n, generator=g))


@pytest.mark.parametrize("kind", GENERATORS)
def test_operator_matches_scipy_assembly_on_random_media(kind):
    g = torch.Generator().manual_seed(1)
    n = 24
    problem = Helmholtz2D(
        kind(2, n, generator=g), random_source(2, n, generator=g), attenuation=0.02
    )
    matrix = _scipy_helmholtz(problem)
    u = random_source(2, n, generator=g)
    # Both compute the same sums of a few products: agreement to rounding (1e-12 relative).
    scale = abs(matrix).max() * np.abs(u.numpy()).max()
    assert abs(problem.to_scipy()[0] - matrix).max() == 0
    assert np.abs(problem.apply(u)[0].flatten().numpy() - matrix @ u[0].flatten().numpy()).max() < (
        1e-12 * scale
    )
    expected = problem.f[0].flatten().numpy() - matrix @ u[0].flatten().numpy()
    assert np.abs(problem.residual(u)[0].flatten().numpy() - expected).max() < 1e-12 * scale


def test_shifted_laplacian_matches_scipy_assembly():
    problem = _problem(n=20)
    shifted = problem.shifted_laplacian(0.9 - 0.6j)
    assert abs(shifted.to_scipy()[0] - _scipy_helmholtz(problem, 0.9 - 0.6j)).max() < 1e-9


def test_wavenumber_from_points_per_wavelength():
    problem = _problem(n=63)
    # k_max h = 2 pi / ppw at the slowest speed (1): k_max = 2 pi 64 / 10.
    assert torch.allclose(problem.k_max, torch.full((2,), 2 * np.pi * 64 / 10, dtype=torch.float64))


def test_sponge_ramps_quadratically_to_strength_at_the_boundary():
    gamma = sponge_profile(99, width=0.1, strength=1.0)  # h = 0.01
    assert gamma[49, 49] == 0 and gamma[10, 49] == 0  # inside, and at d = 0.11
    assert float(gamma[0, 49]) == pytest.approx((1 - 0.01 / 0.1) ** 2)
    assert float(gamma[4, 49]) == pytest.approx((1 - 0.05 / 0.1) ** 2)


@pytest.mark.parametrize("kind", GENERATORS)
def test_generators_span_the_contrast(kind):
    speed = kind(3, 32, contrast=2.5, generator=torch.Generator().manual_seed(2))
    assert speed.shape == (3, 1, 32, 32)
    assert float(speed.min()) == pytest.approx(1.0) and float(speed.max()) == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"speed": torch.zeros(1, 1, 8, 8)}, r"expected wave speeds in \[1e-100, 1e\+100\]"),
        ({"speed": torch.full((1, 1, 8, 8), 1e-320, dtype=torch.float64)}, "wave speeds in"),
        ({"attenuation": 1e308}, "expected attenuation and sponge_strength small enough"),
        ({"attenuation": -0.1}, "attenuation"),
        ({"sponge_strength": -1.0}, "sponge_strength"),
        ({"ppw": 3.0}, "at least 4 points per wavelength"),
        ({"dtype": torch.complex64}, "complex128"),
        ({"f": torch.ones(1, 1, 8, 8, dtype=torch.complex64)}, "complex64"),
        ({"f": torch.ones(1, 1, 7, 7)}, "shape"),
    ],
)
def test_bad_inputs_get_one_clear_line(change, message):
    args = {"speed": torch.ones(1, 1, 8, 8), "f": torch.ones(1, 1, 8, 8)} | change
    with pytest.raises((TypeError, ValueError), match=message) as info:
        Helmholtz2D(**args)
    assert "\n" not in str(info.value)


def test_few_points_per_wavelength_warn():
    with pytest.warns(UserWarning, match="points per wavelength"):
        Helmholtz2D(torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8), ppw=5.0)


class _Exact(FixedPointSolver):
    """``A^{-1}`` by SciPy's sparse LU: the ideal preconditioner."""

    def prepare(self, x):
        return x, [spl.splu(m.tocsc()) for m in x.to_scipy()]

    def with_rhs(self, ctx, f):
        return ctx[0].with_rhs(f), ctx[1]

    def step(self, ctx, h, k):
        r = ctx[0].residual(h)
        e = [torch.from_numpy(lu.solve(r[b].flatten().numpy())) for b, lu in enumerate(ctx[1])]
        return h + torch.stack(e).reshape(h.shape)


def test_fgmres_with_the_exact_inverse_converges_in_one_iteration():
    problem = _problem()
    sol = solve(None, FlexibleGMRES(_Exact()), problem, tol=0.0, rtol=1e-10, maxiter=5)
    assert sol.iterations.tolist() == [1, 1]


def test_fgmres_with_sl_multigrid_matches_scipy_gmres_and_spsolve():
    problem = _problem(n=31, batch=1, kind=smooth_speed)
    preconditioner = ShiftedLaplacian()
    sol = solve(None, FlexibleGMRES(preconditioner, restart=100), problem, tol=0.0, rtol=1e-7)
    ctx = preconditioner.prepare(problem)
    n = problem.n

    def apply(v):
        r = torch.as_tensor(np.asarray(v, dtype=np.complex128).reshape(1, 1, n, n))
        return apply_from_zero(preconditioner, ctx, r).flatten().numpy()

    matrix, b = problem.to_scipy()[0], problem.f.flatten().numpy()
    operator = spl.LinearOperator(matrix.shape, matvec=apply, dtype=np.complex128)
    counts = []
    spl.gmres(matrix, b, M=operator, rtol=1e-7, restart=100, callback=counts.append,
              callback_type="pr_norm")  # fmt: skip
    assert abs(int(sol.iterations[0]) - len(counts)) <= 2
    exact = spl.spsolve(matrix.tocsc(), b)
    error = np.linalg.norm(sol.u.flatten().numpy() - exact) / np.linalg.norm(exact)
    # Residual 1e-7 and cond(A) ~ 1e2-1e3 on this grid: the error is below 1e-4.
    assert error < 1e-4


def test_sl_multigrid_cycle_contracts_on_the_shifted_laplacian():
    problem = _problem(n=63, batch=1)
    shifted = problem.shifted_laplacian()
    mg = Multigrid(cycle="V", pre=1, post=1, smoother=default_inner_solver(problem).smoother)
    ctx = mg.prepare(shifted)
    u = torch.zeros_like(shifted.f)
    norms = [float(shifted.residual(u).norm())]
    for k in range(6):
        u = mg.step(ctx, u, k)
        norms.append(float(shifted.residual(u).norm()))
    assert norms[-1] / norms[0] < 0.7**6


def test_plain_multigrid_on_helmholtz_fails():
    """Standard multigrid on the indefinite operator itself does not converge."""
    problem = _problem(n=63, batch=1)
    sol = solve(None, Multigrid(smoother=default_inner_solver(problem).smoother), problem, tol=0.0,
                rtol=1e-7, maxiter=20)  # fmt: skip
    assert not sol.success
    assert sol.retcodes[0].name in ("DIVERGED", "STALLED", "MAXITERS")
    assert float(sol.final_residuals[0]) > 1e-3 * float(sol.residuals[0, 0])


def test_complex_multigrid_refuses_the_k_cycle():
    with pytest.raises(ValueError, match="K-cycle"):
        Multigrid(cycle="K").prepare(_problem().shifted_laplacian())


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: layered_speed(1, 100000), ValueError, "^layered_speed: a batch of 1 on a 100000"),
        (lambda: point_source(2, 100000), ValueError, "^point_source: a batch of 2 on a 100000"),
        (lambda: random_source(1, 60000), ValueError, "^random_source: a batch of 1 on a 60000"),
        (lambda: smooth_speed(1, 100000), ValueError, "^smooth_speed: a batch of 1 on a 100000"),
        (lambda: piecewise_speed(1, 10**5), ValueError, "^piecewise_speed: a batch of 1 on a"),
        (
            # expanded views: the check reads shapes, so the test allocates nothing large
            lambda: Helmholtz2D(*[torch.ones(1, 1, 1, 1).expand(1, 1, 20000, 20000)] * 2),
            ValueError,
            "^Helmholtz2D: a batch of 1 on a 20000 x 20000 grid .* more than this machine",
        ),
        (lambda: layered_speed(2, -3), ValueError, "^layered_speed: expected n to be an int >= 2"),
        (lambda: layered_speed(2, 8.5), ValueError, "^layered_speed: expected n to be an int"),
        (lambda: point_source(1, 0), ValueError, "^point_source: expected n to be an int >= 2"),
        (lambda: point_source(1, 8, where=(2, 2)), ValueError, r"open unit square .*got \(2, 2\)"),
        (lambda: point_source(1, 8, where=(-1, 0.5)), ValueError, "open unit square"),
        (lambda: point_source(1, 8, where=(1.0, 0.5)), ValueError, "open unit square"),
        (lambda: point_source(1, 8, where=(math.nan, math.nan)), ValueError, "open unit square"),
        (lambda: point_source(1, 8, where=(0.5,)), ValueError, "a point .x, y. of two numbers"),
    ],
    ids=lambda v: "" if callable(v) else None,
)
def test_generators_refuse_bad_grids_and_points_in_one_line(make, error, match):
    """Sizes past the machine's memory are refused before allocating; bad points name where."""
    with pytest.raises(error, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_point_source_inside_the_square_lands_on_the_nearest_interior_node():
    f = point_source(1, 9, where=(0.3, 0.71))  # h = 0.1: nodes at 0.1, ..., 0.9
    ((i, j),) = torch.nonzero(f[0, 0]).tolist()
    assert (i, j) == (2, 6) and float(f[0, 0, i, j]) == pytest.approx(100.0)


def test_an_empty_batch_gives_an_empty_solution():
    """Batch 0 builds and solves (an empty Solution), as for Darcy and Poisson."""
    speed = torch.ones(0, 1, 8, 8, dtype=torch.float64)
    problem = Helmholtz2D(speed, torch.zeros(0, 1, 8, 8, dtype=torch.float64))
    sol = solve(None, FlexibleGMRES(ShiftedLaplacian()), problem, tol=0.0, rtol=1e-7)
    assert sol.u.shape == (0, 1, 8, 8) and sol.retcodes == []
    assert layered_speed(0, 8).shape == (0, 1, 8, 8) and point_source(0, 8).shape == (0, 1, 8, 8)


def test_a_sparse_lu_coarse_solve_of_a_complex_problem_is_the_dense_lu_one():
    """``Multigrid(coarse=SparseLU())`` on the complex M: the same V-cycle as the built-in
    dense LU on the coarsest grid (both exact there), to rounding."""
    g = torch.Generator().manual_seed(3)
    shifted = Helmholtz2D(
        layered_speed(2, 16, generator=g), point_source(2, 16)
    ).shifted_laplacian()
    r = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.complex128)
    cycles = [Multigrid(pre=1, post=1, smoother=Jacobi(omega=0.8), coarsest=4, coarse=coarse)
              for coarse in ("direct", SparseLU())]  # fmt: skip
    direct, sparse = (apply_from_zero(mg, mg.prepare(shifted), r) for mg in cycles)
    assert torch.allclose(sparse, direct, rtol=1e-10, atol=1e-12 * float(direct.abs().max()))
    assert float((direct - r).abs().max()) > 0.1 * float(r.abs().max())  # the cycle did act


@pytest.mark.parametrize(("n", "coarsest"), [(16, 4), (64, 16), (128, 32), (256, 64)])
def test_the_2d_inner_cycle_stops_coarsening_where_jacobi_stops_smoothing(n, coarsest):
    """k_max h = 2 π (n + 1) / 10 / (n + 1) = 0.63 on the finest grid, doubling per level
    (n -> n / 2): the first level with k_max h_l >= 2 is two levels down, solved by
    SparseLU (the 3-D rule, tested in test_helmholtz3d.py)."""
    problem = Helmholtz2D(layered_speed(1, n), point_source(1, n))
    inner = default_inner_solver(problem)
    assert isinstance(inner, Multigrid) and isinstance(inner.smoother, Jacobi)
    assert inner.coarsest == coarsest and isinstance(inner.coarse, SparseLU)
    kh = float(problem.k_max.max()) * problem.h
    assert kh * 2 < SMOOTHING_KH <= kh * 4
    # Low wavenumber (ppw 80 at 16^2: k h_l = 0.08 / 0.16 / 0.31 / 0.63 down to 2^2):
    # Jacobi smooths to the bottom, which gets the dense LU.
    quiet = Helmholtz2D(torch.ones(1, 1, 16, 16, dtype=torch.float64), point_source(1, 16), ppw=80)
    assert default_inner_solver(quiet).coarse == "direct"
