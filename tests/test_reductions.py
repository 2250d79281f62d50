"""Per-sample reductions against NumPy (``numpy.vdot``, ``numpy.linalg.norm`` on exact data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from irsolve import reductions, solve
from irsolve.solvers import Darcy2D, Jacobi, Multigrid, darcy_coefficient, gaussian_random_field


def test_dot_conjugates_its_first_argument_like_numpy_vdot():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 2, 5, dtype=torch.complex128, generator=gen)
    b = torch.randn(3, 2, 5, dtype=torch.complex128, generator=gen)
    expected = [np.vdot(a[i].numpy(), b[i].numpy()) for i in range(3)]
    assert np.allclose(reductions.dot(a, b).numpy(), expected, rtol=1e-14)
    assert torch.allclose(reductions.dot(a, a).real, reductions.norm(a) ** 2, rtol=1e-13)


@pytest.mark.parametrize("size", [1e-170, 1.0, 1e170])
def test_norm_and_rms_neither_underflow_nor_overflow(size):
    # Entries (3, 4, 0, 0) * size: ||t|| = 5 size, rms = 2.5 size, max 4 size.
    t = torch.tensor([[3.0, 4.0, 0.0, 0.0]], dtype=torch.float64) * size
    assert math.isclose(float(reductions.norm(t)), 5 * size, rel_tol=1e-15)
    assert math.isclose(float(reductions.rms(t)), 2.5 * size, rel_tol=1e-15)
    assert math.isclose(float(reductions.max_abs(t)), 4 * size, rel_tol=1e-15)


def test_norm_of_zero_nan_and_inf_samples():
    t = torch.tensor([[0.0, 0.0], [1.0, math.nan], [math.inf, 1.0]], dtype=torch.float64)
    out = reductions.norm(t)
    assert out[0] == 0 and math.isnan(out[1]) and math.isinf(out[2])


def test_broadcast_views_per_sample_values_against_a_batch():
    values = torch.tensor([1.0, 2.0])
    like = torch.ones(2, 3, 4, 4)
    assert reductions.broadcast(values, like).shape == (2, 1, 1, 1)
    assert torch.equal((reductions.broadcast(values, like) * like)[:, 0, 0, 0], values)


@pytest.mark.parametrize("solver", [Multigrid(), Jacobi(sweeps=4)], ids=["multigrid", "jacobi"])
def test_a_right_hand_side_of_size_1e_170_is_solved_not_declared_solved_at_zero(solver):
    # The problem is linear: u(1e-170 f) = 1e-170 u(f); the rescaled solve is the reference.
    a = darcy_coefficient(gaussian_random_field(2, 15, generator=torch.Generator().manual_seed(1)))
    tiny = Darcy2D(a, f=torch.full((2, 1, 15, 15), 1e-170, dtype=torch.float64))
    sol = solve(None, solver, tiny, tol=0.0, rtol=1e-6, maxiter=3000)
    reference = solve(None, solver, Darcy2D(a), tol=0.0, rtol=1e-6, maxiter=3000)
    assert sol.success and int(sol.iterations.min()) > 0
    assert sol.iterations.tolist() == reference.iterations.tolist()
    assert torch.allclose(sol.u / 1e-170, reference.u, rtol=1e-10, atol=0)
