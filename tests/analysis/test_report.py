"""The analysis report steps through the engine: the same start rules and iterates as solve()."""

from __future__ import annotations

import math

import pytest
import torch

from irsolve import FixedPointSolver
from irsolve.analysis.certificate import iterate
from irsolve.analysis.report import analyze


class _Halve(FixedPointSolver):
    """``G(h) = x + (h - x) / 2``: the error to ``x`` halves each step (exact in binary)."""

    default_dtype = torch.float64

    def step(self, ctx: torch.Tensor, h: torch.Tensor, k: int) -> torch.Tensor:
        return ctx + 0.5 * (h - ctx)


class _NaNAfter(FixedPointSolver):
    """``h -> 2h`` for samples 1.., and NaN for sample 0 from step ``k = 2`` on."""

    default_dtype = torch.float64

    def step(self, ctx: torch.Tensor, h: torch.Tensor, k: int) -> torch.Tensor:
        out = 2.0 * h
        if k >= 2:
            out = torch.where(ctx[:, :1] == 0, math.nan, out)
        return out


def test_iterate_gives_every_step_of_the_map_in_closed_form():
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    h0 = torch.zeros_like(x)
    trajectory = iterate(_Halve(), x, h0, 5)
    # Closed form h_k = x (1 - 2^-k); the recursion rounds once per step, so allow a few ulps.
    expected = torch.stack([x * (1 - 0.5**k) for k in range(6)])
    eps = torch.finfo(torch.float64).eps
    torch.testing.assert_close(trajectory, expected, rtol=0, atol=8 * eps * x.abs().max().item())


def test_iterate_keeps_a_nonfinite_sample_nonfinite_and_steps_the_others():
    x = torch.ones(2, 1, 2, 2, dtype=torch.float64)
    x[0] = 0.0  # sample 0 turns NaN at its third step
    trajectory = iterate(_NaNAfter(), x, torch.ones_like(x), 4)
    assert torch.isfinite(trajectory[:3, 0]).all() and torch.isnan(trajectory[3:, 0]).all()
    assert torch.equal(
        trajectory[:, 1], torch.stack([2.0**k * torch.ones(1, 2, 2) for k in range(5)]).double()
    )


def test_analyze_refuses_a_zero_start_for_a_tensor_input_as_solve_does(tmp_path):
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="base=None gives a zero start only when x is a Problem"):
        analyze(None, _Halve(), x, x, tmp_path, steps=2, n_probe=1)
