"""The learned step as a FixedPointSolver: exact corrections, schedules, stop, dtypes, errors."""

import pytest
import torch
from torch import Tensor, nn

from irsolve import Interleave, Problem, ReturnCode, solve
from irsolve.solvers.refiner import GeometricAlpha, Refiner


class ToTarget(nn.Module):
    """``Phi([x; h]) = x - h``: with ``x = y`` this is the exact correction ``y - h``."""

    in_channels = 2

    def forward(self, z: Tensor) -> Tensor:
        return z[:, :1] - z[:, 1:]


class Ones(nn.Module):
    """``Phi = 1`` everywhere, so ``h_K = h_0 + sum_k alpha_k``."""

    def forward(self, z: Tensor) -> Tensor:
        return torch.ones_like(z[:, 1:])


class IdentityProblem(Problem):
    """``I u = f`` with features ``f``: the physical residual is ``f - u``."""

    def __init__(self, f: Tensor) -> None:
        self.f = f

    @property
    def batch_size(self) -> int:
        return self.f.shape[0]

    def zeros(self) -> Tensor:
        return torch.zeros_like(self.f)

    def residual(self, u: Tensor) -> Tensor:
        return self.f - u

    def restrict(self, index: Tensor) -> "IdentityProblem":
        return IdentityProblem(self.f.index_select(0, index))

    def features(self) -> Tensor:
        return self.f


def test_exact_correction_with_alpha_one_converges_in_one_step_on_the_residual():
    y = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    # tol 1e-6: the float32 net rounds the correction at ~1e-7 relative.
    sol = solve(None, Refiner(ToTarget(), alpha=1.0), IdentityProblem(y), tol=1e-6, maxiter=10)
    assert sol.criterion == "residual"
    assert sol.retcodes == [ReturnCode.SUCCESS] * 3
    assert sol.iterations.tolist() == [1, 1, 1]
    # The net computes in float32 and the result is cast back, so equality holds to float32.
    torch.testing.assert_close(sol.u, y, rtol=0, atol=1e-6)


def test_exact_correction_on_tensor_input_reaches_the_target_after_one_step():
    # Without a problem the criterion is the update norm: step 1 lands on y, step 2 sees a
    # zero update and stops with SUCCESS.
    y = torch.randn(2, 1, 6, 6)
    sol = solve(torch.zeros_like(y), Refiner(ToTarget(), alpha=1.0), y, tol=1e-7, maxiter=5)
    assert sol.criterion == "update"
    assert sol.retcode == ReturnCode.SUCCESS
    assert sol.iterations.tolist() == [2, 2]
    torch.testing.assert_close(sol.u, y, rtol=0, atol=0)


def test_partial_step_contracts_the_error_by_one_minus_alpha():
    y = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    refiner = Refiner(ToTarget(), alpha=0.25)
    ctx = refiner.prepare(y)
    h = torch.zeros_like(y)
    for k in range(3):
        h = refiner.step(ctx, h, k)
    torch.testing.assert_close(y - h, 0.75**3 * y, rtol=1e-6, atol=0)


def test_alpha_schedule_gives_the_step_sizes():
    schedule = GeometricAlpha(alpha=0.2, gamma=0.5, start=2)
    assert [schedule(k) for k in range(4)] == pytest.approx([0.2, 0.2, 0.1, 0.05])
    refiner = Refiner(Ones(), alpha=schedule)
    x = torch.zeros(1, 1, 2, 2)
    ctx = refiner.prepare(x)
    h = torch.zeros_like(x)
    for k in range(4):
        h = refiner.step(ctx, h, k)
    torch.testing.assert_close(h, torch.full_like(x, 0.55))


def test_adaptive_stop_leaves_samples_with_a_small_correction_in_place():
    y = torch.zeros(2, 1, 4, 4)
    h0 = torch.stack([torch.full((1, 4, 4), 1e-3), torch.full((1, 4, 4), 1.0)])
    refiner = Refiner(ToTarget(), alpha=0.5, stop_threshold=1e-2)
    h1 = refiner.step(refiner.prepare(y), h0, 0)
    torch.testing.assert_close(h1[0], h0[0], rtol=0, atol=0)  # rms(Phi) = 1e-3 < 1e-2
    torch.testing.assert_close(h1[1], 0.5 * h0[1])
    sol = solve(h0, refiner, y, tol=0.0, maxiter=3)
    assert sol.retcodes[0] == ReturnCode.SUCCESS and sol.iterations[0] == 1
    assert sol.retcodes[1] == ReturnCode.MAX_ITERS


def test_float64_iterates_stay_float64_around_a_float32_net():
    y = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    refiner = Refiner(ToTarget(), alpha=1.0)
    assert refiner.default_dtype == torch.float32
    ctx = refiner.prepare(y)
    assert ctx.x.dtype == torch.float32
    h1 = refiner.step(ctx, torch.zeros_like(y), 0)
    assert h1.dtype == torch.float64


def test_refiner_interleaves_with_itself_through_solve_and_restricts_its_context():
    y = torch.randn(4, 1, 4, 4)
    refiner = Refiner(ToTarget(), alpha=0.5)
    h0 = torch.zeros_like(y)
    h0[0] = y[0]  # sample 0 starts converged and is dropped after step 1
    sol = solve(h0, Interleave(refiner, Refiner(ToTarget(), alpha=1.0)), y, tol=1e-6, maxiter=6)
    assert sol.retcode == ReturnCode.SUCCESS
    torch.testing.assert_close(sol.u, y, rtol=0, atol=1e-6)
    sub = refiner.restrict(refiner.prepare(y), torch.tensor([2, 3]))
    torch.testing.assert_close(sub.x, y[2:])


def test_residual_is_none_for_tensor_inputs():
    refiner = Refiner(ToTarget())
    assert (
        refiner.residual(refiner.prepare(torch.zeros(1, 1, 2, 2)), torch.zeros(1, 1, 2, 2)) is None
    )


def test_channel_and_shape_mismatches_raise_clear_errors():
    refiner = Refiner(ToTarget())
    ctx = refiner.prepare(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"with 2 channels together.*got 1 \+ 2 = 3"):
        refiner.step(ctx, torch.zeros(2, 2, 4, 4), 0)
    with pytest.raises(ValueError, match=r"batch and spatial sizes of x \(2, 1, 4, 4\)"):
        refiner.step(ctx, torch.zeros(2, 1, 4, 5), 0)
    bad = Refiner(lambda z: z)  # returns both channels
    with pytest.raises(ValueError, match=r"correction shaped like h \(2, 1, 4, 4\), got \(2, 2"):
        bad.step(bad.prepare(torch.zeros(2, 1, 4, 4)), torch.zeros(2, 1, 4, 4), 0)
    with pytest.raises(ValueError, match=r"\(B, C, \*space\), got \(4, 4\)"):
        refiner.prepare(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="Refiner: expected alpha to be a finite real > 0"):
        Refiner(ToTarget(), alpha=0.0)


def test_problem_without_features_needs_a_features_function():
    class Bare(IdentityProblem):
        features = None

    with pytest.raises(TypeError, match=r"features\(\) method or Refiner\(features=...\)"):
        Refiner(ToTarget()).prepare(Bare(torch.zeros(1, 1, 2, 2)))
    f = torch.randn(1, 1, 2, 2)
    ctx = Refiner(ToTarget(), features=lambda p: 2 * p.f).prepare(Bare(f))
    torch.testing.assert_close(ctx.x, 2 * f)


def test_geometric_alpha_rejects_growth():
    with pytest.raises(
        ValueError, match="GeometricAlpha: expected gamma to be a finite real >= 0 and <= 1"
    ):
        GeometricAlpha(alpha=0.2, gamma=1.5)
