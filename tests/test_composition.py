"""Interleave: the order of child steps, each child's own step count, residual choice, freezing."""

from __future__ import annotations

import pytest
import torch
from core_solvers import DiagonalProblem, Richardson

from irsolve import FixedPointSolver, Interleave, solve
from irsolve.solvers import GaussSeidel, Multigrid, Poisson2D


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
