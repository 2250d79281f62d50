"""Flexible Krylov methods: iteration counts against scipy's cg / gmres, solutions against
scipy's spsolve, per-sample convergence, breakdown handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from irsolve import Anderson, Cycle, FixedPointSolver, ReturnCode, init, solve
from irsolve.solvers import (
    Darcy2D,
    GaussSeidel,
    Jacobi,
    Multigrid,
    Poisson2D,
    Refiner,
    StencilProblem,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers.krylov import FlexibleCG, FlexibleGMRES

DT = torch.float64


def _darcy(batch: int, n: int, seed: int = 0) -> Darcy2D:
    grf = gaussian_random_field(batch, n, generator=torch.Generator().manual_seed(seed))
    return Darcy2D(darcy_coefficient(grf))


def _spsolve(problem: StencilProblem) -> Tensor:
    solutions = [
        spla.spsolve(m.tocsc(), problem.f[b, 0].numpy().ravel())
        for b, m in enumerate(problem.to_scipy())
    ]
    return torch.from_numpy(np.stack(solutions)).reshape(problem.f.shape)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).flatten(1).sum(dim=1)


def _relative_error(u: Tensor, reference: Tensor) -> Tensor:
    return (u - reference).flatten(1).norm(dim=1) / reference.flatten(1).norm(dim=1)


class ExactInverse(FixedPointSolver):
    """``h + A^{-1} (f - A h)`` by scipy's sparse LU: the perfect preconditioner."""

    def prepare(self, x: StencilProblem) -> tuple[StencilProblem, list]:
        return x, [spla.factorized(m.tocsc()) for m in x.to_scipy()]

    def restrict(self, ctx: tuple[StencilProblem, list], index: Tensor) -> tuple:
        problem, solves = ctx
        return problem.restrict(index), [solves[i] for i in index.tolist()]

    def step(self, ctx: tuple[StencilProblem, list], h: Tensor, k: int) -> Tensor:
        problem, solves = ctx
        r = problem.residual(h).flatten(1).numpy()
        e = np.stack([lu(row) for lu, row in zip(solves, r, strict=True)])
        return h + torch.from_numpy(e).reshape(h.shape)


class Zero(FixedPointSolver):
    """A preconditioner that returns zero: every Krylov direction degenerates."""

    def step(self, ctx: StencilProblem, h: Tensor, k: int) -> Tensor:
        return torch.zeros_like(h)


def _convection(n: int, velocities: list[tuple[float, float]], seed: int = 0) -> StencilProblem:
    """``-Δu + b . grad u = f`` (central differences, zero Dirichlet), one ``b`` per sample.

    Non-symmetric; the cell Peclet number ``|b| h / 2`` stays below 1, so the
    operator is an M-matrix and non-singular. The diagonal is ``4 / h^2`` for every
    sample, so one Jacobi sweep from zero is a scaled identity preconditioner.
    """
    h = 1.0 / (n + 1)
    stencil = torch.zeros(len(velocities), 5, n, n, dtype=DT)
    for b, (bx, by) in enumerate(velocities):
        assert max(abs(bx), abs(by)) * h / 2 < 1
        stencil[b, 0] = -1 / h**2 - bx / (2 * h)  # north, u_{i-1, j}
        stencil[b, 4] = -1 / h**2 + bx / (2 * h)  # south, u_{i+1, j}
        stencil[b, 1] = -1 / h**2 - by / (2 * h)  # west, u_{i, j-1}
        stencil[b, 3] = -1 / h**2 + by / (2 * h)  # east, u_{i, j+1}
        stencil[b, 2] = 4 / h**2
    stencil[:, 0, 0, :] = stencil[:, 4, -1, :] = 0.0
    stencil[:, 1, :, 0] = stencil[:, 3, :, -1] = 0.0
    f = torch.randn(len(velocities), 1, n, n, generator=torch.Generator().manual_seed(seed))
    return StencilProblem(stencil, f.to(DT), periodic=False)


VELOCITIES = [(10.0, 20.0), (25.0, -20.0), (0.0, 0.0)]


class PoisonedJacobi(FixedPointSolver):
    """One Jacobi sweep, NaN on the samples flagged in the context (restricted with it)."""

    def __init__(self, poisoned: Tensor) -> None:
        self.poisoned = poisoned

    def prepare(self, x: StencilProblem) -> tuple[StencilProblem, Tensor]:
        return x, self.poisoned

    def step(self, ctx: tuple[StencilProblem, Tensor], h: Tensor, k: int) -> Tensor:
        problem, poisoned = ctx
        z = h + problem.residual(h) / problem.diagonal()
        return torch.where(poisoned.reshape(-1, 1, 1, 1), torch.nan, z)


def _scipy_gmres_iterations(problem: StencilProblem, rtol: float, restart: int) -> list[int]:
    """Inner iterations of unpreconditioned ``scipy.sparse.linalg.gmres(restart)``."""
    counts = []
    for b, matrix in enumerate(problem.to_scipy()):
        count = [0]

        def tick(_: float, count: list[int] = count) -> None:
            count[0] += 1

        _, info = spla.gmres(
            matrix,
            problem.f[b, 0].numpy().ravel(),
            rtol=rtol,
            atol=0.0,
            restart=restart,
            maxiter=1000,
            callback=tick,
            callback_type="pr_norm",
        )
        assert info == 0
        counts.append(count[0])
    return counts


def _scipy_cg_iterations(problem: StencilProblem, rtol: float) -> list[int]:
    """Iterations of Jacobi-preconditioned ``scipy.sparse.linalg.cg`` to ``||r|| <= rtol ||f||``."""
    counts = []
    for b, matrix in enumerate(problem.to_scipy()):
        count = [0]

        def tick(_: np.ndarray, count: list[int] = count) -> None:
            count[0] += 1

        jacobi = sp.diags(1.0 / matrix.diagonal())
        _, info = spla.cg(
            matrix, problem.f[b, 0].numpy().ravel(), rtol=rtol, atol=0.0, M=jacobi, callback=tick
        )
        assert info == 0
        counts.append(count[0])
    return counts


# -- FlexibleCG ---------------------------------------------------------------------------


def test_fcg_with_exact_preconditioner_converges_in_one_iteration_from_any_start():
    problem = _darcy(2, 15)
    h0 = torch.randn(problem.f.shape, generator=torch.Generator().manual_seed(9), dtype=DT)
    sol = solve(h0, FlexibleCG(ExactInverse()), problem, tol=0.0, rtol=1e-10)
    assert sol.retcodes == [ReturnCode.SUCCESS] * 2
    assert sol.iterations.tolist() == [1, 1]
    # One exact step solves to rounding: cond(A) < 1e3 at n = 15, so 1e-12 is generous.
    assert _relative_error(sol.u, _spsolve(problem)).max() < 1e-12


def test_fcg_with_one_jacobi_sweep_matches_scipy_pcg_iteration_count():
    problem = _darcy(3, 31)
    rtol = 1e-8
    sol = solve(None, FlexibleCG(Jacobi()), problem, tol=0.0, rtol=rtol, maxiter=1000)
    assert sol.success
    # One sweep from zero is omega D^-1 r: diagonal PCG, up to a scale CG does not see.
    # Rounding may shift the crossing of the threshold by an iteration or two.
    scipy_counts = _scipy_cg_iterations(problem, rtol)
    for ours, theirs in zip(sol.iterations.tolist(), scipy_counts, strict=True):
        assert abs(ours - theirs) <= 2, (ours, theirs)
    # ||e|| / ||u|| <= cond(A) ||r|| / ||f||, cond ~ 2e3 here (12/3 contrast, n = 31).
    assert _relative_error(sol.u, _spsolve(problem)).max() < 2e3 * rtol


@pytest.mark.parametrize(
    "preconditioner",
    [Multigrid(), Cycle(Jacobi(sweeps=2), Multigrid())],
    ids=["multigrid", "two-jacobi-then-multigrid"],
)
def test_fcg_with_multigrid_converges_in_a_handful_of_iterations_on_darcy(
    preconditioner: FixedPointSolver,
):
    problem = _darcy(2, 31, seed=3)
    solver = FlexibleCG(preconditioner)
    sol = solve(None, solver, problem, tol=0.0, rtol=1e-10, maxiter=50)
    assert sol.success
    # A V(2,2) cycle contracts Darcy errors by ~0.05-0.1; Krylov does better: <= 8 to 1e-10.
    assert sol.iterations.max() <= 8
    assert _relative_error(sol.u, _spsolve(problem)).max() < 1e-8


def test_fcg_extra_directions_matter_only_for_a_non_symmetric_preconditioner():
    # Two Jacobi sweeps from zero give M = omega D^-1 (2 I - omega A D^-1): symmetric, and
    # positive definite since omega * lambda_max(D^-1 A) < 1.6 < 2. FCG is then PCG, whose
    # directions are A-conjugate to all earlier ones: keeping 1 or 8 changes nothing
    # beyond rounding. Two red-black Gauss-Seidel sweeps are not symmetric: there the
    # explicit orthogonalisation against 8 directions saves iterations (48 -> 30, 39 -> 27).
    problem = _darcy(2, 15, seed=4)

    def iterations(preconditioner: FixedPointSolver, m: int) -> Tensor:
        solver = FlexibleCG(Cycle(preconditioner, repeats=2), m=m)
        return solve(None, solver, problem, tol=0.0, rtol=1e-10).iterations

    jacobi = [iterations(Jacobi(), m) for m in (1, 8)]
    assert (jacobi[0] - jacobi[1]).abs().max() <= 1, jacobi
    gauss_seidel = [iterations(GaussSeidel(), m) for m in (1, 8)]
    assert bool((gauss_seidel[1] < gauss_seidel[0] - 5).all()), gauss_seidel


def test_fcg_keeps_energy_norm_monotone_with_a_nonlinear_preconditioner():
    # Three Anderson-accelerated Gauss-Seidel sweeps: M depends nonlinearly on r (and is
    # not symmetric). FCG's exact line search must still never raise ||e||_A. The
    # reference u from spsolve carries an error ~ eps cond(A) ||u|| (cond < 1e3), which
    # moves the energies by at most ~1e-13 ||u||_A^2: the slack below.
    problem = _darcy(2, 15, seed=5)
    u = _spsolve(problem)
    solver = FlexibleCG(Cycle(Anderson(GaussSeidel(), m=2), repeats=3))
    sol = solve(None, solver, problem, tol=0.0, rtol=1e-9, save_trajectory=True, maxiter=200)
    assert sol.success
    energy = torch.stack([_dot(e, problem.apply(e)) for e in sol.trajectory - u])
    assert bool((energy[1:] <= energy[:-1] + 1e-12 * energy[0]).all())


def test_fcg_per_sample_convergence_matches_single_sample_solves():
    # Poisson with constant diagonal: Jacobi is a scaled identity, so a sine mode (an
    # eigenvector of A) converges in one step while a random right-hand side needs many.
    n = 15
    x = torch.arange(1, n + 1, dtype=DT) / (n + 1)
    mode = torch.outer(torch.sin(math.pi * x), torch.sin(2 * math.pi * x))
    f = torch.stack([torch.randn(n, n, dtype=DT), mode, torch.randn(n, n, dtype=DT)])
    batch = Poisson2D(f.unsqueeze(1))
    solver = FlexibleCG(Jacobi(), m=3)
    sol = solve(None, solver, batch, tol=0.0, rtol=1e-9, maxiter=300)
    assert sol.success
    assert sol.iterations[1] == 1 and sol.iterations[0] > 10
    for b in range(3):
        single = solve(None, solver, batch.restrict(torch.tensor([b])), tol=0.0, rtol=1e-9)
        assert single.iterations.item() == sol.iterations[b].item()
        # Same arithmetic per sample; batching changes at most the summation order.
        torch.testing.assert_close(single.u[0], sol.u[b], rtol=1e-10, atol=1e-14)


def test_fcg_one_solver_object_serves_two_solves():
    solver = FlexibleCG(Jacobi())
    problem = _darcy(2, 15)
    first = solve(None, solver, problem, tol=0.0, rtol=1e-8)
    second = solve(None, solver, problem, tol=0.0, rtol=1e-8)
    assert torch.equal(first.u, second.u)


def test_fcg_nonpositive_operator_ends_that_sample_unstable_and_spares_the_others():
    good = _darcy(1, 15)
    bad = StencilProblem(-good.stencil, good.f, periodic=False)  # negative definite
    both = StencilProblem(torch.cat([good.stencil, bad.stencil]), good.f.repeat(2, 1, 1, 1), False)
    sol = solve(None, FlexibleCG(Jacobi(omega=0.5)), both, tol=0.0, rtol=1e-8, maxiter=300)
    # -A is negative definite: <p, -A p> < 0 for every p != 0, so the first step breaks down.
    assert sol.retcodes == [ReturnCode.SUCCESS, ReturnCode.UNSTABLE]
    assert torch.isfinite(sol.u).all() and torch.equal(sol.u[1], torch.zeros_like(sol.u[1]))


def test_fcg_zero_preconditioned_residual_ends_unstable_not_crashing():
    problem = _darcy(2, 15)
    sol = solve(None, FlexibleCG(Zero()), problem, tol=0.0, rtol=1e-8)
    assert sol.retcodes == [ReturnCode.UNSTABLE] * 2
    assert torch.equal(sol.u, torch.zeros_like(sol.u))


def test_fcg_rejects_a_refiner_preconditioner_and_bad_parameters():
    problem = _darcy(1, 15)
    refiner = Refiner(lambda z: z[:, -1:])
    with pytest.raises(TypeError, match="Refiner cannot take a new right-hand side"):
        solve(None, FlexibleCG(refiner), problem, tol=0.0, rtol=1e-8)
    with pytest.raises(ValueError, match="^FlexibleCG: expected m to be an int >= 1, got 1.5"):
        FlexibleCG(Jacobi(), m=1.5)
    with pytest.raises(TypeError, match="expected preconditioner to be a FixedPointSolver"):
        FlexibleCG(lambda r: r)
    with pytest.raises(TypeError, match=r"got the class Jacobi: pass an instance, Jacobi\(\)$"):
        FlexibleCG(Jacobi)
    with pytest.raises(TypeError, match="FlexibleCG expected a Problem"):
        solve(torch.zeros(1, 1, 4, 4), FlexibleCG(Jacobi()), torch.zeros(1, 1, 4, 4))


# -- FlexibleGMRES ------------------------------------------------------------------------


@pytest.mark.parametrize("restart", [8, 30])
def test_fgmres_matches_scipy_gmres_iteration_count_and_reaches_spsolve(restart: int):
    problem = _convection(15, VELOCITIES)
    rtol = 1e-8
    solver = FlexibleGMRES(Jacobi(), restart=restart)
    sol = solve(None, solver, problem, tol=0.0, rtol=rtol, maxiter=500)
    assert sol.success
    # Constant diagonal: Jacobi from zero is a scaled identity, i.e. plain GMRES(restart).
    # scipy stops on its least-squares estimate, we on the true residual: +-2 iterations.
    scipy_counts = _scipy_gmres_iterations(problem, rtol, restart)
    for ours, theirs in zip(sol.iterations.tolist(), scipy_counts, strict=True):
        assert abs(ours - theirs) <= 2, (ours, theirs)
    # ||e|| / ||u|| <= cond(A) ||r|| / ||f||; cond(A) ~ 1e2 at n = 15.
    assert _relative_error(sol.u, _spsolve(problem)).max() < 1e2 * rtol


def test_fgmres_with_exact_preconditioner_converges_in_one_iteration_from_any_start():
    problem = _convection(15, VELOCITIES)
    h0 = torch.randn(problem.f.shape, generator=torch.Generator().manual_seed(9), dtype=DT)
    sol = solve(h0, FlexibleGMRES(ExactInverse()), problem, tol=0.0, rtol=1e-10)
    assert sol.iterations.tolist() == [1, 1, 1] and sol.success
    assert _relative_error(sol.u, _spsolve(problem)).max() < 1e-12


def test_fgmres_with_multigrid_solves_convection_in_a_few_iterations():
    problem = _convection(31, VELOCITIES, seed=4)
    sol = solve(None, FlexibleGMRES(Multigrid()), problem, tol=0.0, rtol=1e-10, maxiter=50)
    assert sol.success
    # Black-box multigrid handles this mild convection (Peclet < 1); plain GMRES needs ~150.
    assert sol.iterations.max() <= 10
    assert _relative_error(sol.u, _spsolve(problem)).max() < 1e-8


def test_fgmres_per_sample_convergence_matches_single_sample_solves():
    problem = _convection(15, VELOCITIES)
    solver = FlexibleGMRES(Jacobi(), restart=10)
    sol = solve(None, solver, problem, tol=0.0, rtol=1e-9, maxiter=500)
    assert sol.success and len(set(sol.iterations.tolist())) == 3
    for b in range(3):
        one = problem.restrict(torch.tensor([b]))
        single = solve(None, solver, one, tol=0.0, rtol=1e-9, maxiter=500)
        assert single.iterations.item() == sol.iterations[b].item()
        torch.testing.assert_close(single.u[0], sol.u[b], rtol=1e-10, atol=1e-14)


def test_fgmres_restarts_the_cycle_from_an_iterate_it_did_not_return():
    problem = _convection(15, VELOCITIES[:2])
    solver = FlexibleGMRES(Jacobi())
    ctx = solver.prepare(problem)
    h1 = solver.step(ctx, problem.zeros(), 0)
    moved = h1 + 1e-3 * torch.randn_like(h1)
    # The cycle built from zero does not span moved - 0: the step must start over from it.
    fresh = solver.step(solver.prepare(problem), moved, 0)
    torch.testing.assert_close(solver.step(ctx, moved, 1), fresh, rtol=0, atol=0)


def test_fgmres_zero_preconditioner_ends_unstable_not_crashing():
    problem = _convection(15, VELOCITIES)
    sol = solve(None, FlexibleGMRES(Zero()), problem, tol=0.0, rtol=1e-8)
    assert sol.retcodes == [ReturnCode.UNSTABLE] * 3
    assert torch.equal(sol.u, torch.zeros_like(sol.u))


def test_fgmres_with_inner_fcg_iterations_as_preconditioner():
    # Inner-outer: three FCG(Multigrid) iterations per outer step (FCG's with_rhs starts
    # each inner solve afresh); the outer FGMRES then needs one or two steps to 1e-10.
    problem = _darcy(2, 31, seed=2)
    inner = FlexibleCG(Multigrid(), m=3)
    state = init(None, FlexibleGMRES(Cycle(inner, repeats=3)), problem, tol=0.0, rtol=1e-10)
    sol = state.solve()
    assert sol.success and sol.iterations.max() <= 2
    assert _relative_error(sol.u, _spsolve(problem)).max() < 1e-8


@pytest.mark.parametrize("krylov", [FlexibleCG, FlexibleGMRES])
def test_gradient_through_the_solve_is_the_adjoint_solve(krylov: type):
    # u = A^{-1} f, so d<g, u>/df = A^{-T} g = A^{-1} g (A symmetric); backpropagating
    # through the unrolled iterations must reproduce it (checks the out-of-place history).
    grf = gaussian_random_field(2, 15, generator=torch.Generator().manual_seed(1))
    f = torch.randn(2, 1, 15, 15, dtype=DT, requires_grad=True)
    problem = Darcy2D(darcy_coefficient(grf), f=f)
    sol = solve(None, krylov(Multigrid()), problem, tol=0.0, rtol=1e-12, grad=True)
    assert sol.success
    g = torch.randn(2, 1, 15, 15, dtype=DT)
    (sol.u * g).sum().backward()
    adjoint = _spsolve(problem.with_rhs(g))
    assert _relative_error(f.grad, adjoint).max() < 1e-9


@pytest.mark.parametrize("krylov", [FlexibleCG, FlexibleGMRES])
def test_singular_periodic_poisson_reaches_the_mean_zero_fft_solution(krylov: type):
    # The periodic 5-point Laplacian is diagonal in the DFT basis with eigenvalues
    # (4 - 2 cos(2 pi k / n) - 2 cos(2 pi l / n)) / h^2; the mean-zero solution divides
    # every non-constant mode of f by its eigenvalue.
    n = 16
    problem = Poisson2D(torch.randn(2, 1, n, n, dtype=DT), bc="periodic")
    sol = solve(None, krylov(Multigrid()), problem, tol=0.0, rtol=1e-10)
    assert sol.success
    theta = 2 * math.pi * torch.fft.fftfreq(n, dtype=DT)
    eigen = (4 - 2 * torch.cos(theta)[:, None] - 2 * torch.cos(theta)[None, :]) / problem.h**2
    eigen[0, 0] = math.inf
    exact = torch.fft.ifft2(torch.fft.fft2(problem.f) / eigen).real
    # cond(A) on the mean-zero space is 2 / sin^2(pi / n) ~ 52: 1e-10 * 52 bounds the error.
    assert _relative_error(sol.u, exact).max() < 1e-8


@pytest.mark.parametrize("krylov", [FlexibleCG, FlexibleGMRES])
def test_nan_from_the_preconditioner_ends_that_sample_unstable_and_spares_the_others(
    krylov: type,
):
    problem = _darcy(3, 15)
    clean = solve(None, krylov(Jacobi()), problem, tol=0.0, rtol=1e-8, maxiter=300)
    poisoned = krylov(PoisonedJacobi(torch.tensor([False, True, False])))
    sol = solve(None, poisoned, problem, tol=0.0, rtol=1e-8, maxiter=300)
    assert sol.retcodes == [ReturnCode.SUCCESS, ReturnCode.UNSTABLE, ReturnCode.SUCCESS]
    assert sol.iterations[1] == 1 and torch.equal(sol.u[1], torch.zeros_like(sol.u[1]))
    # Jacobi and the unpoisoned sweep are the same preconditioner up to the scale omega,
    # which neither method sees: same iterations and, to rounding, the same answer.
    assert sol.iterations[[0, 2]].tolist() == clean.iterations[[0, 2]].tolist()
    torch.testing.assert_close(sol.u[[0, 2]], clean.u[[0, 2]], rtol=1e-9, atol=1e-15)
