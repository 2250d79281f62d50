"""The solver interface: swapping a context's right-hand side with ``with_rhs``.

A context given a new right-hand side must step exactly like a context
prepared from scratch on the problem with that right-hand side (the
reference), for every solver that keeps its per-solve state in a context.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import pytest
import torch
from core_solvers import DiagonalProblem

from irsolve import Anderson, FixedPointSolver, Interleave
from irsolve.interface import with_rhs
from irsolve.solvers import (
    Darcy2D,
    GaussSeidel,
    Jacobi,
    Multigrid,
    Poisson2D,
    Refiner,
    darcy_coefficient,
    gaussian_random_field,
)

DT = torch.float64


def _darcy(batch: int = 2, n: int = 15, seed: int = 0) -> Darcy2D:
    grf = gaussian_random_field(batch, n, generator=torch.Generator().manual_seed(seed))
    return Darcy2D(darcy_coefficient(grf))


def _rhs(like: torch.Tensor, seed: int = 1) -> torch.Tensor:
    return torch.randn(like.shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


@dataclass
class _Holder:
    problem: object
    tensor: torch.Tensor
    count: int


Pair = namedtuple("Pair", ["problem", "tag"])


def test_with_rhs_replaces_every_problem_inside_containers_and_keeps_the_rest():
    problem = Poisson2D(torch.ones(2, 1, 7, 7))
    f = _rhs(problem.f)
    tensor = torch.arange(3.0)
    ctx = {"a": [_Holder(problem, tensor, 3)], "b": Pair(problem, "x"), "c": (1, "s")}
    new = with_rhs(ctx, f)
    assert torch.equal(new["a"][0].problem.f, f) and torch.equal(new["b"].problem.f, f)
    assert new["a"][0].tensor is tensor and new["a"][0].count == 3
    assert isinstance(new["b"], Pair) and new["b"].tag == "x"
    assert new["c"] is ctx["c"]  # nothing to replace: the same object comes back
    assert torch.equal(problem.f, torch.ones(2, 1, 7, 7, dtype=DT))  # the original is untouched


def test_with_rhs_returns_the_same_container_when_it_holds_no_problem():
    ctx = {"levels": [_Holder(None, torch.zeros(2), 1)], "t": (torch.ones(1),)}
    assert with_rhs(ctx, torch.zeros(1)) is ctx


def test_stencil_problem_with_rhs_keeps_the_operator_and_checks_the_shape():
    problem = _darcy()
    f = _rhs(problem.f).to(torch.float32)
    new = problem.with_rhs(f)
    assert new.stencil is problem.stencil and new.f.dtype == DT
    u = _rhs(problem.f, seed=2)
    torch.testing.assert_close(new.residual(u), f.to(DT) - problem.apply(u), rtol=0, atol=0)
    with pytest.raises(
        ValueError, match=r"expected f of shape \(2, 1, 15, 15\), got \(1, 1, 15, 15\)"
    ):
        problem.with_rhs(f[:1])


def test_problem_without_with_rhs_or_apply_says_so():
    problem = DiagonalProblem(torch.ones(2, 3, dtype=DT), torch.ones(2, 3, dtype=DT))
    with pytest.raises(NotImplementedError, match="DiagonalProblem does not define with_rhs"):
        with_rhs(problem, torch.zeros(2, 3))
    with pytest.raises(NotImplementedError, match="DiagonalProblem does not define apply"):
        problem.apply(torch.zeros(2, 3))


SOLVERS = {
    "jacobi": Jacobi(sweeps=2),
    "gauss_seidel": GaussSeidel(),
    "multigrid": Multigrid(),
    "interleave": Interleave(Jacobi(), Multigrid(), pattern=(2, 1)),
    "anderson": Anderson(GaussSeidel(), m=3),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_context_with_new_rhs_steps_like_a_context_prepared_for_it(name: str):
    solver: FixedPointSolver = SOLVERS[name]
    problem = _darcy()
    f = _rhs(problem.f)
    ctx = solver.prepare(problem)
    h = problem.zeros()
    for k in range(3):  # fill the history of Anderson with the old right-hand side
        h = solver.step(ctx, h, k)
    swapped = solver.with_rhs(ctx, f)
    fresh = solver.prepare(problem.with_rhs(f))
    u, v = problem.zeros(), problem.zeros()
    for k in range(4):
        u, v = solver.step(swapped, u, k), solver.step(fresh, v, k)
    # Same operations on the same numbers: equal up to summation order.
    torch.testing.assert_close(u, v, rtol=1e-13, atol=1e-13 * float(v.abs().max()))
    torch.testing.assert_close(solver.residual(swapped, u), f - problem.apply(u))


def test_multigrid_with_rhs_shares_the_hierarchy_levels():
    solver = Multigrid()
    problem = _darcy()
    ctx = solver.prepare(problem)
    swapped = solver.with_rhs(ctx, _rhs(problem.f))
    assert swapped.levels is ctx.levels and swapped.lu is ctx.lu
    assert torch.equal(ctx.problem.f, problem.f)


def test_refiner_cannot_take_a_new_rhs_alone_or_inside_interleave():
    problem = _darcy()
    refiner = Refiner(lambda z: z[:, -1:], alpha=0.5)
    with pytest.raises(TypeError, match="Refiner cannot take a new right-hand side"):
        refiner.with_rhs(refiner.prepare(problem), problem.f)
    both = Interleave(Jacobi(), refiner)
    with pytest.raises(TypeError, match="Refiner cannot take a new right-hand side"):
        both.with_rhs(both.prepare(problem), problem.f)
