"""Per-step evaluation to 2K: closed-form error decay, return codes instead of NaN means, JSON."""

import json

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from irsolve.learned.evaluate import evaluate
from irsolve.metrics import vrmse
from irsolve.solvers.refiner import Refiner


class ToInput(nn.Module):
    """``Phi([x; h]) = x - h``; with ``x = y`` each step scales the error by ``1 - alpha``."""

    def forward(self, z: Tensor) -> Tensor:
        return z[:, :1] - z[:, 1:]


class Amplify(nn.Module):
    """``Phi([x; h]) = 3 h``: with alpha = 1 the iterate grows 4x per step."""

    def forward(self, z: Tensor) -> Tensor:
        return 3.0 * z[:, 1:]


def test_vrmse_decays_by_one_minus_alpha_per_step_past_the_horizon():
    torch.manual_seed(0)
    y = torch.randn(5, 1, 8, 8)

    def base(x: Tensor) -> Tensor:
        return x + 0.5 * torch.roll(x, 1, -1)

    report = evaluate(base, Refiner(ToInput(), alpha=0.5), TensorDataset(y, y), K=2, batch_size=2)
    assert report.steps == [0, 1, 2, 3, 4]
    v0 = vrmse(base(y), y).mean().item()
    expected = [v0 * 0.5**k for k in range(5)]
    assert report.metrics["vrmse"] == pytest.approx(expected, rel=1e-5)
    assert report.reduction(2) == pytest.approx(0.75, rel=1e-5)
    assert report.retcodes == {"COMPLETED": 5}  # every requested step done, no test asked
    assert report.nonfinite == [0] * 5


def test_a_diverging_step_shows_as_diverged_not_as_a_nan_mean():
    torch.manual_seed(0)
    x, y = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    report = evaluate(
        lambda x: x, Refiner(Amplify(), alpha=1.0), TensorDataset(x, y), K=3, steps=12
    )
    # Updates grow 4x per step: past 1e4 times the first update after 7 steps.
    assert report.retcodes == {"DIVERGED": 4}
    assert all(torch.isfinite(torch.tensor(v)).all() for v in report.metrics.values())


def test_report_is_written_as_json(tmp_path):
    y = torch.randn(2, 1, 4, 4)
    report = evaluate(torch.zeros_like, Refiner(ToInput(), alpha=1.0), TensorDataset(y, y), K=1)
    report.write_json(tmp_path / "report.json")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["K"] == 1 and data["steps"] == [0, 1, 2]
    assert data["sample_retcodes"] == ["COMPLETED", "COMPLETED"]
    assert data["vrmse_reduction"]["1"] == pytest.approx(1.0, abs=1e-6)


def test_with_tol_zero_a_vanishing_update_ends_success():
    # Phi = x - h, alpha = 1 from h0 = 0: h1 = y exactly, so the update at step 2 is 0.
    y = torch.randn(2, 1, 4, 4)
    report = evaluate(
        torch.zeros_like, Refiner(ToInput(), alpha=1.0), TensorDataset(y, y), K=2, tol=0.0
    )
    assert report.sample_retcodes == ["SUCCESS", "SUCCESS"]
    assert report.metrics["mse"] == pytest.approx([y.square().mean().item(), 0, 0, 0, 0])


def test_patience_stops_a_sample_whose_updates_stop_shrinking():
    # Phi = 3 h with alpha = 1: updates grow from the first step, so with patience 1 the
    # sample ends STALLED after step 2 and keeps h_1, its iterate of smallest update.
    x, y = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    report = evaluate(
        lambda x: x, Refiner(Amplify(), alpha=1.0), TensorDataset(x, y), K=2, patience=1
    )
    assert report.sample_retcodes == ["STALLED"]
    assert report.metrics["mse"] == pytest.approx([1.0, 16.0, 16.0, 16.0, 16.0])


def test_a_fixed_k_run_reports_the_last_iterate_and_completed_not_max_iters():
    # Phi = 3 h, alpha = 1: h_k = 4^k h_0, so mse_k = 16^k up to the last step measured
    # (the smallest update is the first: a best-iterate rule would report h_1 at the end).
    x, y = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    report = evaluate(
        lambda x: x, Refiner(Amplify(), alpha=1.0), TensorDataset(x, y), K=1, steps=3,
        divergence=None,
    )  # fmt: skip
    assert report.metrics["mse"] == pytest.approx([1.0, 16.0, 256.0, 4096.0])
    assert report.sample_retcodes == ["COMPLETED"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"K": 0}, ValueError, "expected K to be an int >= 1, got 0"),
        ({"steps": -1}, ValueError, "expected steps to be an int >= 0, got -1"),
        ({"batch_size": 0}, ValueError, "expected batch_size to be an int >= 1, got 0"),
        ({"tol": float("nan")}, ValueError, "expected tol to be a finite real >= 0"),
        ({"divergence": 1.0}, ValueError, "expected divergence to be a finite real > 1"),
        ({"patience": 0}, ValueError, "expected patience to be an int >= 1, got 0"),
        ({"K": "6"}, TypeError, "expected K to be an int >= 1, got '6'"),
    ],
)
def test_out_of_range_or_mistyped_arguments_raise_naming_them(kwargs, error, message):
    data = TensorDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4))
    with pytest.raises(error, match=rf"evaluate: {message}"):
        evaluate(None, Refiner(ToInput(), 0.5), data, **{"K": 2, **kwargs})
