"""Per-sample metrics against hand computations."""

import math

import numpy as np
import pytest
import torch

from irsolve.metrics import mse_per_sample, rfne, vrmse


def test_vrmse_matches_hand_computation_with_bessel_corrected_variance():
    # The Well divides by torch.std(y) ** 2 (N - 1 in the denominator); N = 4 points.
    # Sample 0, field 0: y = [0, 2, 0, 2] (s^2 = 4/3), error [1, 1, 1, 1] -> sqrt(1 / (4/3)).
    # Sample 0, field 1: y = [1, 1, 3, 3] (s^2 = 4/3), error [0, 0, 0, 2] -> sqrt(1 / (4/3)).
    # Sample 1, field 0: y = [0, 0, 0, 4] (s^2 = 4), error [3, 0, 0, 0] -> sqrt(9/4 / 4).
    # Sample 1, field 1: y = [1, 2, 3, 4] (s^2 = 5/3), pred = y -> 0.
    y = torch.tensor(
        [
            [[[0.0, 2.0], [0.0, 2.0]], [[1.0, 1.0], [3.0, 3.0]]],
            [[[0.0, 0.0], [0.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]],
        ],
        dtype=torch.float64,
    )
    err = torch.zeros_like(y)
    err[0, 0] = 1.0
    err[0, 1, 1, 1] = 2.0
    err[1, 0, 0, 0] = 3.0
    got = vrmse(y + err, y, eps=0.0)
    expected = [math.sqrt(3 / 4), (math.sqrt(9 / 16) + 0.0) / 2]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)


@pytest.mark.parametrize("space", [(39, 39), (7, 5, 3), (16,)])
def test_vrmse_equals_the_wells_definition_to_1e_12(space):
    # Independent NumPy evaluation of The Well's VRMSE per field,
    # sqrt(mean((p - y)^2) / (np.var(y, ddof=1) + 1e-7)), then the mean over fields.
    # Both are float64 sums of a few thousand terms: round-off ~1e-14 relative.
    rng = np.random.default_rng(3)
    y = rng.standard_normal((3, 2, *space)) * rng.uniform(
        0.1, 10.0, size=(3, 2) + (1,) * len(space)
    )
    p = y + 0.1 * rng.standard_normal(y.shape)
    axes = tuple(range(2, y.ndim))
    per_field = np.sqrt(((p - y) ** 2).mean(axis=axes) / (y.var(axis=axes, ddof=1) + 1e-7))
    got = vrmse(torch.from_numpy(p), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(got, per_field.mean(axis=1), rtol=1e-12, atol=0)


def test_vrmse_rejects_a_single_spatial_point():
    with pytest.raises(ValueError, match="vrmse: expected at least 2 spatial points"):
        vrmse(torch.zeros(2, 1, 1, 1), torch.zeros(2, 1, 1, 1))


def test_vrmse_eps_guards_constant_fields():
    y = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    got = vrmse(y + 1e-3, y)  # var 0: sqrt(1e-6 / 1e-7)
    assert got.item() == pytest.approx(math.sqrt(10.0), rel=1e-9)


def test_vrmse_of_a_sample_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    pred, y = torch.randn(4, 2, 8, 8), torch.randn(4, 2, 8, 8)
    batched = vrmse(pred, y)
    single = torch.cat([vrmse(pred[i : i + 1], y[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, single)
    y_scaled = y.clone()
    y_scaled[1:] *= 100.0  # other samples at another scale must not change sample 0
    assert vrmse(pred, y_scaled)[0].item() == pytest.approx(batched[0].item(), rel=1e-6)


def test_rfne_and_mse_match_hand_computation():
    y = torch.tensor([[[[3.0, 4.0]]], [[[1.0, 0.0]]]])
    p = torch.tensor([[[[3.0, 5.0]]], [[[0.0, 0.0]]]])
    torch.testing.assert_close(rfne(p, y), torch.tensor([1 / 5, 1.0]))
    torch.testing.assert_close(mse_per_sample(p, y), torch.tensor([0.5, 0.5]))


def test_metrics_reject_mismatched_or_unbatched_shapes():
    with pytest.raises(
        ValueError, match=r"vrmse: .*\(B, C, \*space\), got \(2, 1, 4\) and \(2, 1, 5\)"
    ):
        vrmse(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))
    with pytest.raises(ValueError, match="same shape"):
        rfne(torch.zeros(4, 4), torch.zeros(4, 4))
