"""PyAMG's SA + CG peer reaches scipy spsolve's solution of our problems."""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import spsolve

from irsolve.solvers import Darcy2D, darcy_coefficient, gaussian_random_field
from irsolve.solvers.peers import pyamg_cg


def test_pyamg_cg_reaches_the_tolerance_and_the_spsolve_solution():
    a = darcy_coefficient(gaussian_random_field(2, 15, generator=torch.Generator().manual_seed(0)))
    problem = Darcy2D(a)
    peer = pyamg_cg(problem, tol=1e-10)
    exact = [
        spsolve(m.tocsc(), problem.f[b].flatten().numpy()) for b, m in enumerate(problem.to_scipy())
    ]
    assert all(r <= 1e-10 for r in peer.relative_residuals)
    assert 1 <= max(peer.iterations) < 50
    # relative residual 1e-10 and cond(A) ~ 1e3 at 15^2 bound the relative error by ~1e-7
    assert max(peer.errors(exact)) < 1e-7
    assert np.isfinite(peer.wall_s) and peer.wall_s > 0
