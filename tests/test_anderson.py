"""Anderson acceleration: same fixed point, far fewer steps on slow contractions."""

from __future__ import annotations

import pytest
import torch
from core_solvers import AffineMap, random_contraction

from irsolve import Anderson, solve


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


def test_anderson_rejects_bad_parameters():
    solver = _slow_contraction()
    with pytest.raises(ValueError, match="m >= 1"):
        Anderson(solver, m=0)
    with pytest.raises(ValueError, match="beta"):
        Anderson(solver, beta=1.5)
