"""irsolve.analysis.lipschitz_estimates against dense references (SVD of known matrices)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from analysis_maps import AffineMap, random_matrix
from torch import Tensor, nn

from irsolve.analysis import lipschitz
from irsolve.analysis.lipschitz_estimates import empirical_lipschitz, spectral_norm
from irsolve.interface import FixedPointSolver
from irsolve.solvers import Darcy2D, darcy_coefficient, gaussian_random_field
from irsolve.solvers.jacobi import Jacobi
from irsolve.solvers.problems import Poisson2D


def _affine_batch(batch: int, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Matrices with a top singular value in [0.5, 2] and the rest at most 0.9 of it."""
    gen = torch.Generator().manual_seed(seed)
    mats = []
    for _ in range(batch):
        top = 0.5 + 1.5 * torch.rand((), generator=gen, dtype=torch.float64)
        rest = 0.9 * top * torch.rand(n - 1, generator=gen, dtype=torch.float64)
        mats.append(random_matrix(n, torch.cat([top[None], rest]), gen))
    m = torch.stack(mats)
    g = torch.randn(batch, n, generator=gen, dtype=torch.float64)
    return m, g


def test_power_estimate_within_one_percent_of_svd_norm_in_30_pairs() -> None:
    m, g = _affine_batch(batch=5, n=40, seed=1)
    h = torch.randn(5, 1, 40, dtype=torch.float64)
    x = AffineMap.pack(m, g)
    estimate = lipschitz(AffineMap(), x, h, method="power", iters=30, spectral_tol=0.0)
    exact = torch.linalg.matrix_norm(m, ord=2)  # LAPACK SVD
    assert torch.allclose(estimate, exact, rtol=1e-2, atol=0.0)
    # Power iteration approaches sigma_max from below.
    assert bool((estimate <= exact * (1 + 1e-12)).all())


def test_empirical_quotient_equals_scale_of_scaled_orthogonal_map() -> None:
    # M = s Q with Q orthogonal: every difference quotient equals s exactly.
    gen = torch.Generator().manual_seed(2)
    scales = torch.tensor([0.3, 1.7], dtype=torch.float64)
    m = torch.stack(
        [random_matrix(8, torch.full((8,), float(s), dtype=torch.float64), gen) for s in scales]
    )
    x = AffineMap.pack(m, torch.zeros(2, 8, dtype=torch.float64))
    h = torch.randn(2, 1, 8, dtype=torch.float64)
    estimate = lipschitz(AffineMap(), x, h, method="empirical", n_pairs=4, generator=gen)
    # Differences of points 1 % of ||h|| apart lose ~100 ulps to cancellation.
    assert torch.allclose(estimate, scales, rtol=1e-10)


def test_empirical_quotient_never_exceeds_svd_norm() -> None:
    m, g = _affine_batch(batch=3, n=10, seed=3)
    h = torch.randn(3, 1, 10, dtype=torch.float64)
    estimate = lipschitz(AffineMap(), AffineMap.pack(m, g), h, method="empirical", n_pairs=64)
    exact = torch.linalg.matrix_norm(m, ord=2)
    assert bool((estimate <= exact * (1 + 1e-12)).all())
    assert bool((estimate >= torch.linalg.svdvals(m)[:, -1]).all())


def _dirichlet_laplacian(n: int) -> np.ndarray:
    """Dense 5-point Laplacian with zero Dirichlet values, h = 1/(n+1), built by Kronecker sums."""
    t = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = sp.identity(n)
    return ((sp.kron(eye, t) + sp.kron(t, eye)) * (n + 1) ** 2).toarray()


@pytest.mark.parametrize("omega", [0.8, 1.0])
def test_jacobi_on_poisson_estimate_equals_dense_iteration_matrix_norm(omega: float) -> None:
    n = 6
    f = torch.randn(2, 1, n, n, dtype=torch.float64)
    a = _dirichlet_laplacian(n)
    iteration = np.eye(n * n) - omega * a / np.diag(a)[:, None]
    exact = np.linalg.norm(iteration, 2)  # dense SVD
    h = torch.randn(2, 1, n, n, dtype=torch.float64)
    estimate = lipschitz(Jacobi(omega=omega), Poisson2D(f), h, iters=60, spectral_tol=0.0)
    np.testing.assert_allclose(estimate.numpy(), exact, rtol=1e-8)


class _ConvStep(FixedPointSolver):
    """``G(h) = h + 0.2 conv2(tanh(conv1([x; h])))``: a tiny nonlinear learned-like step."""

    default_dtype = torch.float64

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(4)
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1).double()
        self.conv2 = nn.Conv2d(4, 1, 3, padding=1).double()
        for p in (*self.conv1.parameters(), *self.conv2.parameters()):
            p.data = torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5

    def step(self, ctx: Tensor, h: Tensor, k: int) -> Tensor:
        return h + 0.2 * self.conv2(torch.tanh(self.conv1(torch.cat([ctx, h], dim=1))))


def test_nonlinear_step_estimate_equals_svd_of_autograd_jacobian() -> None:
    solver = _ConvStep()
    x = torch.randn(3, 1, 5, 5, dtype=torch.float64)
    h = torch.randn(3, 1, 5, 5, dtype=torch.float64)
    # sigma_2 / sigma_1 is about 0.97 here: power iteration would need hundreds of pairs.
    estimate = lipschitz(solver, x, h, method="lanczos", iters=25, spectral_tol=0.0)
    for b in range(3):

        def flat_step(v: Tensor, b: int = b) -> Tensor:
            return solver.step(x[b : b + 1], v.view(1, 1, 5, 5), 0).flatten()

        jac = torch.autograd.functional.jacobian(flat_step, h[b].flatten())
        exact = float(torch.linalg.matrix_norm(jac, 2))  # dense SVD
        assert float(estimate[b]) == pytest.approx(exact, rel=1e-8)


class _SquareWithoutForwardMode(torch.autograd.Function):
    """``h -> h^2`` with a backward rule only: forward-mode AD raises NotImplementedError."""

    @staticmethod
    def forward(h: Tensor) -> Tensor:
        return h**2

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        (h,) = ctx.saved_tensors
        return 2 * h * grad


def test_step_without_forward_mode_rule_falls_back_to_reverse_mode() -> None:
    # J = diag(2 h) (elementwise square), so ||J||_2 = 2 max |h|.
    h = torch.randn(4, 1, 7, dtype=torch.float64)
    estimate = spectral_norm(_SquareWithoutForwardMode.apply, h, iters=300, tol=1e-13)
    expected = 2 * h.abs().flatten(1).amax(dim=1)
    assert torch.allclose(estimate, expected, rtol=1e-6)


def test_zero_jacobian_gives_zero_not_nan() -> None:
    h = torch.randn(2, 1, 4, dtype=torch.float64)
    assert torch.equal(spectral_norm(lambda v: torch.zeros_like(v), h), torch.zeros(2).double())


def test_unknown_method_is_rejected_with_the_accepted_names() -> None:
    m, g = _affine_batch(batch=1, n=3, seed=5)
    with pytest.raises(
        ValueError, match="lipschitz: expected method.*'power', 'lanczos', 'empirical'"
    ):
        lipschitz(AffineMap(), AffineMap.pack(m, g), torch.zeros(1, 1, 3), method="svd")


def test_empirical_default_radius_handles_zero_point() -> None:
    m, g = _affine_batch(batch=2, n=5, seed=6)
    step_x = AffineMap.pack(m, g)
    from irsolve.analysis.stepmap import StepMap

    estimate = empirical_lipschitz(StepMap(AffineMap(), step_x), torch.zeros(2, 1, 5).double())
    assert bool(torch.isfinite(estimate).all()) and bool((estimate > 0).all())


def test_lanczos_reaches_round_off_on_clustered_spectrum_and_beats_power() -> None:
    # Gaussian matrices: the top singular values cluster (ratio ~0.97), power iteration is slow.
    m = torch.randn(4, 40, 40, dtype=torch.float64) / 8
    x = AffineMap.pack(m, torch.zeros(4, 40, dtype=torch.float64))
    h = torch.randn(4, 1, 40, dtype=torch.float64)
    exact = torch.linalg.matrix_norm(m, ord=2)
    runs = {
        method: lipschitz(
            AffineMap(),
            x,
            h,
            method=method,
            iters=30,
            spectral_tol=0.0,
            generator=torch.Generator().manual_seed(0),
        )
        for method in ("lanczos", "power")
    }
    torch.testing.assert_close(runs["lanczos"], exact, rtol=1e-10, atol=0.0)
    # Same start vector: the Krylov space contains the power iterate, so Lanczos is never worse.
    assert bool((runs["lanczos"] >= runs["power"] * (1 - 1e-14)).all())


def test_lanczos_survives_breakdown_on_low_rank_jacobian() -> None:
    # rank 2: the Krylov space is exhausted after 2 products (beta = 0).
    gen = torch.Generator().manual_seed(7)
    values = torch.tensor([1.3, 0.4] + [0.0] * 8, dtype=torch.float64)
    m = torch.stack([random_matrix(10, values, gen) for _ in range(2)])
    x = AffineMap.pack(m, torch.zeros(2, 10, dtype=torch.float64))
    h = torch.randn(2, 1, 10, dtype=torch.float64)
    estimate = lipschitz(AffineMap(), x, h, method="lanczos", iters=8, spectral_tol=0.0)
    torch.testing.assert_close(estimate, torch.full((2,), 1.3, dtype=torch.float64))


def _darcy(batch: int, n: int, seed: int) -> Darcy2D:
    gen = torch.Generator().manual_seed(seed)
    a = darcy_coefficient(gaussian_random_field(batch, n, generator=gen))
    return Darcy2D(a, f=torch.randn(batch, 1, n, n, dtype=torch.float64, generator=gen))


def test_default_estimate_within_one_percent_of_dense_svd_on_darcy_jacobi() -> None:
    # Jacobi's iteration matrix I - omega D^-1 A on a 15 x 15 Darcy problem has clustered top
    # singular values (power iteration stopped 1.7-2.3 % low there); the default (Lanczos)
    # must be within 1 % of the dense SVD and, being a Rayleigh quotient, not above it.
    problem = _darcy(batch=3, n=15, seed=0)
    exact = []
    for matrix in problem.to_scipy():
        a = matrix.toarray()
        exact.append(np.linalg.norm(np.eye(a.shape[0]) - 0.8 * a / np.diag(a)[:, None], 2))
    exact = torch.tensor(exact, dtype=torch.float64)
    h = torch.randn(3, 1, 15, 15, dtype=torch.float64)
    estimate = lipschitz(Jacobi(omega=0.8), problem, h, generator=torch.Generator().manual_seed(1))
    assert bool((estimate >= 0.99 * exact).all()), (estimate / exact).tolist()
    assert bool((estimate <= exact * (1 + 1e-12)).all())


def _energy_norm_reference(iteration: np.ndarray, a: np.ndarray) -> float:
    """``||A^{1/2} E A^{-1/2}||_2`` with ``A^{1/2}`` from the eigendecomposition of ``A``."""
    lam, vec = np.linalg.eigh(a)
    half = vec @ np.diag(np.sqrt(lam)) @ vec.T
    inverse_half = vec @ np.diag(1 / np.sqrt(lam)) @ vec.T
    return float(np.linalg.norm(half @ iteration @ inverse_half, 2))


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_energy_norm_of_jacobi_equals_dense_a_norm_of_iteration_matrix(method: str) -> None:
    # Both iterations run in the A-inner product; with 80 products on 36 unknowns Lanczos
    # spans the whole space (round-off); power needs (sigma_2/sigma_1)^(2i) -> 1e-6 relative.
    problem = _darcy(batch=2, n=6, seed=2)
    exact = []
    for matrix in problem.to_scipy():
        a = matrix.toarray()
        exact.append(_energy_norm_reference(np.eye(36) - 0.8 * a / np.diag(a)[:, None], a))
    exact = torch.tensor(exact, dtype=torch.float64)
    h = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    estimate = lipschitz(
        Jacobi(omega=0.8), problem, h, method=method, norm="energy", iters=80, spectral_tol=0.0
    )
    torch.testing.assert_close(estimate, exact, rtol=1e-10 if method == "lanczos" else 1e-4, atol=0)


def test_energy_norm_empirical_quotient_never_exceeds_the_a_norm() -> None:
    problem = _darcy(batch=2, n=5, seed=3)
    exact = []
    for matrix in problem.to_scipy():
        a = matrix.toarray()
        exact.append(_energy_norm_reference(np.eye(25) - 0.8 * a / np.diag(a)[:, None], a))
    exact = torch.tensor(exact, dtype=torch.float64)
    h = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    estimate = lipschitz(Jacobi(), problem, h, method="empirical", norm="energy", n_pairs=32)
    assert bool((estimate <= exact * (1 + 1e-10)).all())
    assert bool((estimate > 0.1 * exact).all())


def test_energy_norm_needs_a_symmetric_positive_definite_problem() -> None:
    h = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match="lipschitz: norm='energy' needs x to be a StencilProblem"):
        lipschitz(AffineMap(), torch.zeros(1, 2, 1), torch.zeros(1, 1, 1), norm="energy")
    singular = Poisson2D(torch.randn(1, 1, 4, 4), bc="periodic")  # constants: null space
    with pytest.raises(ValueError, match=r"lipschitz: .*A not positive definite in samples \[0\]"):
        lipschitz(Jacobi(), singular, h, norm="energy")
