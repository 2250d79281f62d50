"""Losses of the learned refiner against hand computations (NumPy FFT, explicit loops, SVD)."""

import math

import numpy as np
import pytest
import torch

from irsolve.learned.losses import (
    fixed_point_loss,
    jacobian_penalty,
    mse,
    progressive_lambda,
    progressive_spectral_loss,
    relative_l2_loss,
    spectral_loss,
    spectral_weights,
)
from irsolve.learned.nets import RefinementUNet
from irsolve.solvers import Refiner


def _spectral_loss_by_hand(pred: np.ndarray, target: np.ndarray, lam: float) -> float:
    """The IRNO paper's weights ``1 + (|w| / 0.5)^lam``, an explicit loop over the rfft2 grid."""
    height, width = pred.shape[-2:]
    amp_p = np.abs(np.fft.rfft2(pred, norm="ortho"))
    amp_y = np.abs(np.fft.rfft2(target, norm="ortho"))
    rho = np.empty((height, width // 2 + 1))
    for i in range(height):
        fx = i / height if i < (height + 1) // 2 else (i - height) / height
        for j in range(width // 2 + 1):
            fy = j / width
            rho[i, j] = 1.0 + (math.hypot(fx, fy) / 0.5) ** lam
    rho /= rho.mean()
    return float(np.mean(rho * (amp_p - amp_y) ** 2))


@pytest.mark.parametrize(("shape", "lam"), [((2, 1, 4, 4), 1.0), ((1, 2, 5, 6), 2.0)])
def test_spectral_loss_matches_hand_computation(shape, lam):
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    got = spectral_loss(torch.from_numpy(pred), torch.from_numpy(target), lam)
    assert got.item() == pytest.approx(_spectral_loss_by_hand(pred, target, lam), rel=1e-12)


def test_spectral_weights_have_mean_one_and_grow_with_frequency():
    rho = spectral_weights(8, 8, 2.0, dtype=torch.float64)
    assert rho.shape == (8, 5)
    assert rho.mean().item() == pytest.approx(1.0, rel=1e-12)
    # Along fy (row 0) the radius grows monotonically from 0 to Nyquist.
    assert torch.all(torch.diff(rho[0]) > 0)
    # rho(Nyquist) / rho(0) = (1 + 1^lam) / (1 + 0) = 2 before normalisation.
    assert (rho[0, -1] / rho[0, 0]).item() == pytest.approx(2.0, rel=1e-12)


def test_spectral_loss_ignores_phase_so_a_circular_shift_costs_nothing():
    target = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    shifted = torch.roll(target, shifts=(3, 5), dims=(-2, -1))
    assert spectral_loss(shifted, target, 1.5).item() == pytest.approx(0.0, abs=1e-24)
    assert mse(shifted, target).item() > 0.1


def test_progressive_lambda_runs_from_start_to_end_over_the_horizon():
    assert progressive_lambda(0, 6) == 1.0
    assert progressive_lambda(5, 6) == 2.0
    assert progressive_lambda(2, 5) == pytest.approx(1.5)
    assert progressive_lambda(9, 6) == 2.0  # unrolls past K keep lam_end
    assert progressive_lambda(0, 1, 1.3, 2.0) == 1.3
    with pytest.raises(ValueError, match="K >= 1"):
        progressive_lambda(0, 0)


def test_progressive_spectral_loss_uses_lambda_k():
    pred, target = torch.randn(2, 1, 6, 6), torch.randn(2, 1, 6, 6)
    got = progressive_spectral_loss(pred, target, k=1, K=3, lam_start=1.0, lam_end=3.0)
    torch.testing.assert_close(got, spectral_loss(pred, target, 2.0))


def test_fixed_point_loss_is_mean_square_of_the_correction_at_the_target():
    # Phi([x; y]) = x - 2 y, so the loss is mean((x - 2y)^2), computed by hand.
    x = torch.tensor([[[[1.0, 2.0]]]])
    y = torch.tensor([[[[0.5, 3.0]]]])
    loss = fixed_point_loss(Refiner(lambda z: z[:, :1] - 2 * z[:, 1:]), x, y)
    assert loss.item() == pytest.approx(((1 - 1) ** 2 + (2 - 6) ** 2) / 2)


def test_fixed_point_loss_goes_through_the_refiners_checks():
    x = torch.zeros(1, 1, 1, 2)
    with pytest.raises(ValueError, match="batch and spatial sizes of x"):
        fixed_point_loss(Refiner(lambda z: z[:, 1:]), x, torch.zeros(1, 1, 1, 3))
    net = RefinementUNet(2, 1, base_channels=2, depth=1, norm="group")
    with pytest.raises(ValueError, match=r"2 channels together \(the net's in_channels\)"):
        fixed_point_loss(Refiner(net), torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))


def test_relative_l2_and_mse_match_closed_forms():
    y = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    p = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert relative_l2_loss(p, y).item() == pytest.approx((0 / 5 + 1 / 1) / 2)
    assert mse(p, y).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match=r"same shape.*\(2, 2\) and \(2, 3\)"):
        mse(p, torch.zeros(2, 3))


def _batched_linear_map():
    torch.manual_seed(1)
    A = 0.4 * torch.randn(3, 6, 6, dtype=torch.float64)
    return A, lambda h: torch.einsum("bij,bcj->bci", A, h)


def test_power_iteration_penalty_matches_the_svd_spectral_norm():
    A, fn = _batched_linear_map()
    h = torch.randn(3, 1, 6, dtype=torch.float64)
    got = jacobian_penalty(fn, h, method="power", n_iter=100)
    expected = torch.linalg.matrix_norm(A, ord=2).square().mean()
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=0)


def test_hutchinson_penalty_estimates_the_mean_squared_singular_value():
    A, fn = _batched_linear_map()
    h = torch.randn(3, 1, 6, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    got = jacobian_penalty(fn, h, method="hutchinson", n_iter=4000, generator=gen)
    expected = (A.square().sum(dim=(1, 2)) / 6).mean()
    # Unbiased estimator; its relative standard error at 4000 probes is ~1 %.
    torch.testing.assert_close(got, expected, rtol=0.05, atol=0)


def test_jacobian_penalty_is_differentiable_in_the_map_parameters():
    w = torch.tensor(0.7, requires_grad=True)
    penalty = jacobian_penalty(lambda h: w * h, torch.randn(2, 1, 4), method="power", n_iter=3)
    (grad,) = torch.autograd.grad(penalty, w)
    # ||J||^2 = w^2 for J = w I, so d/dw = 2 w.
    assert penalty.item() == pytest.approx(0.49, rel=1e-6)
    assert grad.item() == pytest.approx(1.4, rel=1e-6)
