"""Per-sample metrics against hand computations."""

import math

import pytest
import torch

from irsolve.metrics import mse_per_sample, rfne, vrmse


def test_vrmse_matches_hand_computation_per_field_then_mean():
    # Sample 0, field 0: y = [0, 2, 0, 2] (var 1), error [1, 1, 1, 1] -> sqrt(1 / 1) = 1.
    # Sample 0, field 1: y = [1, 1, 3, 3] (var 1), error [0, 0, 0, 2] -> sqrt((4/4) / 1) = 1.
    # Sample 1, field 0: y = [0, 0, 0, 4] (var 3), error [3, 0, 0, 0] -> sqrt(9/4 / 3).
    # Sample 1, field 1: y = [1, 2, 3, 4] (var 1.25), pred = y -> 0.
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
    expected = [(1.0 + 1.0) / 2, (math.sqrt(9 / 4 / 3) + 0.0) / 2]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)


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
    with pytest.raises(ValueError, match=r"\(B, C, \*space\), got \(2, 1, 4\) and \(2, 1, 5\)"):
        vrmse(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))
    with pytest.raises(ValueError, match="same shape"):
        rfne(torch.zeros(4, 4), torch.zeros(4, 4))
