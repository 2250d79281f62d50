"""solve() / init(): convergence on exact affine contractions, return codes, freezing, errors.

References: for ``G(h) = M h + c`` with ``||M||_2 = q < 1`` the fixed point is
``(I - M)^{-1} c``, the error contracts as ``||e_k|| <= q^k ||e_0||``, the
updates as ``||u_k|| <= q^k ||u_0||``, and a stop at ``||u_k|| <= tol`` leaves
``||h_{k+1} - h*|| <= q / (1 - q) tol`` (Banach fixed-point theorem, a
posteriori bound).
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from core_solvers import AffineMap, DiagonalProblem, Richardson, random_contraction
from hypothesis import given
from hypothesis import strategies as st

from irsolve import FixedPointSolver, ReturnCode, SolveState, init, solve


@given(
    q=st.floats(0.05, 0.95),
    n=st.integers(2, 12),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_affine_contraction_reaches_fixed_point_within_a_priori_bounds(q, n, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    matrix = random_contraction(batch, n, q, gen)
    shift = torch.randn(batch, n, dtype=torch.float64, generator=gen)
    solver = AffineMap(matrix, shift)
    h0 = torch.randn(batch, n, dtype=torch.float64, generator=gen)
    tol = 1e-9
    sol = solve(h0, solver, h0, tol=tol, maxiter=2000, norm="l2", save_trajectory=True)

    assert sol.success
    exact = solver.fixed_point()
    error = torch.linalg.vector_norm(sol.u - exact, dim=1)
    assert torch.all(error <= q / (1 - q) * tol * (1 + 1e-6) + 1e-13)

    e0 = torch.linalg.vector_norm(h0 - exact, dim=1)
    errors = torch.linalg.vector_norm(sol.trajectory - exact, dim=2)  # (steps + 1, batch)
    for b in range(batch):
        k = torch.arange(int(sol.iterations[b]) + 1, dtype=torch.float64)
        assert torch.all(errors[: len(k), b] <= q**k * e0[b] * (1 + 1e-9) + 1e-12)

    u0 = sol.updates[0]
    a_priori = torch.ceil(torch.log(tol / u0) / math.log(q)) + 1
    assert torch.all(sol.iterations <= a_priori.clamp_min(1).long())


def test_expansive_map_ends_diverged_with_best_iterate():
    n = 5
    matrix = 2.0 * torch.eye(n, dtype=torch.float64).expand(2, n, n)
    shift = torch.ones(2, n, dtype=torch.float64)
    h0 = torch.zeros(2, n, dtype=torch.float64)
    sol = solve(h0, AffineMap(matrix, shift), h0, tol=1e-12, divergence=1e3, save_trajectory=True)
    assert sol.retcodes == [ReturnCode.DIVERGED] * 2
    # Updates double each step: ||h1 - h0|| is the smallest and belongs to h1.
    assert torch.equal(sol.u, sol.trajectory[1])
    assert sol.iterations.tolist() == [11, 11]  # first k with 2^k > 1e3 is 10, +1 step


def test_diverging_physical_residual_keeps_lowest_residual_iterate():
    diagonal = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    rhs = torch.ones(2, 2, dtype=torch.float64)
    h0 = torch.full((2, 2), 0.5, dtype=torch.float64)
    # |1 - omega d| = 2: the residual doubles each step from the start.
    sol = solve(h0, Richardson(omega=3.0), DiagonalProblem(diagonal, rhs), divergence=100)
    assert sol.criterion == "residual"
    assert sol.retcodes == [ReturnCode.DIVERGED] * 2
    assert torch.equal(sol.u, h0)


class EmitsNaN(FixedPointSolver):
    def step(self, ctx, h, k):
        return h * 0.5 if k < 3 else h * math.nan


def test_nan_step_ends_unstable_and_keeps_finite_iterate():
    h0 = torch.ones(3, 4, dtype=torch.float64)
    sol = solve(h0, EmitsNaN(), h0, tol=1e-30, maxiter=10)
    assert sol.retcodes == [ReturnCode.UNSTABLE] * 3
    assert torch.isfinite(sol.u).all()
    assert torch.allclose(sol.u, h0 * 0.125)  # h3: its update |h3 - h2| is the smallest


class CountingScale(FixedPointSolver):
    """``h <- s h`` per sample; records which sample ids it is asked to step."""

    def __init__(self, scales: torch.Tensor) -> None:
        self.scales = scales
        self.seen: list[list[int]] = []

    def prepare(self, x):
        return {"ids": torch.arange(x.shape[0]), "scales": self.scales}

    def step(self, ctx, h, k):
        self.seen.append(ctx["ids"].tolist())
        assert h.shape[0] == ctx["ids"].numel()
        return h * ctx["scales"].unsqueeze(1)


def test_converged_samples_are_frozen_and_never_stepped_again():
    scales = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    solver = CountingScale(scales)
    h0 = torch.ones(3, 2, dtype=torch.float64)
    sol = solve(h0, solver, h0, tol=1e-6, maxiter=500)
    assert sol.success
    counts = [sum(i in ids for ids in solver.seen) for i in range(3)]
    assert counts == sol.iterations.tolist()
    assert counts[0] < counts[1] < counts[2]
    # Exactly the analytic count: first k with (1 - s) s^(k-1) <= tol (rms of the update).
    for s, count in zip(scales.tolist(), counts, strict=True):
        expected = next(k for k in range(1, 500) if (1 - s) * s ** (k - 1) <= 1e-6)
        assert count == expected
    # Rows of a frozen sample are NaN after it stopped.
    assert torch.isnan(sol.updates[counts[0] :, 0]).all()


class Stationary(FixedPointSolver):
    """A learned step that has stalled at a false fixed point: its update is zero."""

    def step(self, ctx, h, k):
        return h


def test_false_fixed_point_is_not_success_when_a_physical_residual_exists():
    problem = DiagonalProblem(
        torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    )
    sol = solve(None, Stationary(), problem, tol=1e-8, maxiter=5)
    assert sol.criterion == "residual"
    assert sol.retcodes == [ReturnCode.MAX_ITERS] * 2
    assert torch.all(sol.updates == 0)


def test_patience_ends_stalled():
    problem = DiagonalProblem(
        torch.ones(1, 3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)
    )
    sol = solve(None, Stationary(), problem, tol=1e-8, maxiter=50, patience=4)
    assert sol.retcodes == [ReturnCode.STALLED]
    assert sol.iterations.item() == 4


def test_rtol_is_relative_to_the_starting_residual():
    problem = DiagonalProblem(
        torch.ones(1, 4, dtype=torch.float64), torch.full((1, 4), 8.0, dtype=torch.float64)
    )
    sol = solve(None, Richardson(omega=0.5), problem, tol=0.0, rtol=1e-3)
    # Residual r_k = 8 * 0.5^k; stop at the first k with 0.5^k <= 1e-3: k = 10.
    assert sol.success and sol.iterations.item() == 10
    assert sol.residuals[0, 0].item() == pytest.approx(8.0)


def test_solution_at_start_needs_no_step():
    problem = DiagonalProblem(
        torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    )
    sol = solve(torch.ones(2, 3), Richardson(omega=0.5), problem)
    assert sol.success and sol.iterations.tolist() == [0, 0]


def test_init_stepped_by_hand_matches_solve():
    gen = torch.Generator().manual_seed(3)
    solver = AffineMap(
        random_contraction(2, 6, 0.7, gen), torch.randn(2, 6, generator=gen).double()
    )
    h0 = torch.zeros(2, 6, dtype=torch.float64)
    state = init(h0, solver, h0, tol=1e-10)
    ks = [s.k for s in state]
    by_hand = state.solution()
    direct = solve(h0, solver, h0, tol=1e-10)
    assert ks == list(range(1, by_hand.stats["steps"] + 1))
    assert torch.equal(by_hand.u, direct.u)
    assert torch.equal(by_hand.iterations, direct.iterations)


def test_callback_returning_true_stops_the_solve():
    problem = DiagonalProblem(
        torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    )
    sol = solve(None, Stationary(), problem, maxiter=50, callback=lambda s: s.k == 3)
    assert sol.stats["terminated"] and sol.stats["steps"] == 3
    assert sol.retcodes == [ReturnCode.TERMINATED] * 2
    assert sol.retcode == ReturnCode.TERMINATED and not sol.success


def test_callback_stop_leaves_finished_samples_their_own_code():
    # Sample 0's updates are 0.9 * 0.1^(k-1): below tol=1e-3 at step 4, when the callback
    # stops the solve; sample 1 (updates 0.1 * 0.9^(k-1)) is still running then.
    scales = torch.tensor([0.1, 0.9], dtype=torch.float64)
    h0 = torch.ones(2, 1, dtype=torch.float64)
    sol = solve(h0, CountingScale(scales), h0, tol=1e-3, maxiter=50, callback=lambda s: s.k == 4)
    assert sol.retcodes == [ReturnCode.SUCCESS, ReturnCode.TERMINATED]


def test_tol_none_runs_exactly_maxiter_steps_and_returns_the_last_iterate():
    # h <- s h: the k-th iterate is s^k h0 exactly (powers of two and 0.5 are exact in float64).
    # Sample 0 would converge at once under any tol; sample 1 grows, so its
    # lowest-update iterate is h1, not the last: tol=None must return h_K all the same.
    scales = torch.tensor([0.5, 2.0], dtype=torch.float64)
    h0 = torch.ones(2, 3, dtype=torch.float64)
    solver = CountingScale(scales)
    sol = solve(h0, solver, h0, tol=None, maxiter=7, divergence=None, save_trajectory=True)
    assert sol.retcodes == [ReturnCode.COMPLETED] * 2
    assert sol.retcode == ReturnCode.COMPLETED and sol.success
    assert sol.iterations.tolist() == [7, 7] and solver.seen == [[0, 1]] * 7
    expected = torch.stack([scales**k for k in range(8)])[:, :, None].expand(8, 2, 3)
    assert torch.equal(sol.trajectory, expected)
    assert torch.equal(sol.u, expected[-1])
    # The same map under a tolerance stops sample 0 and keeps sample 1's best iterate.
    capped = solve(h0, CountingScale(scales), h0, tol=1e-300, maxiter=7, divergence=None)
    assert capped.retcodes[1] == ReturnCode.MAX_ITERS
    assert torch.equal(capped.u[1], expected[1, 1])


class ScriptedUpdates(FixedPointSolver):
    """Step ``k`` adds ``updates[k]`` to every entry: update norms are exactly ``|updates[k]|``."""

    def __init__(self, updates: list[float]) -> None:
        self.updates = updates

    def step(self, ctx, h, k):
        return h + self.updates[k]


def test_final_residuals_under_tol_none_measure_the_last_iterate_not_the_lowest():
    # Update norms 0.9, 0.4, 2.0: the returned iterate is the last, whose update is 2.0.
    h0 = torch.zeros(2, 3, dtype=torch.float64)
    sol = solve(h0, ScriptedUpdates([0.9, 0.4, 2.0]), h0, tol=None, maxiter=3, divergence=None)
    assert sol.retcodes == [ReturnCode.COMPLETED] * 2
    assert torch.allclose(sol.u, torch.full_like(h0, 3.3))
    assert torch.allclose(sol.final_residuals, torch.full((2,), 2.0, dtype=torch.float64))


def test_final_residuals_of_a_failed_sample_measure_the_best_iterate_it_keeps():
    # Same updates under a tolerance nobody meets: MAX_ITERS keeps h2 = 1.3, whose update was 0.4.
    h0 = torch.zeros(1, 2, dtype=torch.float64)
    sol = solve(h0, ScriptedUpdates([0.9, 0.4, 2.0]), h0, tol=1e-9, maxiter=3, divergence=None)
    assert sol.retcodes == [ReturnCode.MAX_ITERS]
    assert torch.allclose(sol.u, torch.full_like(h0, 1.3))
    assert torch.allclose(sol.final_residuals, torch.tensor([0.4], dtype=torch.float64))
    # On a physical residual a diverging sample keeps h0: its residual is f - d h0 = 1 - 0.5.
    problem = DiagonalProblem(torch.ones(2, 2, dtype=torch.float64), torch.ones(2, 2).double())
    h0 = torch.full((2, 2), 0.5, dtype=torch.float64)
    diverged = solve(h0, Richardson(omega=3.0), problem, divergence=100)
    assert diverged.retcodes == [ReturnCode.DIVERGED] * 2 and torch.equal(diverged.u, h0)
    assert torch.equal(diverged.final_residuals, torch.full((2,), 0.5, dtype=torch.float64))


def test_final_residuals_of_samples_still_active_measure_their_current_iterate():
    h0 = torch.zeros(1, 2, dtype=torch.float64)
    state = init(h0, ScriptedUpdates([0.9, 0.4, 2.0]), h0, tol=1e-9, maxiter=5, divergence=None)
    for _ in range(3):
        state.step()
    sol = state.solution()  # the sample is still active: u is its current iterate h3
    assert not state.done and torch.allclose(sol.u, torch.full_like(h0, 3.3))
    assert torch.allclose(sol.final_residuals, torch.tensor([2.0], dtype=torch.float64))


def test_tol_none_still_ends_nonfinite_and_diverging_samples():
    h0 = torch.ones(3, 4, dtype=torch.float64)
    sol = solve(h0, EmitsNaN(), h0, tol=None, maxiter=10)
    assert sol.retcodes == [ReturnCode.UNSTABLE] * 3
    assert torch.allclose(sol.u, h0 * 0.125)
    grows = solve(
        h0, CountingScale(torch.full((3,), 2.0)), h0, tol=None, maxiter=50, divergence=1e3
    )
    assert grows.retcodes == [ReturnCode.DIVERGED] * 3


def test_tol_none_with_zero_maxiter_returns_h0_completed():
    h0 = torch.ones(2, 3, dtype=torch.float64)
    sol = solve(h0, Stationary(), h0, tol=None, maxiter=0)
    assert sol.retcodes == [ReturnCode.COMPLETED] * 2 and torch.equal(sol.u, h0)


def test_tol_none_with_a_callback_stop_returns_the_last_iterate():
    scales = torch.tensor([2.0], dtype=torch.float64)
    h0 = torch.ones(1, 2, dtype=torch.float64)
    sol = solve(
        h0,
        CountingScale(scales),
        h0,
        tol=None,
        maxiter=9,
        divergence=None,
        callback=lambda s: s.k == 4,
    )
    assert sol.retcodes == [ReturnCode.TERMINATED]
    assert torch.equal(sol.u, h0 * 16)


def test_unroll_with_grad_gives_the_hand_written_per_step_loss_gradients():
    # Independent reference: the affine unroll h_{k+1} = M h_k + c written out with
    # per-step losses sum_k ||h_k - t||^2; autograd through both must agree to round-off.
    gen = torch.Generator().manual_seed(3)
    matrix = random_contraction(2, 4, 0.8, gen)
    target = torch.randn(2, 4, dtype=torch.float64, generator=gen)
    h0 = torch.randn(2, 4, dtype=torch.float64, generator=gen)
    shift = torch.randn(2, 4, dtype=torch.float64, generator=gen).requires_grad_()

    state = init(h0, AffineMap(matrix, shift), h0, tol=None, maxiter=5, grad=True)
    # state.h holds the active samples only; current_iterates() is the whole batch.
    engine_loss = sum((s.current_iterates() - target).square().sum() for s in state)
    (engine_grad,) = torch.autograd.grad(engine_loss, shift)

    h, hand_loss = h0, 0.0
    for _ in range(5):
        h = torch.einsum("bij,bj->bi", matrix, h) + shift
        hand_loss = hand_loss + (h - target).square().sum()
    (hand_grad,) = torch.autograd.grad(hand_loss, shift)
    assert state.k == 5 and state.solution().retcodes == [ReturnCode.COMPLETED] * 2
    torch.testing.assert_close(engine_loss, hand_loss, rtol=1e-14, atol=0.0)
    torch.testing.assert_close(engine_grad, hand_grad, rtol=1e-12, atol=1e-14)


def test_grad_true_differentiates_through_the_unroll():
    gen = torch.Generator().manual_seed(1)
    matrix = random_contraction(1, 4, 0.5, gen)
    shift = torch.randn(1, 4, dtype=torch.float64, generator=gen).requires_grad_()
    h0 = torch.zeros(1, 4, dtype=torch.float64)
    sol = solve(h0, AffineMap(matrix, shift), h0, tol=1e-12, grad=True, norm="l2")
    sol.u.sum().backward()
    # d/dc sum((I - M)^{-1} c) = (I - M)^{-T} 1
    expected = torch.linalg.solve((torch.eye(4) - matrix[0]).T, torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(shift.grad[0], expected, rtol=1e-9, atol=1e-9)
    assert solve(h0, AffineMap(matrix, shift), h0).u.grad_fn is None


def test_nonfinite_input_names_tensor_samples_and_count():
    x = torch.zeros(5, 3)
    x[1, 0] = math.nan
    x[4, 2] = math.inf
    with pytest.raises(
        ValueError, match=r"^solve: x holds NaN or Inf in 2 of 5 samples \(sample indices 1, 4\)"
    ):
        solve(torch.zeros(5, 3), Stationary(), x)
    with pytest.raises(ValueError, match=r"^init: h0 holds NaN or Inf in 1 of 5"):
        init(torch.where(x.isnan(), x, 0.0), Stationary(), torch.zeros(5, 3))


class WrongShape(FixedPointSolver):
    def step(self, ctx, h, k):
        return h[:, :1]


def test_shape_mismatches_report_both_shapes():
    with pytest.raises(ValueError, match=r"returned \(2, 1\).*iterates of \(2, 3\)"):
        solve(torch.zeros(2, 3), WrongShape(), torch.zeros(2, 3))
    problem = DiagonalProblem(
        torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match=r"^solve: base output has shape \(2, 4\).*\(2, 3\)"):
        solve(torch.zeros(2, 4), Stationary(), problem)
    with pytest.raises(ValueError, match="^init: .*same batch size"):
        init(lambda x: torch.zeros(3, 2), Stationary(), torch.zeros(2, 2))


def test_bad_arguments_raise_naming_solve_and_the_argument():
    h0 = torch.zeros(2, 3)
    with pytest.raises(TypeError, match=r"solve\(\) got an unexpected keyword .*'tolerance'"):
        solve(h0, Stationary(), h0, tolerance=1e-3)  # unknown keyword, never dropped
    with pytest.raises(ValueError, match="solve: expected tol to be a finite real >= 0, got -1.0"):
        solve(h0, Stationary(), h0, tol=-1.0)
    with pytest.raises(ValueError, match="init: expected maxiter to be an int >= 0"):
        init(h0, Stationary(), h0, maxiter=-1)
    with pytest.raises(ValueError, match=r"solve: expected rtol=0 with tol=None .*got rtol=0.1"):
        solve(h0, Stationary(), h0, tol=None, rtol=0.1)
    with pytest.raises(ValueError, match="^solve: base=None gives a zero start only when x is"):
        solve(None, Stationary(), h0)
    with pytest.raises(TypeError, match="FixedPointSolver"):
        solve(h0, lambda h: h, h0)


def test_solve_and_init_spell_their_keywords_out_like_the_state_they_build():
    # The one list of options: solve, init and SolveState take the same keyword-only ones.
    def keywords(function):
        parameters = inspect.signature(function).parameters.values()
        return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}

    state = keywords(SolveState.__init__)
    assert state.pop("owner") == "SolveState"
    assert keywords(solve) == keywords(init) == state
    assert list(inspect.signature(solve).parameters)[:3] == ["base", "refiner", "x"]
    assert state["tol"] == 1e-6 and state["maxiter"] == 100


def test_empty_batch_gives_empty_solution():
    sol = solve(torch.zeros(0, 3), Stationary(), torch.zeros(0, 3))
    assert sol.u.shape == (0, 3) and sol.retcodes == [] and sol.success
    assert "batch=0" in repr(sol)


def test_repr_names_retcodes_and_iterations():
    problem = DiagonalProblem(
        torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    )
    sol = solve(None, Richardson(omega=0.5), problem, tol=1e-6)
    text = repr(sol)
    assert "retcode=SUCCESS" in text and "SUCCESS: 2" in text and "residual:" in text
    # Richardson with omega 1/2 on the identity halves the residual each step: r_k = r_0 / 2^k.
    expected = 0.5 ** sol.iterations.double()
    assert torch.allclose(sol.relative_residuals, expected, rtol=1e-12, atol=0)
    assert f"relative:   {float(expected.max()):.3e} (worst)" in text


def test_relative_residuals_are_nan_without_a_residual_at_h0():
    problem = DiagonalProblem(
        torch.ones(1, 4, dtype=torch.float64), torch.full((1, 4), 8.0, dtype=torch.float64)
    )
    sol = solve(None, PlainRichardson(omega=0.5), problem, tol=0.0, rtol=1e-3)
    assert bool(sol.relative_residuals.isnan().all()) and "relative:" not in repr(sol)


class PlainRichardson(Richardson):
    """Richardson on a problem, but without a physical residual of its own."""

    def residual(self, ctx, h):
        return None


def test_problem_with_a_residual_free_solver_converges_on_updates_and_honours_rtol():
    problem = DiagonalProblem(
        torch.ones(1, 4, dtype=torch.float64), torch.full((1, 4), 8.0, dtype=torch.float64)
    )
    sol = solve(None, PlainRichardson(omega=0.5), problem, tol=0.0, rtol=1e-3)
    assert sol.criterion == "update"
    # Updates u_k = 4 * 0.5^k (rms); stop at the first k with 0.5^k <= 1e-3: k = 10, 11 steps.
    assert sol.success and sol.iterations.item() == 11
