"""Tests of irsolve.analysis.certificate against closed forms (Corollary 3.3) and exact solves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from analysis_maps import AffineMap, QuadraticMap, random_matrix
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import Tensor

from irsolve import solve
from irsolve.analysis import Certificate, contraction_certificate
from irsolve.analysis.certificate import error_bound, invariant_radii
from irsolve.solvers import Darcy2D, GaussSeidel, darcy_coefficient, gaussian_random_field
from irsolve.solvers.jacobi import Jacobi
from irsolve.solvers.problems import Poisson2D

ACCURATE = {"iters": 300, "spectral_tol": 1e-12}


def _matrices(batch: int, n: int, top: float, seed: int) -> Tensor:
    """``(batch, n, n)`` with ``||M||_2 = top`` and the other singular values <= 0.8 top."""
    gen = torch.Generator().manual_seed(seed)
    mats = []
    for _ in range(batch):
        rest = 0.8 * top * torch.rand(n - 1, generator=gen, dtype=torch.float64)
        values = torch.cat([torch.tensor([top], dtype=torch.float64), rest])
        mats.append(random_matrix(n, values, gen))
    return torch.stack(mats)


def test_affine_map_has_zero_curvature_and_closed_form_radii_and_floor() -> None:
    batch, n, top = 3, 12, 0.7
    m = _matrices(batch, n, top, seed=0)
    y = torch.randn(batch, 1, n, dtype=torch.float64)
    # G(y) - y = 0.05 * noise: y is near the fixed point.
    g = y[:, 0] - torch.einsum("bij,bj->bi", m, y[:, 0]) + 0.05 * torch.randn(batch, n).double()
    h0 = y + torch.randn_like(y)
    cert = contraction_certificate(AffineMap(), AffineMap.pack(m, g), y, h0=h0, steps=6, **ACCURATE)

    # Independent references: the bias G(y) - y = (M - I) y + g, by NumPy.
    mn, yn, gn = m.numpy(), y[:, 0].numpy(), g.numpy()
    bias = np.linalg.norm(np.einsum("bij,bj->bi", mn, yn) - yn + gn, axis=1)
    np.testing.assert_allclose(cert.q.numpy(), top, rtol=1e-10)
    np.testing.assert_allclose(cert.lipschitz.numpy(), top, rtol=1e-10)
    assert bool((cert.c == 0).all()), cert.c  # affine: the Taylor remainder is round-off only
    np.testing.assert_allclose(cert.bias.numpy(), bias, rtol=1e-12)
    np.testing.assert_allclose(cert.r_minus.numpy(), bias / (1 - top), rtol=1e-9)
    np.testing.assert_allclose(cert.floor.numpy(), bias / (1 - top), rtol=1e-9)
    assert bool(torch.isinf(cert.r_plus).all())
    assert bool(cert.holds.all()) and bool(cert.within.all())
    # The default ball is the smallest one containing the trajectory.
    torch.testing.assert_close(cert.delta, cert.observed.amax(dim=0))


def test_quadratic_map_curvature_and_radii_equal_closed_form() -> None:
    batch, n, top, gamma = 4, 5, 0.5, 0.4
    m = _matrices(batch, n, top, seed=1)
    g = torch.randn(batch, n, dtype=torch.float64)
    g = g / g.norm(dim=1, keepdim=True) * torch.tensor([0.01, 0.05, 0.12, 0.2]).double()[:, None]
    y = torch.randn(batch, 1, n, dtype=torch.float64)
    x = QuadraticMap.pack(m, g, y[:, 0])
    cert = contraction_certificate(QuadraticMap(gamma), x, y, h0=y + 0.3, delta=1.0, **ACCURATE)

    beta = g.norm(dim=1)
    np.testing.assert_allclose(cert.q.numpy(), top, rtol=1e-10)
    np.testing.assert_allclose(cert.c.numpy(), gamma, rtol=1e-9)
    np.testing.assert_allclose(cert.bias.numpy(), beta.numpy(), rtol=1e-12)
    disc = (1 - top) ** 2 - 4 * gamma * beta.numpy()
    exists = disc >= 0
    root = np.sqrt(np.where(exists, disc, 0.0))
    r_minus = np.where(exists, ((1 - top) - root) / (2 * gamma), np.nan)
    r_plus = np.where(exists, ((1 - top) + root) / (2 * gamma), np.nan)
    np.testing.assert_allclose(cert.r_minus.numpy(), r_minus, rtol=1e-9)
    np.testing.assert_allclose(cert.r_plus.numpy(), r_plus, rtol=1e-9)
    np.testing.assert_array_equal(cert.holds.numpy(), exists & (r_minus <= 1.0))
    # beta = 0.2 > (1 - q)^2 / (4 c) = 0.15625: no invariant ball for the last sample.
    assert not bool(cert.holds[-1]) and bool(cert.holds[:2].all())
    np.testing.assert_allclose(cert.floor.numpy(), beta.numpy() / (1 - top), rtol=1e-9)


def test_invariant_radii_reduce_to_linear_case_and_reject_expansive_maps() -> None:
    q = torch.tensor([0.5, 0.5, 1.0, 1.2], dtype=torch.float64)
    c = torch.tensor([0.0, 1e-12, 0.0, 0.0], dtype=torch.float64)
    bias = torch.full((4,), 0.1, dtype=torch.float64)
    r_minus, r_plus = invariant_radii(q, c, bias)
    assert float(r_minus[0]) == 0.2 and math.isinf(float(r_plus[0]))
    # Tiny c: the stable form keeps r_- at beta / (1 - q) without cancellation.
    assert abs(float(r_minus[1]) - 0.2) < 1e-12 and float(r_plus[1]) > 1e11
    assert bool(torch.isnan(r_minus[2:]).all()) and bool(torch.isnan(r_plus[2:]).all())


def _dirichlet_laplacian(n: int) -> sp.csr_matrix:
    t = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = sp.identity(n)
    return ((sp.kron(eye, t) + sp.kron(t, eye)) * (n + 1) ** 2).tocsr()


def test_jacobi_at_exact_solution_has_zero_bias_and_observed_error_under_bound() -> None:
    n, omega = 6, 0.8
    f = torch.randn(2, 1, n, n, dtype=torch.float64)
    a = _dirichlet_laplacian(n)
    y = torch.stack([torch.from_numpy(spla.spsolve(a, fb.flatten().numpy())) for fb in f[:, 0]])
    y = y.view(2, 1, n, n)
    cert = contraction_certificate(Jacobi(omega=omega), Poisson2D(f), y, steps=8, **ACCURATE)

    iteration = np.eye(n * n) - omega * a.toarray() / a.diagonal()[:, None]
    exact_q = np.linalg.norm(iteration, 2)
    np.testing.assert_allclose(cert.q.numpy(), exact_q, rtol=1e-8)
    assert bool((cert.bias <= 1e-10 * y.flatten(1).norm(dim=1)).all())  # y is a fixed point
    assert bool((cert.c == 0).all()) and bool(cert.holds.all()) and bool(cert.within.all())
    # From h0 = 0 the error contracts by at most ||I - omega D^-1 A|| per step.
    ratios = cert.observed[1:] / cert.observed[:-1]
    assert bool((ratios <= exact_q * (1 + 1e-9)).all())


@given(
    n=st.integers(2, 4),
    top=st.floats(0.05, 0.9),
    gamma=st.floats(0.0, 2.0),
    bias=st.floats(0.0, 0.1),
    start=st.lists(st.floats(-1, 1), min_size=4, max_size=4),
    fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_certified_ball_is_invariant_and_iterates_end_within_predicted_bound(
    n: int, top: float, gamma: float, bias: float, start: list, fraction: float, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    m = _matrices(1, n, top, seed)
    g = torch.randn(1, n, generator=gen, dtype=torch.float64)
    g = bias * g / g.norm()
    y = torch.randn(1, 1, n, generator=gen, dtype=torch.float64)
    solver, x, delta = QuadraticMap(gamma), QuadraticMap.pack(m, g, y[:, 0]), 1.0
    # c is the same for every probe of this map, so two probes suffice.
    cert = contraction_certificate(
        solver, x, y, h0=y, steps=0, delta=delta, n_probe=2, generator=gen, **ACCURATE
    )
    assume(bool(cert.holds[0]))

    r_lo, r_hi = float(cert.r_minus[0]), min(float(cert.r_plus[0]), delta)
    radius = r_lo + 0.5 * (r_hi - r_lo)
    direction = torch.tensor(start[:n], dtype=torch.float64)
    assume(float(direction.norm()) > 1e-3)
    h = y + fraction * radius * (direction / direction.norm()).view(1, 1, n)
    q, c, beta = float(cert.q[0]), float(cert.c[0]), float(cert.bias[0])
    bound = float((h - y).norm())
    slack = 1e-12 * (1 + float(y.norm()))
    for k in range(60):
        h = solver.step(x, h, k)
        bound = q * bound + c * bound**2 + beta
        error = float((h - y).norm())
        assert error <= radius + slack  # B_r(y) is invariant
        assert error <= bound + slack  # Theorem 3.1, step by step
    # The bound sequence decreases to r_-, which is the floor beta / (1 - q) to first order.
    assert error <= max(bound, float(cert.r_minus[0])) + slack
    assert float(cert.r_minus[0]) >= float(cert.floor[0]) * (1 - 1e-12)


def test_repr_lists_every_sample_and_dict_is_json_ready() -> None:
    m = _matrices(2, 4, 0.6, seed=3)
    g = torch.zeros(2, 4, dtype=torch.float64)
    y = torch.randn(2, 1, 4, dtype=torch.float64)
    cert = contraction_certificate(AffineMap(), AffineMap.pack(m, g), y, steps=3)
    text = repr(cert)
    assert text.startswith("Certificate(batch=2, steps=3")
    assert len(text.splitlines()) == 2 + 2 and "holds" in text
    data = json.loads(json.dumps(cert.to_dict()))
    assert len(data["observed"]) == 4 and len(data["q"]) == 2
    assert isinstance(cert, Certificate)


def test_observed_errors_equal_those_of_the_engine_trajectory() -> None:
    m = _matrices(2, 5, 0.6, seed=4)
    g = torch.randn(2, 5, dtype=torch.float64)
    y = torch.randn(2, 1, 5, dtype=torch.float64)
    h0 = torch.zeros_like(y)
    x = AffineMap.pack(m, g)
    # tol = 0: the engine never declares convergence, so every sample takes 6 steps.
    sol = solve(h0, AffineMap(), x, tol=0.0, maxiter=6, save_trajectory=True)
    cert = contraction_certificate(AffineMap(), x, y, h0=h0, steps=6)
    engine_errors = (sol.trajectory - y).flatten(2).norm(dim=2)
    torch.testing.assert_close(cert.observed, engine_errors, rtol=1e-14, atol=0.0)


def test_points_per_call_chunks_give_the_same_certificate() -> None:
    m = _matrices(2, 6, 0.5, seed=5)
    y = torch.randn(2, 1, 6, dtype=torch.float64)
    x = QuadraticMap.pack(m, 0.01 * torch.randn(2, 6, dtype=torch.float64), y[:, 0])
    runs = [
        contraction_certificate(
            QuadraticMap(0.3),
            x,
            y,
            h0=y + 0.2,
            steps=4,
            n_probe=3,
            delta=1.0,
            iters=300,
            spectral_tol=0.0,
            generator=torch.Generator().manual_seed(0),
            points_per_call=per_call,
        )
        for per_call in (None, 2)
    ]
    for name in ("q", "c", "lipschitz", "r_minus", "observed"):
        torch.testing.assert_close(getattr(runs[0], name), getattr(runs[1], name))


def test_expansive_map_is_not_certified_and_has_infinite_floor() -> None:
    m = _matrices(2, 4, 2.0, seed=6)  # ||M|| = 2: the error can double every step
    y = torch.randn(2, 1, 4, dtype=torch.float64)
    g = y[:, 0] - torch.einsum("bij,bj->bi", m, y[:, 0])  # y is the (repelling) fixed point
    cert = contraction_certificate(AffineMap(), AffineMap.pack(m, g), y, h0=y + 1.0, **ACCURATE)
    np.testing.assert_allclose(cert.q.numpy(), 2.0, rtol=1e-9)
    assert not bool(cert.holds.any()) and bool(torch.isinf(cert.floor).all())
    assert bool(torch.isnan(cert.r_minus).all())


def _dense_step_matrix(solver, a: Tensor) -> np.ndarray:
    """Error propagation ``E`` of one step on ``Darcy2D(a)`` (one sample), column by column:
    with ``f = 0`` the step maps the unit vector ``e_j`` to ``E e_j``."""
    n = a.shape[-1]
    unknowns = n * n
    zero_rhs = Darcy2D(a.repeat(unknowns, 1, 1, 1), f=0.0)
    basis = torch.eye(unknowns, dtype=torch.float64).reshape(unknowns, 1, n, n)
    columns = solver.step(solver.prepare(zero_rhs), basis, 0).reshape(unknowns, unknowns)
    return columns.T.numpy()


def test_gauss_seidel_certified_in_energy_norm_where_the_2_norm_exceeds_one() -> None:
    # Gauss-Seidel on SPD A: A - E^T A E = (M^-1 A)^T D (M^-1 A) > 0 with M = D + L in the
    # sweep's ordering, so ||E||_A < 1 (see irsolve.analysis.norms), while ||E||_2
    # of the red-black sweep exceeds one here. Reference: ||A^{1/2} E A^{-1/2}||_2 from the
    # dense E (built column by column) and the eigendecomposition of A; Lanczos with 300
    # products on 64 unknowns spans the whole space, so they agree to round-off.
    n = 8
    gen = torch.Generator().manual_seed(0)
    a = darcy_coefficient(gaussian_random_field(2, n, generator=gen))
    problem = Darcy2D(a, f=torch.randn(2, 1, n, n, dtype=torch.float64, generator=gen))
    y = torch.stack(
        [
            torch.from_numpy(spla.spsolve(m.tocsc(), problem.f[b].flatten().numpy()))
            for b, m in enumerate(problem.to_scipy())
        ]
    ).reshape(2, 1, n, n)
    solver = GaussSeidel()
    energy = contraction_certificate(solver, problem, y, norm="energy", **ACCURATE)
    euclid = contraction_certificate(solver, problem, y, norm="l2", **ACCURATE)
    for b in range(2):
        matrix = problem.to_scipy()[b].toarray()
        step = _dense_step_matrix(solver, a[b : b + 1])
        lam, vec = np.linalg.eigh(matrix)
        half = vec @ np.diag(np.sqrt(lam)) @ vec.T
        inverse_half = vec @ np.diag(1 / np.sqrt(lam)) @ vec.T
        assert energy.q[b].item() == pytest.approx(
            np.linalg.norm(half @ step @ inverse_half, 2), rel=1e-10
        )
        assert euclid.q[b].item() == pytest.approx(np.linalg.norm(step, 2), rel=1e-10)
    assert bool((energy.q < 1).all()) and bool(energy.holds.all()) and bool(energy.within.all())
    assert bool((euclid.q > 1).all()) and not bool(euclid.holds.any())
    # The observed errors are A-norms: compare with e^T A e computed by scipy.
    e0 = (torch.zeros_like(y) - y).flatten(1).numpy()
    a_norms = [math.sqrt(e0[b] @ (problem.to_scipy()[b] @ e0[b])) for b in range(2)]
    np.testing.assert_allclose(energy.observed[0].numpy(), a_norms, rtol=1e-12)
    assert energy.norm == "energy" and "norm='energy'" in repr(energy)


def test_error_bound_runs_every_step_without_a_ball_and_stops_at_its_edge_with_one() -> None:
    start, q = torch.tensor([1.0]), torch.tensor([1.1])
    c, bias = torch.tensor([0.5]), torch.tensor([0.1])
    free = error_bound(start, q, c, bias, 3)
    expected = [1.0]
    for _ in range(3):
        expected.append(1.1 * expected[-1] + 0.5 * expected[-1] ** 2 + 0.1)
    assert free.flatten().tolist() == pytest.approx(expected)
    cut = error_bound(start, q, c, bias, 3, delta=torch.tensor([1.0]))
    assert cut.flatten().tolist()[:2] == pytest.approx(expected[:2])
    assert torch.isinf(cut[2:]).all()
