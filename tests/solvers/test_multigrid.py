"""Black-box multigrid: transfer operators, Galerkin coarse grids, solutions vs scipy spsolve."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch
from hypothesis import given, settings

from irsolve import Interleave, ReturnCode, restrict, solve
from irsolve.solvers import (
    Darcy2D,
    GaussSeidel,
    Jacobi,
    Multigrid,
    Poisson2D,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers._interpolation import galerkin, interpolation, prolong
from irsolve.solvers._interpolation import restrict as restrict_residual
from irsolve.solvers._stencil import stencil_to_scipy

DT = torch.float64


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def _fno_darcy(batch: int, n: int, seed: int = 0, f: float | torch.Tensor = 1.0) -> Darcy2D:
    grf = gaussian_random_field(batch, n, generator=torch.Generator().manual_seed(seed))
    return Darcy2D(darcy_coefficient(grf), f=f)


def _spsolve(problem) -> np.ndarray:
    return np.stack(
        [
            spla.spsolve(m.tocsc(), problem.f[b, 0].numpy().ravel())
            for b, m in enumerate(problem.to_scipy())
        ]
    )


def _factor(solver: Multigrid, problem, cycles: int = 10) -> float:
    """Asymptotic residual reduction per cycle on the error equation (f = 0)."""
    problem.f.zero_()
    ctx = solver.prepare(problem)
    u = _rand(*problem.f.shape, seed=1)
    for k in range(cycles):
        before = problem.residual(u).norm()
        u = solver.step(ctx, u, k)
        after = problem.residual(u).norm()
        u = u / after
    return (after / before).item()


@pytest.mark.parametrize("n, periodic", [(7, False), (8, False), (10, False), (12, True)])
def test_restriction_is_transpose_of_prolongation_and_coarse_operator_is_galerkin(n, periodic):
    if periodic:
        problem = Poisson2D(_rand(2, 1, n, n), bc="periodic")
    else:
        problem = _fno_darcy(2, n)
    transfer = interpolation(problem.stencil, periodic)
    m = transfer.m
    assert m == n // 2
    # Columns of P from unit coarse vectors.
    units = torch.eye(m * m, dtype=DT).reshape(m * m, 1, m, m)
    p = np.stack(
        [
            prolong(transfer, units[q : q + 1].expand(2, -1, -1, -1))[1, 0].numpy().ravel()
            for q in range(m * m)
        ],
        axis=1,
    )
    r = _rand(2, 1, n, n, seed=2)
    restricted = restrict_residual(transfer, r)[1, 0].numpy().ravel()
    assert np.abs(p.T @ r[1, 0].numpy().ravel() - restricted).max() < 1e-13
    a = problem.to_scipy()[1].toarray()
    coarse = stencil_to_scipy(galerkin(problem.stencil, transfer), periodic)[1].toarray()
    assert np.abs(p.T @ a @ p - coarse).max() < 1e-12 * np.abs(a).max()
    if periodic:  # interpolation reproduces constants on the periodic grid
        assert np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [15, 20, 33])
@pytest.mark.parametrize("kind", ["poisson", "darcy"])
def test_solution_equals_sparse_direct_solve(kind, n):
    problem = Poisson2D(_rand(2, 1, n, n)) if kind == "poisson" else _fno_darcy(2, n)
    result = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-12, maxiter=30)
    assert result.retcode == ReturnCode.SUCCESS
    exact = _spsolve(problem)
    error = np.abs(result.u.flatten(1).numpy() - exact).max(axis=1)
    assert (error <= 1e-8 * np.abs(exact).max(axis=1)).all(), error


@pytest.mark.parametrize("cycle", ["W", "F", "K"])
def test_w_f_and_k_cycles_converge_to_the_same_solution(cycle):
    problem = _fno_darcy(1, 20, seed=3)
    result = solve(None, Multigrid(cycle=cycle), problem, tol=0.0, rtol=1e-12, maxiter=30)
    exact = _spsolve(problem)
    assert np.abs(result.u.flatten(1).numpy() - exact).max() <= 1e-8 * np.abs(exact).max()


def test_float32_cycles_refine_a_float64_problem_to_float64_accuracy():
    problem = _fno_darcy(2, 20, seed=6)
    solver = Multigrid(cycle_dtype=torch.float32)
    assert solver.prepare(problem).levels[1].stencil.dtype == torch.float32
    result = solve(None, solver, problem, tol=0.0, rtol=1e-12, maxiter=30)
    assert result.retcode == ReturnCode.SUCCESS and result.u.dtype == DT
    exact = _spsolve(problem)
    error = np.abs(result.u.flatten(1).numpy() - exact).max(axis=1)
    # float32 alone would stop near 1e-7 relative; the float64 residual carries it further.
    assert (error <= 1e-9 * np.abs(exact).max(axis=1)).all(), error


def test_jacobi_smoother_converges():
    problem = _fno_darcy(1, 15)
    solver = Multigrid(smoother=Jacobi(omega=0.8), pre=3, post=3)
    result = solve(None, solver, problem, tol=0.0, rtol=1e-10, maxiter=40)
    assert result.retcode == ReturnCode.SUCCESS


def test_v22_poisson_factor_is_small_and_independent_of_h():
    # Includes sizes that do not halve cleanly (16, 32, 48).
    factors = [
        _factor(Multigrid(), Poisson2D(torch.zeros(1, 1, n, n))) for n in (15, 16, 31, 32, 48)
    ]
    assert max(factors) < 0.1, factors
    assert max(factors) < 1.5 * min(factors), factors


def test_v22_darcy_factor_on_even_grids_stays_at_odd_grid_level():
    # Even sizes put a coarse line next to the boundary; with the operator-dependent
    # boundary profile the factor stays near the odd-size value (about 0.03 at n = 31, 63).
    factors = [_factor(Multigrid(), _fno_darcy(1, n, seed=s)) for n in (32, 64) for s in (0, 1)]
    assert max(factors) < 0.06, factors


@pytest.mark.parametrize("n", [33, 64])
def test_darcy_fno_coefficients_reach_1e8_within_12_cycles(n):
    problem = _fno_darcy(2, n, seed=7)
    ctx = Multigrid().prepare(problem)
    u = problem.zeros()
    start = problem.residual(u).flatten(1).norm(dim=1)
    for k in range(12):
        u = Multigrid().step(ctx, u, k)
    assert (problem.residual(u).flatten(1).norm(dim=1) <= 1e-8 * start).all()


def test_periodic_poisson_gives_mean_zero_solution():
    n = 8
    problem = Poisson2D(_rand(2, 1, n, n), bc="periodic")
    result = solve(None, Multigrid(coarsest=4), problem, tol=1e-11, maxiter=30)
    assert result.retcode == ReturnCode.SUCCESS
    for b, matrix in enumerate(problem.to_scipy()):
        exact = np.linalg.pinv(matrix.toarray()) @ problem.f[b, 0].numpy().ravel()
        assert np.abs(result.u[b, 0].numpy().ravel() - exact).max() < 1e-9 * np.abs(exact).max()


def test_batched_cycle_equals_cycles_on_each_sample_alone():
    problem = _fno_darcy(3, 20, seed=11, f=_rand(3, 1, 20, 20))
    solver = Multigrid()
    ctx = solver.prepare(problem)
    u = solver.step(ctx, solver.step(ctx, problem.zeros(), 0), 1)
    for b in range(3):
        alone = problem.restrict(torch.tensor([b]))
        ctx_b = solver.prepare(alone)
        u_b = solver.step(ctx_b, solver.step(ctx_b, alone.zeros(), 0), 1)
        assert torch.allclose(u[b : b + 1], u_b, rtol=1e-12, atol=1e-14)
    # A restricted hierarchy steps the kept samples exactly as the full one does.
    index = torch.tensor([2, 0])
    sub = restrict(ctx, index)
    assert torch.allclose(solver.step(sub, u[index], 2), solver.step(ctx, u, 2)[index], rtol=1e-13)


def test_hierarchy_levels_follow_full_coarsening():
    ctx = Multigrid().prepare(Poisson2D(torch.zeros(1, 1, 100, 100)))
    assert [level.n for level in ctx.levels] == [100, 50, 25, 12, 6]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"cycle": "X"}, ValueError, "cycle"),
        ({"pre": 0, "post": 0}, ValueError, "pre"),
        ({"coarse": "cg"}, ValueError, "direct"),
        ({"smoother": "jacobi"}, TypeError, "GaussSeidel or Jacobi"),
        ({"cycle_dtype": torch.int32}, ValueError, "cycle_dtype to be torch.float32 or"),
    ],
)
def test_bad_arguments_raise_an_error_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        Multigrid(**kwargs)


def test_periodic_grid_that_stops_halving_too_large_is_refused():
    with pytest.raises(ValueError, match="at most 4096 unknowns"):
        Multigrid().prepare(Poisson2D(torch.zeros(1, 1, 202, 202), bc="periodic"))


def test_interleaved_with_gauss_seidel_through_the_engine():
    problem = _fno_darcy(3, 20, seed=4)
    solver = Interleave(GaussSeidel(), Multigrid(), pattern=(1, 1))
    result = solve(None, solver, problem, tol=0.0, rtol=1e-10, maxiter=40)
    assert result.retcode == ReturnCode.SUCCESS
    exact = _spsolve(problem)
    assert np.abs(result.u.flatten(1).numpy() - exact).max() <= 1e-7 * np.abs(exact).max()


def test_prepare_rejects_plain_tensors():
    with pytest.raises(TypeError, match="Poisson2D, Darcy2D"):
        Multigrid().prepare(torch.zeros(1, 1, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_solve_matches_cpu_solve():
    problem = _fno_darcy(2, 33)
    cpu = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-10, maxiter=20).u
    a = problem.a.cuda()
    gpu = solve(None, Multigrid(), Darcy2D(a), tol=0.0, rtol=1e-10, maxiter=20).u
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-8, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_high_contrast_k_cycle_matches_cpu_solve():
    problem = _high_contrast(2, 31, seed=4)
    cpu = solve(None, _robust(), problem, tol=0.0, rtol=1e-10, maxiter=40).u
    gpu_problem = Darcy2D(problem.a.cuda(), f=problem.f.cuda())
    gpu = solve(None, _robust(), gpu_problem, tol=0.0, rtol=1e-10, maxiter=40).u
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-8, atol=1e-12)


def test_smoother_default_is_gauss_seidel():
    assert isinstance(Multigrid().smoother, GaussSeidel)


def test_one_node_periodic_grid_gives_the_zero_solution():
    # On one periodic node every coupling wraps onto the node: A = 0, f is projected to
    # mean zero (so f = 0), and the mean-zero solution is 0.
    problem = Poisson2D(_rand(2, 1, 1, 1), bc="periodic")
    solver = Multigrid()
    ctx = solver.prepare(problem)
    assert torch.equal(solver.step(ctx, _rand(2, 1, 1, 1, seed=3), 0), torch.zeros(2, 1, 1, 1))
    result = solve(None, solver, problem, tol=1e-12, maxiter=5)
    assert result.retcode == ReturnCode.SUCCESS
    assert torch.equal(result.u, torch.zeros(2, 1, 1, 1, dtype=DT))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_small_periodic_grids_give_the_pseudo_inverse_solution(n):
    # Grids too small to coarsen: one dense solve of the regularised matrix, then mean zero.
    problem = Poisson2D(_rand(2, 1, n, n), bc="periodic")
    result = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-12, maxiter=3)
    for b, matrix in enumerate(problem.to_scipy()):
        exact = np.linalg.pinv(matrix.toarray()) @ problem.f[b, 0].numpy().ravel()
        assert np.abs(result.u[b, 0].numpy().ravel() - exact).max() < 1e-12 * np.abs(exact).max()


def _cycle_matrix(solver: Multigrid, problem) -> np.ndarray:
    """The linear map r -> one cycle from zero on A e = r, as a dense matrix."""
    n = problem.n
    units = torch.eye(n * n, dtype=DT).reshape(n * n, 1, n, n)
    batch = Darcy2D(problem.a.expand(n * n, -1, -1, -1), f=units)
    ctx = solver.prepare(batch)
    return solver._cycle(ctx, 0, None, units, solver.cycle).reshape(n * n, n * n).numpy().T


@pytest.mark.parametrize(
    "smoother_kwargs",
    [{}, {"ordering": "zebra"}, {"ordering": "zebra", "clusters": 0.25}],
    ids=["redblack", "zebra", "zebra-clusters"],
)
@pytest.mark.parametrize("cycle", ["V", "W"])
def test_symmetric_cycle_is_a_symmetric_positive_definite_preconditioner(cycle, smoother_kwargs):
    # CG needs M symmetric positive definite: post-smoothing in reverse colour (line) order,
    # cluster blocks first, makes the cycle the adjoint of itself; the default (same order)
    # cycle is not symmetric. The 1|1000 coefficient gives the cluster step blocks to relax.
    if "clusters" in smoother_kwargs:
        problem = _high_contrast(1, 11, seed=3)
        assert GaussSeidel(**smoother_kwargs).setup(problem.stencil, False).blocks.index
    else:
        problem = _fno_darcy(1, 11, seed=2)
    smoother = GaussSeidel(**smoother_kwargs)
    m = _cycle_matrix(Multigrid(cycle=cycle, smoother=smoother, symmetric=True), problem)
    assert np.abs(m - m.T).max() < 1e-12 * np.abs(m).max()
    assert np.linalg.eigvalsh(m).min() > 0
    plain = _cycle_matrix(Multigrid(cycle=cycle, smoother=smoother), problem)
    # Measured asymmetry: 5e-4 relative with zebra lines, larger with red-black points.
    assert np.abs(plain - plain.T).max() > 1e-6 * np.abs(plain).max()


def test_symmetric_cycle_needs_equal_sweeps_and_no_f_cycle():
    with pytest.raises(ValueError, match="pre == post for symmetric=True"):
        Multigrid(pre=2, post=1, symmetric=True)
    with pytest.raises(ValueError, match="cycle='F'"):
        Multigrid(cycle="F", symmetric=True)


def _high_contrast(batch: int, n: int, seed: int) -> Darcy2D:
    """Coefficient 1 or 1000 at every node, each with probability 1/2."""
    draw = torch.rand(batch, 1, n, n, generator=torch.Generator().manual_seed(seed), dtype=DT)
    return Darcy2D(torch.where(draw < 0.5, 1.0, 1000.0), f=_rand(batch, 1, n, n, seed=seed))


def _robust() -> Multigrid:
    return Multigrid.robust()


def _check_high_contrast_solve(n: int, seed: int) -> None:
    problem = _high_contrast(2, n, seed)
    result = solve(None, _robust(), problem, tol=0.0, rtol=1e-10, maxiter=40)
    assert result.retcode == ReturnCode.SUCCESS, result.iterations
    exact = _spsolve(problem)
    # cond(A) <= ~1e3 * 4 (n + 1)^2 / pi^2 < 1e6 here: a 1e-10 relative residual bounds the
    # relative error by 1e-4; measured errors are far smaller, 1e-6 keeps a margin of 100.
    error = np.abs(result.u.flatten(1).numpy() - exact).max(axis=1)
    assert (error <= 1e-6 * np.abs(exact).max(axis=1)).all(), error


# Coefficient 1 or 1000 drawn per node: the 1000-clusters are the near-null space that a
# geometric coarse grid misses. Measured over 40 samples per size, cycles to 1e-10 at most:
# 17 (n = 15), 20 (16), 21 (19), 24 (23 and 31), 26 (32); the default V(2,2) needs more than
# 500 for some samples at n = 15. The bound of 40 leaves room for other draws.
@settings(max_examples=5)
@given(n=st.sampled_from([15, 16, 19]), seed=st.integers(0, 2**31 - 1))
def test_robust_multigrid_solves_per_node_1_or_1000_darcy(n, seed):
    _check_high_contrast_solve(n, seed)


@pytest.mark.slow
@settings(max_examples=10)
@given(n=st.sampled_from([23, 31, 32, 47]), seed=st.integers(0, 2**31 - 1))
def test_robust_multigrid_solves_per_node_1_or_1000_darcy_at_larger_sizes(n, seed):
    _check_high_contrast_solve(n, seed)


def test_robust_multigrid_beats_the_default_cycle_at_high_contrast():
    # The benchmark's 63^2 case at 31^2: measured 22-24 robust cycles to 1e-8 against
    # 250-430 default V(2,2) cycles, so the default must still be short of 1e-8 after 100.
    problem = _high_contrast(2, 31, seed=5)
    robust = solve(None, _robust(), problem, tol=0.0, rtol=1e-8, maxiter=30)
    default = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-8, maxiter=100)
    assert robust.retcode == ReturnCode.SUCCESS
    assert all(code == ReturnCode.MAX_ITERS for code in default.retcodes)


def test_precondition_is_one_cycle_from_zero():
    problem = _fno_darcy(2, 15, seed=8, f=_rand(2, 1, 15, 15))
    solver = Multigrid()
    ctx = solver.prepare(problem)
    assert torch.equal(solver.precondition(ctx, problem.f), solver.step(ctx, problem.zeros(), 0))


def test_k_cycle_keeps_a_zero_residual_sample_at_zero():
    # A sample with f = 0 makes every inner product of the K-cycle vanish: no NaN, e = 0.
    problem = _fno_darcy(
        2, 20, seed=9, f=torch.cat([torch.zeros(1, 1, 20, 20), _rand(1, 1, 20, 20)])
    )
    out = _robust().step(_robust().prepare(problem), problem.zeros(), 0)
    assert torch.equal(out[0], torch.zeros_like(out[0])) and torch.isfinite(out).all()


def test_robust_preset_is_the_documented_configuration():
    solver = Multigrid.robust()
    assert (solver.cycle, solver.pre, solver.post, solver.coarsest) == ("K", 2, 2, 16)
    assert solver.smoother.ordering == "zebra" and solver.smoother.clusters == 0.25
    symmetric = Multigrid.robust(symmetric=True)
    assert (symmetric.cycle, symmetric.symmetric) == ("V", True)


def test_coarsest_factorisation_of_a_batch_is_valid_with_two_threads():
    # torch 2.13 on CPU with 2 threads returned invalid pivots from a batched lu_factor of
    # 225 x 225 coarse matrices; each sample is factorised alone. Reference: spsolve.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        problem = Poisson2D(_rand(3, 1, 31, 31))
        ctx = Multigrid(coarsest=16).prepare(problem)
        assert ctx.lu.shape == (3, 225, 225) and ctx.pivots.min() >= 1
        result = solve(None, Multigrid(coarsest=16), problem, tol=0.0, rtol=1e-12, maxiter=20)
    finally:
        torch.set_num_threads(threads)
    exact = _spsolve(problem)
    error = np.abs(result.u.flatten(1).numpy() - exact).max(axis=1)
    assert (error <= 1e-9 * np.abs(exact).max(axis=1)).all(), error


def test_robust_preset_refuses_a_periodic_grid_naming_the_line_smoother():
    with pytest.raises(ValueError, match="Dirichlet grid for zebra line relaxation"):
        Multigrid.robust().prepare(Poisson2D(torch.zeros(1, 1, 32, 32), bc="periodic"))
