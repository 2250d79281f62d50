"""Parallel cyclic reduction against scipy's banded LU solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from irsolve.solvers._tridiagonal import factorise, solve


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 33])
def test_pcr_solution_equals_scipy_banded_solve(n):
    # Diagonally dominant lines (|b| > |a| + |c|), as in relaxation of elliptic stencils;
    # the banded LU is backward stable there, so the two agree to a few ulps of cond ~ 10.
    g = torch.Generator().manual_seed(n)
    a, c = (-torch.rand(2, 3, n, generator=g, dtype=torch.float64) for _ in range(2))
    b = 2.0 + torch.rand(2, 3, n, generator=g, dtype=torch.float64)
    d = torch.randn(2, 3, n, generator=g, dtype=torch.float64)
    x = solve(factorise(a, b, c), d).numpy()
    for i in range(2):
        for j in range(3):
            bands = np.zeros((3, n))
            bands[0, 1:] = c[i, j, :-1].numpy()
            bands[1] = b[i, j].numpy()
            bands[2, :-1] = a[i, j, 1:].numpy()
            expected = sla.solve_banded((1, 1), bands, d[i, j].numpy())
            assert np.abs(x[i, j] - expected).max() < 1e-14 * np.abs(expected).max()


def test_one_factorisation_serves_many_right_hand_sides():
    n = 16
    a = torch.full((1, n), -1.0, dtype=torch.float64)
    b = torch.full((1, n), 2.0, dtype=torch.float64)
    t = factorise(a, b, a)
    d = torch.randn(5, 1, n, dtype=torch.float64)
    x = solve(t, d)
    # Residual of the 1-D Dirichlet Laplacian (cond ~ 100 at n = 16).
    residual = 2 * x - torch.nn.functional.pad(x[..., :-1], (1, 0))
    residual = residual - torch.nn.functional.pad(x[..., 1:], (0, 1)) - d
    assert residual.abs().max() < 1e-13 * d.abs().max()
