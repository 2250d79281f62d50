"""Learned + classical steps in one solve reach the exact discrete solution (scipy spsolve).

A learned step whose step size decays geometrically moves the iterate by a
finite total ``sum_k alpha_k ||Phi||``; after that the classical step's
contraction takes over, so the composite converges to ``A^{-1} f`` itself,
judged on the physical residual.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import spsolve
from torch import nn

from irsolve import Interleave, ReturnCode, solve
from irsolve.solvers import (
    Darcy2D,
    GaussSeidel,
    GeometricAlpha,
    Multigrid,
    Refiner,
    darcy_coefficient,
    gaussian_random_field,
)


def _untrained_net(in_channels: int, out_channels: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, out_channels, 3, padding=1)
    )


def _darcy(n: int = 20, batch: int = 3) -> Darcy2D:
    grf = gaussian_random_field(batch, n, generator=torch.Generator().manual_seed(1))
    return Darcy2D(darcy_coefficient(grf))


def test_problem_features_feed_the_refiner_net():
    problem = _darcy()
    features = problem.features()
    assert features.shape == (3, 2, 20, 20)
    torch.testing.assert_close(features[:, :1], problem.a)
    torch.testing.assert_close(features[:, 1:], problem.f)


def test_learned_and_classical_steps_reach_the_exact_discrete_solution():
    problem = _darcy()
    refiner = Refiner(_untrained_net(3, 1), alpha=GeometricAlpha(alpha=0.2, gamma=0.5))
    for classical in (GaussSeidel(), Multigrid()):
        hybrid = Interleave(refiner, classical, pattern=(1, 2))
        sol = solve(None, hybrid, problem, tol=0.0, rtol=1e-10, maxiter=5000)
        assert sol.criterion == "residual"
        assert sol.retcodes == [ReturnCode.SUCCESS] * 3, sol
        assert sol.stats["steps_per_solver"]["Refiner"] > 0
        for b, matrix in enumerate(problem.to_scipy()):
            exact = spsolve(matrix.tocsc(), problem.f[b].flatten().numpy())
            error = np.linalg.norm(sol.u[b].flatten().numpy() - exact) / np.linalg.norm(exact)
            # rtol 1e-10 on the residual; cond(A) ~ 1e3 at n = 20 bounds the error by ~1e-7.
            assert error < 1e-7
