"""SparseLU against SciPy's spsolve, and as GeometricMultigrid's coarse solve.

References: ``scipy.sparse.linalg.spsolve`` on each sample's ``to_scipy()`` matrix
(SuperLU with its default ordering, so another factorisation than the solver's),
and GeometricMultigrid with its own dense LU on the same coarsest grid.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spl
import torch

from irsolve import solve
from irsolve.composition import Cycle
from irsolve.interface import apply_from_zero
from irsolve.solvers import (
    Darcy3D,
    FlexibleGMRES,
    GeometricMultigrid,
    Helmholtz3D,
    Jacobi,
    Poisson2D,
    ShiftedLaplacian,
)
from irsolve.solvers.direct import SparseLU
from irsolve.solvers.fields import darcy_coefficient, gaussian_random_field
from irsolve.solvers.helmholtz import layered_speed, random_source


def _darcy3d(batch: int, n: int) -> Darcy3D:
    g = torch.Generator().manual_seed(0)
    a = darcy_coefficient(gaussian_random_field(batch, n, generator=g, dim=3))
    return Darcy3D(a, torch.randn(batch, 1, n, n, n, generator=g, dtype=torch.float64))


def _helmholtz3d(batch: int, n: int) -> Helmholtz3D:
    g = torch.Generator().manual_seed(1)
    speed = layered_speed(batch, n, generator=g, dim=3)
    return Helmholtz3D(speed, random_source(batch, n, generator=g, dim=3))


@pytest.mark.parametrize("make", [_darcy3d, _helmholtz3d], ids=["darcy3d", "helmholtz3d"])
@pytest.mark.parametrize("pivot_threshold", [0.0, 0.1, 1.0])
def test_one_step_from_anywhere_is_the_spsolve_solution(make, pivot_threshold):
    problem = make(3, 9)
    solver = SparseLU(pivot_threshold)
    ctx = solver.prepare(problem)
    start = torch.randn_like(problem.f.real).to(problem.f.dtype)
    h = solver.step(ctx, start, 0)
    for b, matrix in enumerate(problem.to_scipy()):
        exact = spl.spsolve(matrix.tocsc(), problem.f[b].flatten().numpy())
        # Two backward-stable solves of one system (cond(A) < 1e4 here): agree to
        # cond * eps = 1e-12 relative; from a random start the correction adds rounding
        # of the order of ||start|| eps.
        got = h[b].flatten().numpy()
        assert np.linalg.norm(got - exact) <= 1e-10 * np.linalg.norm(exact)
    # A new right-hand side, a subset of samples: the same factors, the same solves.
    from_zero = solver.step(ctx, torch.zeros_like(problem.f), 0)
    sub = solver.restrict(solver.with_rhs(ctx, problem.f), torch.tensor([1, 2]))
    torch.testing.assert_close(
        apply_from_zero(solver, sub, 2 * problem.f[1:]), 2 * from_zero[1:], rtol=1e-13, atol=0
    )
    sol = solve(None, solver, problem, tol=0.0, rtol=1e-10, maxiter=3)
    assert sol.success and int(sol.iterations.max()) == 1


def test_as_the_coarse_solve_it_equals_the_dense_lu_cycle():
    """Both solve the 7^3 coarsest Galerkin system exactly, so the V-cycles agree to
    rounding (measured 1e-15 relative)."""
    problem = _darcy3d(2, 31)
    dense = GeometricMultigrid(coarsest=7)
    sparse = GeometricMultigrid(coarsest=7, coarse=SparseLU())
    h = torch.zeros_like(problem.f)
    u_dense = dense.step(dense.prepare(problem), h, 0)
    u_sparse = sparse.step(sparse.prepare(problem), h, 0)
    torch.testing.assert_close(
        u_sparse, u_dense, rtol=1e-11, atol=1e-11 * float(u_dense.abs().max())
    )
    assert "coarse=SparseLU" in repr(sparse) and "coarse=" not in repr(dense)


def test_a_krylov_coarse_solve_on_a_complex_galerkin_operator():
    """The coarsest shifted Laplacian (27-point, complex) as a problem of its own: eight
    Jacobi-preconditioned GMRES iterations there still give an SL preconditioner that
    converges (measured 15 iterations, the same as with SparseLU there)."""
    problem = _helmholtz3d(2, 15)
    coarse = Cycle(FlexibleGMRES(Jacobi(omega=1.0), restart=8), repeats=8)
    inner = GeometricMultigrid(Jacobi(), presmooth=1, postsmooth=1, coarsest=7, coarse=coarse)
    options = {"tol": 0.0, "rtol": 1e-7, "maxiter": 100}
    sol = solve(None, FlexibleGMRES(ShiftedLaplacian(inner), restart=100), problem, **options)
    exact = solve(None, FlexibleGMRES(ShiftedLaplacian(), restart=100), problem, **options)
    assert sol.success and exact.success
    assert abs(int(sol.iterations.max()) - int(exact.iterations.max())) <= 3


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: SparseLU(1.5), ValueError, "^SparseLU: expected pivot_threshold"),
        (lambda: SparseLU().prepare(object()), TypeError, "^SparseLU"),
        (lambda: GeometricMultigrid(coarse=Jacobi), TypeError, "^GeometricMultigrid"),
        (lambda: GeometricMultigrid(coarse="lu"), TypeError, "^GeometricMultigrid"),
        (
            lambda: GeometricMultigrid(coarsest=31).prepare(_darcy3d(1, 31)),
            ValueError,
            r"^GeometricMultigrid: the coarsest grid \(31\^3 unknowns\) is too big for a dense",
        ),
    ],
    ids=["threshold", "not-a-problem", "class", "string", "dense-too-big"],
)
def test_bad_inputs_are_one_line(build, error, match):
    with pytest.raises(error, match=match) as info:
        build()
    assert "\n" not in str(info.value)


def test_empty_batch_and_2d():
    problem = Poisson2D(torch.ones(0, 1, 7, 7, dtype=torch.float64))
    solver = SparseLU()
    assert solver.step(solver.prepare(problem), torch.zeros_like(problem.f), 0).shape[0] == 0
    problem = Poisson2D(torch.ones(1, 1, 7, 7, dtype=torch.float64))
    u = solver.step(solver.prepare(problem), torch.zeros_like(problem.f), 0)
    exact = spl.spsolve(problem.to_scipy()[0].tocsc(), np.ones(49))
    np.testing.assert_allclose(u.flatten().numpy(), exact, rtol=1e-12)
