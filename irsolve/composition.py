"""Composite solvers: interleave several fixed-point steps in a fixed pattern."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from irsolve._validate import check_int
from irsolve.interface import FixedPointSolver

__all__ = ["Interleave"]


class Interleave(FixedPointSolver):
    """Apply child solvers in a repeating pattern: ``pattern[i]`` steps of child ``i``.

    ``Interleave(a, b, pattern=(1, 4))`` runs one ``a`` step, then four ``b``
    steps, and repeats. Each child's ``prepare`` is called once per solve; the
    context is the tuple of the children's contexts. The residual is the
    first child's that defines one (a learned step on a tensor input has
    none, a classical step on a problem has the physical residual). Each child
    sees its *own* step count as ``k`` (so a learned step's ``alpha_k``
    schedule counts its own applications).

    Parameters
    ----------
    *solvers : FixedPointSolver
        Two or more children.
    pattern : tuple of int, optional
        Steps of each child per cycle; default one each.
    """

    def __init__(self, *solvers: FixedPointSolver, pattern: tuple[int, ...] | None = None):
        if len(solvers) < 1:
            raise ValueError("Interleave: expected at least one child solver, got none")
        for solver in solvers:
            if not isinstance(solver, FixedPointSolver):
                raise TypeError(
                    f"Interleave: expected FixedPointSolver children, got {type(solver).__name__}"
                )
        pattern = tuple(pattern) if pattern is not None else (1,) * len(solvers)
        if len(pattern) != len(solvers) or any(
            check_int("Interleave", "pattern", p) < 1 for p in pattern
        ):
            raise ValueError(
                f"Interleave: expected a pattern of {len(solvers)} positive integers (one per "
                f"child), got {pattern}"
            )
        self.solvers = solvers
        self.pattern = tuple(int(p) for p in pattern)
        self.cycle = sum(self.pattern)
        self.default_dtype = solvers[0].default_dtype

    def child_at(self, k: int) -> tuple[int, int]:
        """``(child index, that child's own step index)`` for global step ``k``."""
        cycles, position = divmod(k, self.cycle)
        for index, count in enumerate(self.pattern):
            if position < count:
                return index, cycles * count + position
            position -= count
        raise AssertionError("unreachable: position lies inside one cycle")

    def prepare(self, x: Any) -> tuple[Any, ...]:
        return tuple(solver.prepare(x) for solver in self.solvers)

    def step(self, ctx: tuple[Any, ...], h: Tensor, k: int) -> Tensor:
        index, local_k = self.child_at(k)
        return self.solvers[index].step(ctx[index], h, local_k)

    def residual(self, ctx: tuple[Any, ...], h: Tensor) -> Tensor | None:
        for solver, child_ctx in zip(self.solvers, ctx, strict=True):
            r = solver.residual(child_ctx, h)
            if r is not None:
                return r
        return None

    def restrict(self, ctx: tuple[Any, ...], index: Tensor) -> tuple[Any, ...]:
        return tuple(
            solver.restrict(child_ctx, index)
            for solver, child_ctx in zip(self.solvers, ctx, strict=True)
        )

    def with_rhs(self, ctx: tuple[Any, ...], f: Tensor) -> tuple[Any, ...]:
        return tuple(
            solver.with_rhs(child_ctx, f)
            for solver, child_ctx in zip(self.solvers, ctx, strict=True)
        )

    def step_name(self, k: int) -> str:
        index, local_k = self.child_at(k)
        return self.solvers[index].step_name(local_k)

    def __repr__(self) -> str:
        children = ", ".join(repr(s) for s in self.solvers)
        return f"Interleave({children}, pattern={self.pattern})"
