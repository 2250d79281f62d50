"""Gaussian random fields and the FNO Darcy coefficient."""

from __future__ import annotations

import math

import pytest
import torch

from irsolve.solvers import darcy_coefficient, gaussian_random_field


def test_pointwise_variance_equals_spectral_sum_of_covariance_operator():
    n, alpha, tau = 16, 2.0, 3.0
    samples = gaussian_random_field(4000, n, alpha, tau, generator=torch.Generator().manual_seed(0))
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    # Var g(x) = sum_k (4 pi^2 |k|^2 + tau^2)^-alpha for g ~ N(0, (-Lap + tau^2)^-alpha).
    expected = ((4 * math.pi**2 * k2 + tau**2) ** -alpha).sum().item()
    # 4000 samples x 256 points: the estimate's relative standard error is about 1-2 %.
    assert samples.var().item() == pytest.approx(expected, rel=0.06)
    assert abs(samples.mean().item()) < 0.1 * math.sqrt(expected)


def test_same_generator_seed_gives_same_field_and_shape():
    a = gaussian_random_field(2, 8, generator=torch.Generator().manual_seed(3))
    b = gaussian_random_field(2, 8, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 1, 8, 8) and a.dtype == torch.float64
    assert torch.equal(a, b)


def test_darcy_coefficient_thresholds_at_zero():
    grf = torch.tensor([[-1.0, 0.0], [2.0, -0.0]])
    assert torch.equal(darcy_coefficient(grf), torch.tensor([[3.0, 3.0], [12.0, 3.0]]))


@pytest.mark.parametrize(
    "call",
    [
        lambda: gaussian_random_field(0, 8),
        lambda: gaussian_random_field(1, 8, alpha=-1.0),
        lambda: darcy_coefficient(torch.zeros(2), high=0.0),
        lambda: darcy_coefficient(torch.zeros(2), low=math.inf),
    ],
)
def test_bad_parameters_raise_value_error(call):
    with pytest.raises(ValueError, match="expected"):
        call()
