"""Poisson2D / Darcy2D operators against pyamg's gallery, scipy and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pyamg
import pytest
import scipy.sparse.linalg as spla
import torch

from irsolve.solvers import Darcy2D, Poisson2D, StencilProblem

DT = torch.float64


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


@pytest.mark.parametrize("n", [5, 8])
def test_poisson_matrix_equals_pyamg_gallery_over_h2(n):
    problem = Poisson2D(_rand(1, 1, n, n))
    reference = pyamg.gallery.poisson((n, n), format="csr") * (n + 1) ** 2
    assert abs(problem.to_scipy()[0] - reference).max() <= 1e-12 * (n + 1) ** 2


@pytest.mark.parametrize(
    "make",
    [
        lambda n: Poisson2D(_rand(2, 1, n, n)),
        lambda n: Poisson2D(_rand(2, 1, n, n), bc="periodic"),
        lambda n: Darcy2D(torch.rand(2, 1, n, n, dtype=DT) + 0.1, f=_rand(2, 1, n, n)),
    ],
    ids=["poisson", "periodic", "darcy"],
)
def test_apply_equals_scipy_matrix_times_vector(make):
    n = 6
    problem = make(n)
    u = _rand(2, 1, n, n, seed=1)
    au = problem.apply(u)
    for b, matrix in enumerate(problem.to_scipy()):
        expected = matrix @ u[b, 0].numpy().ravel()
        scale = np.abs(expected).max()
        assert np.abs(au[b, 0].numpy().ravel() - expected).max() <= 1e-12 * scale
    assert torch.equal(problem.residual(u), problem.f - au)


def test_darcy_entries_are_harmonic_face_means_with_boundary_faces():
    n = 4
    a = torch.rand(1, 1, n, n, dtype=DT, generator=torch.Generator().manual_seed(3)) + 0.5
    matrix = Darcy2D(a).to_scipy()[0].toarray()
    h2 = (1.0 / (n + 1)) ** 2
    av = a[0, 0].numpy()
    for i in range(n):
        for j in range(n):
            diag = 0.0
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ii, jj = i + di, j + dj
                if 0 <= ii < n and 0 <= jj < n:
                    face = 2 * av[i, j] * av[ii, jj] / (av[i, j] + av[ii, jj])
                    assert matrix[i * n + j, ii * n + jj] == pytest.approx(-face / h2, rel=1e-13)
                else:
                    face = av[i, j]
                diag += face
            assert matrix[i * n + j, i * n + j] == pytest.approx(diag / h2, rel=1e-13)
    assert np.abs(matrix - matrix.T).max() == 0.0
    assert np.linalg.eigvalsh(matrix).min() > 0


def _discretisation_error(n: int, kind: str) -> float:
    """Max-norm error of the discrete solution for u = sin(pi x) sin(pi y)."""
    t = torch.arange(1, n + 1, dtype=DT) / (n + 1)
    x, y = torch.meshgrid(t, t, indexing="ij")
    u = torch.sin(math.pi * x) * torch.sin(math.pi * y)
    if kind == "poisson":
        problem = Poisson2D((2 * math.pi**2 * u)[None, None])
    else:  # a = 1 + x:  -div(a grad u) = 2 pi^2 a u - pi cos(pi x) sin(pi y)
        a = 1 + x
        f = 2 * math.pi**2 * a * u - math.pi * torch.cos(math.pi * x) * torch.sin(math.pi * y)
        problem = Darcy2D(a[None, None], f=f[None, None])
    solution = spla.spsolve(problem.to_scipy()[0].tocsc(), problem.f[0, 0].numpy().ravel())
    return float(np.abs(solution - u.numpy().ravel()).max())


@pytest.mark.parametrize("kind, sizes", [("poisson", (15, 31, 63)), ("darcy", (31, 63, 127))])
def test_manufactured_solution_converges_at_second_order(kind, sizes):
    errors = [_discretisation_error(n, kind) for n in sizes]
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    # Second order: the error falls by 4 per halving of h. For Darcy the boundary faces take
    # the node's own coefficient (first-order accurate in one layer of cells), so 4 is reached
    # from below (3.2, 3.6, 3.8 for n = 15 .. 127); the coarsest pair is left out there.
    assert all(3.5 < r < 4.4 for r in ratios), ratios


def test_periodic_right_hand_side_is_projected_to_mean_zero():
    f = _rand(2, 1, 6, 6) + 3.0
    problem = Poisson2D(f, bc="periodic")
    assert problem.f.mean(dim=(-2, -1)).abs().max() < 1e-14
    assert torch.allclose(problem.f, f - f.mean(dim=(-2, -1), keepdim=True))
    assert problem.h == pytest.approx(1 / 6)


def test_diagonal_and_restrict_select_samples():
    a = torch.rand(3, 1, 5, 5, dtype=DT) + 1.0
    problem = Darcy2D(a, f=2.0)
    sub = problem.restrict(torch.tensor([2, 0]))
    assert sub.batch_size == 2 and isinstance(sub, Darcy2D)
    assert torch.equal(sub.a, a[[2, 0]])
    assert torch.equal(sub.diagonal(), problem.diagonal()[[2, 0]])
    for b, matrix in enumerate(problem.to_scipy()):
        assert np.array_equal(problem.diagonal()[b, 0].numpy().ravel(), matrix.diagonal())
    assert torch.equal(problem.zeros(), torch.zeros(3, 1, 5, 5, dtype=DT))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Darcy2D(torch.zeros(1, 1, 4, 4)), "strictly positive"),
        (lambda: Darcy2D(-torch.ones(1, 1, 4, 4)), "strictly positive"),
        (lambda: Darcy2D(torch.full((1, 1, 4, 4), math.nan)), "finite"),
        (lambda: Darcy2D(torch.full((1, 1, 4, 4), math.inf)), "finite"),
        (lambda: Darcy2D(torch.ones(1, 1, 4, 4), f=torch.ones(1, 1, 5, 5)), r"\(1, 1, 4, 4\)"),
        (lambda: Darcy2D(torch.ones(1, 1, 4, 4), f=math.nan), "finite"),
        (lambda: Darcy2D(torch.ones(4, 4)), r"\(B, 1, n, n\)"),
        (lambda: Poisson2D(torch.ones(1, 2, 4, 4)), r"\(B, 1, n, n\)"),
        (lambda: Poisson2D(torch.ones(1, 1, 4, 5)), r"\(B, 1, n, n\)"),
        (lambda: Poisson2D(torch.ones(1, 1, 4, 4), bc="neumann"), "dirichlet"),
    ],
)
def test_bad_input_raises_value_error_naming_the_expectation(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_coordinates_are_interior_nodes_dirichlet_and_left_nodes_periodic():
    x, y = Poisson2D(torch.zeros(1, 1, 3, 3)).coordinates()
    assert torch.allclose(x[:, 0], torch.tensor([0.25, 0.5, 0.75], dtype=DT))
    assert torch.allclose(y[0], torch.tensor([0.25, 0.5, 0.75], dtype=DT))
    x, _ = Poisson2D(torch.zeros(1, 1, 4, 4), bc="periodic").coordinates()
    assert torch.allclose(x[:, 0], torch.tensor([0.0, 0.25, 0.5, 0.75], dtype=DT))


def test_stencil_problem_accepts_nine_point_dirichlet_stencil_and_rejects_outward_corner():
    # A 9-point stencil whose out-of-grid coefficients are zero is a valid Dirichlet
    # operator; a single non-zero corner coefficient on the boundary row is not.
    n = 4
    stencil = torch.zeros(1, 9, n, n, dtype=DT)
    stencil[:, 4] = 8.0
    for k, (di, dj) in enumerate((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)):
        if (di, dj) == (0, 0):
            continue
        inside = torch.ones(n, n, dtype=DT)
        if di:
            inside[0 if di < 0 else -1, :] = 0.0
        if dj:
            inside[:, 0 if dj < 0 else -1] = 0.0
        stencil[0, k] = -inside
    f = _rand(1, 1, n, n)
    problem = StencilProblem(stencil, f, periodic=False)
    matrix = problem.to_scipy()[0].toarray()
    u = _rand(1, 1, n, n, seed=1)
    np.testing.assert_allclose(problem.apply(u).flatten(), matrix @ u.flatten().numpy(), rtol=1e-14)
    stencil[0, 0, 0, 1] = -1.0  # offset (-1, -1) from the first row points outside
    with pytest.raises(ValueError, match=r"offset \(-1, -1\)"):
        StencilProblem(stencil, f, periodic=False)


@pytest.mark.parametrize(
    ("scale", "dtype", "rel"),
    # 2 a b underflows at these scales (1e-400 in float64, 1e-46 in float32); the mean must not.
    # rel: a few ulps of 2 / (1/a + 1/b) in the dtype.
    [(1e-200, torch.float64, 1e-13), (1e-23, torch.float32, 2e-6), (1e150, torch.float64, 1e-13)],
)
def test_darcy_harmonic_means_do_not_underflow_for_tiny_or_huge_coefficients(scale, dtype, rel):
    n = 5
    p = torch.rand(1, 1, n, n, dtype=DT, generator=torch.Generator().manual_seed(4)) + 0.5
    problem = Darcy2D((scale * p).to(dtype), dtype=dtype)
    # Closed form on the normalised values q = a / scale (exact in float64 up to one rounding):
    # the face coefficient of neighbours i, i+1 along x is scale * 2 q_i q_{i+1} / (q_i + q_{i+1}).
    q = problem.a[0, 0].double() / scale
    faces = 2 * q[1:] * q[:-1] / (q[1:] + q[:-1])
    h2 = (1.0 / (n + 1)) ** 2
    north = -problem.stencil[0, 0, 1:].double() * h2 / scale
    torch.testing.assert_close(north, faces, rtol=rel, atol=0.0)
    assert bool((problem.diagonal() > 0).all())


def test_darcy_refuses_coefficients_whose_stencil_would_overflow_naming_the_range():
    grid = torch.ones(1, 1, 63, 63, dtype=DT)
    assert Darcy2D(grid * 1e300).stencil.isfinite().all()  # 2ab overflowed here: now accepted
    with pytest.raises(ValueError, match=r"^Darcy2D: expected the coefficient a in \[2\.23e-308, "):
        Darcy2D(grid * 1e305)
    with pytest.raises(ValueError, match=r"float32 .* got min 0, max 0$"):
        Darcy2D(grid * 1e-50, dtype=torch.float32)  # flushed to 0 by the cast


@pytest.mark.parametrize(
    ("scale", "dtype", "rtol"),
    [(1e-200, DT, 1e-10), (1e-23, torch.float32, 1e-5), (1e300, DT, 1e-10)],
)
def test_multigrid_solves_darcy_with_tiny_or_huge_coefficients_like_the_unscaled_problem(
    scale, dtype, rtol
):
    from irsolve import solve
    from irsolve.solvers import Multigrid

    n = 15
    a = torch.where(_rand(1, 1, n, n, seed=5) > 0.5, 12.0, 3.0).to(DT)
    sol = solve(None, Multigrid(), Darcy2D(scale * a, dtype=dtype), tol=0.0, rtol=rtol)
    assert sol.success
    # Reference: SciPy's sparse direct solve of the unscaled problem; u(scale a) = u(a) / scale.
    # Residual rtol with cond(A) < 1e3 at n = 15 bounds the relative error by 1e3 * rtol.
    matrix = Darcy2D(a).to_scipy()[0].tocsc()
    exact = spla.spsolve(matrix, np.ones(n * n))
    got = sol.u[0, 0].double().flatten().numpy() * scale
    assert np.linalg.norm(got - exact) / np.linalg.norm(exact) < 1e3 * rtol
