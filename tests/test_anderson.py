"""Anderson acceleration: same fixed point, far fewer steps on slow contractions."""

from __future__ import annotations

import pytest
import torch
from core_solvers import AffineMap, random_contraction

from irsolve import Anderson, init, solve


def _slow_contraction(batch: int = 3, n: int = 30, q: float = 0.99):
    gen = torch.Generator().manual_seed(7)
    matrix = random_contraction(batch, n, q, gen)
    # Symmetrise so the slowest mode really decays like q^k (a normal matrix).
    matrix = 0.5 * (matrix + matrix.transpose(1, 2))
    matrix = q * matrix / torch.linalg.matrix_norm(matrix, ord=2)[:, None, None]
    shift = torch.randn(batch, n, dtype=torch.float64, generator=gen)
    return AffineMap(matrix, shift)


def test_anderson_needs_at_most_a_fifth_of_plain_iterations_at_q_099():
    solver = _slow_contraction()
    h0 = torch.zeros(3, 30, dtype=torch.float64)
    plain = solve(h0, solver, h0, tol=1e-8, maxiter=20000)
    accelerated = solve(h0, Anderson(solver, m=5), h0, tol=1e-8, maxiter=20000)
    assert plain.success and accelerated.success
    assert accelerated.stats["sample_steps"] * 5 <= plain.stats["sample_steps"]
    # Stop at rms update 1e-8; the contraction bound q / (1 - q) * tol * sqrt(n) = 5.4e-6.
    torch.testing.assert_close(accelerated.u, solver.fixed_point(), atol=5.5e-6, rtol=0)


def test_anderson_history_lives_in_context_so_one_object_serves_two_solves():
    solver = Anderson(_slow_contraction(), m=4)
    h0 = torch.zeros(3, 30, dtype=torch.float64)
    first = solve(h0, solver, h0, tol=1e-8, maxiter=5000)
    second = solve(h0, solver, h0, tol=1e-8, maxiter=5000)
    assert torch.equal(first.u, second.u) and torch.equal(first.iterations, second.iterations)


def test_anderson_rejects_bad_parameters_naming_them():
    solver = _slow_contraction()
    with pytest.raises(ValueError, match="Anderson: expected m to be an int >= 1, got 0"):
        Anderson(solver, m=0)
    with pytest.raises(ValueError, match="Anderson: expected beta"):
        Anderson(solver, beta=1.5)
    with pytest.raises(ValueError, match="Anderson: expected lam .* got nan"):
        Anderson(solver, lam=float("nan"))


def _symmetric_q099_map(batch: int = 8, n: int = 64) -> AffineMap:
    """``G(h) = M h + c``, ``M = Q diag(lambda) Q^T`` with ``lambda`` uniform in [-0.99, 0.99]
    and both ends present: plain iteration contracts by 0.99 per step, and ``I - M`` has
    condition number 199, the hard case for Anderson (GMRES) among symmetric spectra of
    radius 0.99."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(batch, n, n, dtype=torch.float64, generator=gen))
    eigenvalues = torch.empty(batch, n, dtype=torch.float64).uniform_(-0.99, 0.99, generator=gen)
    eigenvalues[:, 0], eigenvalues[:, 1] = 0.99, -0.99
    matrix = q @ torch.diag_embed(eigenvalues) @ q.transpose(1, 2)
    return AffineMap(matrix, torch.randn(batch, n, dtype=torch.float64, generator=gen))


def _steps_to_rms_error(solver, target: float, amap: AffineMap, maxiter: int = 1000) -> int:
    """Steps until every sample's RMS error to the exact fixed point is <= ``target``."""
    exact = amap.fixed_point()
    h0 = torch.zeros_like(exact)
    for state in init(h0, solver, h0, tol=1e-10, maxiter=maxiter):
        if bool(((state.current_iterates() - exact).square().mean(dim=1).sqrt() <= target).all()):
            return state.k
    return maxiter + 1


def test_anderson_64_reaches_1e_8_within_80_steps_and_more_memory_never_costs_steps():
    # With m >= n = 64 type-II Anderson on an affine map is GMRES on (I - M) h = c
    # (Walker & Ni 2011), which terminates in at most n + 1 steps in exact arithmetic;
    # plain iteration needs log(1e-9) / log(0.99) ~ 2,000. 80 leaves room for round-off.
    amap = _symmetric_q099_map()
    steps = {m: _steps_to_rms_error(Anderson(amap, m=m), 1e-8, amap) for m in (6, 20, 64)}
    assert steps[64] <= 80, steps
    assert steps[64] <= steps[20] <= steps[6], steps
