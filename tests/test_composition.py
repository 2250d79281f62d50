"""Interleave and Cycle: the order of child steps, step counts, residual choice, freezing."""

from __future__ import annotations

import pytest
import torch
from core_solvers import DiagonalProblem, Richardson

from irsolve import Cycle, FixedPointSolver, Interleave, solve
from irsolve.solvers import (
    Darcy2D,
    GaussSeidel,
    Jacobi,
    Multigrid,
    Poisson2D,
    darcy_coefficient,
    gaussian_random_field,
)


class Recorder(FixedPointSolver):
    """Leaves ``h`` unchanged except for a tiny shrink; logs ``(name, k)`` of each call."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log
        self.prepared = 0

    def prepare(self, x):
        self.prepared += 1
        return x

    def step(self, ctx, h, k):
        self.log.append((self.name, k))
        return 0.5 * h

    def step_name(self, k):
        return self.name


def test_interleave_runs_children_in_pattern_order_with_own_step_counts():
    log: list = []
    a, b = Recorder("a", log), Recorder("b", log)
    h0 = torch.ones(1, 2, dtype=torch.float64)
    sol = solve(h0, Interleave(a, b, pattern=(1, 4)), h0, tol=0.0, maxiter=12)
    assert [name for name, _ in log] == list("abbbbabbbbab")
    assert [k for name, k in log if name == "a"] == [0, 1, 2]
    assert [k for name, k in log if name == "b"] == list(range(9))
    assert a.prepared == b.prepared == 1
    assert sol.stats["steps_per_solver"] == {"a": 3, "b": 9}


def test_interleave_uses_first_child_residual_that_exists():
    log: list = []
    problem = DiagonalProblem(
        torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    )

    class NoResidual(Recorder):
        def step(self, ctx, h, k):
            super().step(ctx, h, k)
            return h

        def residual(self, ctx, h):
            return None

    solver = Interleave(NoResidual("learned", log), Richardson(omega=0.5), pattern=(1, 2))
    sol = solve(None, solver, problem, tol=1e-8, maxiter=200)
    assert sol.criterion == "residual" and sol.success
    torch.testing.assert_close(sol.u, torch.ones(2, 3, dtype=torch.float64), atol=1e-7, rtol=0)
    assert sol.stats["steps_per_solver"]["learned"] == 2 * len(log)  # two samples per call


def test_interleave_rejects_bad_pattern():
    with pytest.raises(ValueError, match="2 positive integers"):
        Interleave(Richardson(0.5), Richardson(0.5), pattern=(1, 0))
    with pytest.raises(TypeError):
        Interleave(Richardson(0.5), lambda h: h)
    with pytest.raises(ValueError, match="Interleave: expected at least 2 child solver.*got 1"):
        Interleave(Richardson(0.5))


def test_cycle_runs_every_child_once_per_step_in_order():
    log: list = []
    a, b = Recorder("a", log), Recorder("b", log)
    h0 = torch.ones(1, 2, dtype=torch.float64)
    sol = solve(h0, Cycle(a, b), h0, tol=0.0, maxiter=3)
    assert log == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert a.prepared == b.prepared == 1 and sol.stats["steps_per_solver"] == {"Cycle": 3}
    assert torch.equal(sol.u, h0 / 64)  # each child halves h: 2 children x 3 steps
    with pytest.raises(ValueError, match="Cycle: expected at least 1 child solver.*got 0"):
        Cycle()


def test_cycle_of_two_jacobi_sweeps_is_the_jacobi_solver_with_two_sweeps():
    # Independent reference: Jacobi(sweeps=2) applies the same two sweeps as one step.
    a = darcy_coefficient(gaussian_random_field(2, 15, generator=torch.Generator().manual_seed(0)))
    problem = Darcy2D(a)
    pair = solve(None, Cycle(Jacobi(), Jacobi()), problem, tol=None, maxiter=7)
    double = solve(None, Jacobi(sweeps=2), problem, tol=None, maxiter=7)
    torch.testing.assert_close(pair.u, double.u, rtol=1e-14, atol=0)
    assert pair.criterion == "residual" and repr(Cycle(Jacobi())).startswith("Cycle(Jacobi(")


def test_interleave_with_multigrid_solves_a_one_node_periodic_grid():
    # One periodic node: A = 0 and the mean-zero solution is 0; preparing the multigrid
    # child used to fail on the singular coarsest matrix.
    problem = Poisson2D(torch.ones(2, 1, 1, 1), bc="periodic")
    solver = Interleave(GaussSeidel(), Multigrid())
    sol = solve(None, solver, problem, tol=1e-12, maxiter=4)
    assert sol.success
    zero = torch.zeros(2, 1, 1, 1, dtype=torch.float64)
    assert torch.equal(sol.u, zero)
    ctx = solver.prepare(problem)
    h = torch.full((2, 1, 1, 1), 3.0, dtype=torch.float64)
    assert torch.equal(solver.step(ctx, h, 0), zero) and torch.equal(solver.step(ctx, h, 1), zero)
