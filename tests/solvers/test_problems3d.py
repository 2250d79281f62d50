"""3-D problems from the dimension-generic stencil code, against independent SciPy assemblies."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch

from irsolve import solve
from irsolve.solvers import (
    Darcy3D,
    FlexibleCG,
    GaussSeidel,
    Jacobi,
    Multigrid,
    Poisson2D,
    Poisson3D,
)

DT = torch.float64


def _second_difference(n: int, periodic: bool) -> sp.csr_matrix:
    """The 1-D ``tridiag(-1, 2, -1)`` (with the wrap-around corners when periodic)."""
    one = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tolil()
    if periodic:
        one[0, n - 1] -= 1
        one[n - 1, 0] -= 1
    return one.tocsr()


def _kron_laplacian(n: int, periodic: bool) -> sp.csr_matrix:
    """``(L x I x I + I x L x I + I x I x L) / h^2``: the 7-point Laplacian by Kronecker sums."""
    h = 1.0 / n if periodic else 1.0 / (n + 1)
    one, eye = _second_difference(n, periodic), sp.identity(n)
    total = sp.kron(sp.kron(one, eye), eye) + sp.kron(sp.kron(eye, one), eye)
    return ((total + sp.kron(sp.kron(eye, eye), one)) / h**2).tocsr()


def _face_assembly(a: np.ndarray) -> sp.csr_matrix:
    """Finite volumes of ``-div(a grad u)`` by a loop over the faces: an interior face between
    nodes P and Q adds its harmonic mean to both diagonals and ``-mean`` to (P, Q) and (Q, P);
    a boundary face adds ``a_P``; everything over ``h^2``."""
    n = a.shape[0]
    h2 = (1.0 / (n + 1)) ** 2
    index = np.arange(n**3).reshape(n, n, n)
    matrix = sp.lil_matrix((n**3, n**3))
    for p in np.ndindex(n, n, n):
        for axis in range(3):
            for step in (-1, 1):
                q = list(p)
                q[axis] += step
                if 0 <= q[axis] < n:
                    mean = 2.0 / (1.0 / a[p] + 1.0 / a[tuple(q)])
                    matrix[index[p], index[p]] += mean / h2
                    matrix[index[p], index[tuple(q)]] -= mean / h2
                else:
                    matrix[index[p], index[p]] += a[p] / h2
    return matrix.tocsr()


@pytest.mark.parametrize("bc", ["dirichlet", "periodic"])
def test_poisson3d_is_the_kronecker_sum_of_1d_second_differences(bc):
    n = 5
    problem = Poisson3D(torch.randn(2, 1, n, n, n, dtype=DT), bc=bc)
    reference = _kron_laplacian(n, bc == "periodic")
    for matrix in problem.to_scipy():
        assert abs(matrix - reference).max() < 1e-9 * abs(reference).max()


def test_darcy3d_matches_a_face_by_face_assembly_and_apply_matches_the_matrix():
    n, generator = 4, torch.Generator().manual_seed(0)
    a = torch.exp(torch.randn(2, 1, n, n, n, generator=generator, dtype=DT))
    problem = Darcy3D(a)
    u = torch.randn(2, 1, n, n, n, generator=generator, dtype=DT)
    applied = problem.apply(u)
    for b, matrix in enumerate(problem.to_scipy()):
        reference = _face_assembly(a[b, 0].numpy())
        assert abs(matrix - reference).max() < 1e-12 * abs(reference).max()
        assert abs(matrix - matrix.T).max() == 0  # symmetric: harmonic means on both sides
        np.testing.assert_allclose(
            applied[b, 0].numpy().ravel(), matrix @ u[b, 0].numpy().ravel(), rtol=1e-12, atol=0
        )


def test_fcg_with_jacobi_solves_darcy3d_to_the_sparse_direct_solution():
    n = 8
    a = torch.where(torch.rand(2, 1, n, n, n, generator=torch.Generator().manual_seed(1)) > 0.5,
                    12.0, 3.0).to(DT)  # fmt: skip
    problem = Darcy3D(a)
    for solver in (FlexibleCG(Jacobi(omega=1.0)), Jacobi()):
        sol = solve(None, solver, problem, tol=0.0, rtol=1e-9, maxiter=5000)
        assert sol.success, type(solver).__name__
        for b, matrix in enumerate(problem.to_scipy()):
            exact = spl.spsolve(matrix.tocsc(), problem.f[b].numpy().ravel())
            # relative residual 1e-9, cond(A) ~ 1e3 at 8^3: error below 1e-5 relative
            error = np.abs(sol.u[b].numpy().ravel() - exact).max() / np.abs(exact).max()
            assert error < 1e-5, (type(solver).__name__, error)


def test_2d_only_solvers_refuse_a_3d_problem_in_one_line():
    problem = Poisson3D(torch.ones(1, 1, 4, 4, 4, dtype=DT))
    for solver in (GaussSeidel(), Multigrid()):
        with pytest.raises(TypeError, match="expected a 2-D stencil problem, got the 3-D Poisso"):
            solve(None, solver, problem, tol=0.0, rtol=1e-6, maxiter=2)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Poisson3D(torch.ones(1, 1, 4, 4)), r"expected f of shape \(B, 1, n, n, n\)"),
        (lambda: Poisson2D(torch.ones(1, 1, 4, 4, 4)), r"expected f of shape \(B, 1, n, n\)"),
        (lambda: Darcy3D(torch.ones(1, 1, 4, 4, 5)), r"expected a of shape \(B, 1, n, n, n\)"),
        (lambda: Darcy3D(-torch.ones(1, 1, 3, 3, 3)), "Darcy3D: expected a strictly positive"),
        (lambda: Darcy3D(torch.full((1, 1, 3, 3, 3), 1e307, dtype=DT)), "3 x 3 x 3 grid"),
    ],
    ids=["2d-field", "3d-field-in-2d", "not-a-cube", "negative", "overflow"],
)
def test_bad_3d_inputs_are_one_line(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("points", [7, 27])
@pytest.mark.parametrize("periodic", [False, True])
def test_a_random_3d_stencil_applies_as_its_sparse_and_dense_matrices(points, periodic):
    """The generic stencil algebra in 3-D: ``apply_stencil``, ``stencil_to_scipy`` and
    ``stencil_to_dense`` are one operator (Dirichlet: outward coefficients zeroed)."""
    from irsolve.solvers._stencil import apply_stencil, stencil_to_dense, stencil_to_scipy
    from irsolve.solvers.problems import zero_outward

    n, generator = 4, torch.Generator().manual_seed(points)
    stencil = torch.randn(2, points, n, n, n, generator=generator, dtype=DT)
    if not periodic:
        zero_outward(stencil)
    u = torch.randn(2, 1, n, n, n, generator=generator, dtype=DT)
    applied = apply_stencil(stencil, u, periodic).flatten(1)
    dense = stencil_to_dense(stencil, periodic)
    for b, matrix in enumerate(stencil_to_scipy(stencil, periodic)):
        flat = u[b, 0].numpy().ravel()
        np.testing.assert_allclose(applied[b].numpy(), matrix @ flat, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dense[b].numpy(), matrix.toarray(), rtol=0, atol=1e-15)
