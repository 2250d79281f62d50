"""Composite solvers built from child fixed-point steps.

:class:`Cycle` composes its children into one step (``G = G_n o ... o G_1``:
a learned correction, then ``nu`` smoothing sweeps, is one hybrid cycle);
:class:`Interleave` alternates them in a repeating pattern, one child per
step, so the engine judges convergence after each child's step.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from irsolve._validate import check_int
from irsolve.interface import FixedPointSolver, require_solver

__all__ = ["Cycle", "Interleave"]


class _Composite(FixedPointSolver):
    """Children with one context each: the context is the tuple of theirs.

    The residual is the first child's that defines one (a learned step on a
    tensor input has none, a classical step on a problem has the physical
    residual); restricting and swapping the right-hand side act child by child.
    """

    def __init__(self, owner: str, solvers: tuple[FixedPointSolver, ...], at_least: int) -> None:
        if len(solvers) < at_least:
            raise ValueError(
                f"{owner}: expected at least {at_least} child solver(s), got {len(solvers)}"
            )
        self.solvers = tuple(require_solver(owner, "each child", solver) for solver in solvers)
        self.default_dtype = solvers[0].default_dtype

    def prepare(self, x: Any) -> tuple[Any, ...]:
        return tuple(solver.prepare(x) for solver in self.solvers)

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


class Cycle(_Composite):
    """One step applies each child once, in order, ``repeats`` times:
    ``h <- (G_n o ... o G_1)^repeats (h)``.

    ``Cycle(ResidualCorrector(net), Jacobi(0.8, sweeps=5))`` is the hybrid
    cycle of a learned correction and five Jacobi sweeps;
    ``Cycle(ShiftedLaplacian(), ResidualCorrector(net, "residual"), repeats=3)``
    is the learned Helmholtz preconditioner. As a Krylov preconditioner or a
    multigrid coarse solve each application runs the whole cycle
    (:func:`irsolve.interface.apply_from_zero`): ``repeats`` is the one count
    of inner steps. In step ``k`` every child sees ``k * repeats + i`` as its
    index in repeat ``i`` (the cycle's index when ``repeats = 1``), so a
    child's schedule or history counts its applications. The engine sees
    (and judges) only the composed step; :meth:`step_name` reports ``"Cycle"``.

    Parameters
    ----------
    *solvers : FixedPointSolver
        One or more children, applied first to last.
    repeats : int
        How often one step runs the children (>= 1).
    """

    def __init__(self, *solvers: FixedPointSolver, repeats: int = 1) -> None:
        super().__init__("Cycle", solvers, at_least=1)
        self.repeats = check_int("Cycle", "repeats", repeats, minimum=1)

    def step(self, ctx: tuple[Any, ...], h: Tensor, k: int) -> Tensor:
        for i in range(self.repeats):
            for solver, child_ctx in zip(self.solvers, ctx, strict=True):
                h = solver.step(child_ctx, h, k * self.repeats + i)
        return h

    def __repr__(self) -> str:
        repeats = f", repeats={self.repeats}" if self.repeats > 1 else ""
        return f"Cycle({', '.join(repr(s) for s in self.solvers)}{repeats})"


class Interleave(_Composite):
    """Apply child solvers in a repeating pattern: ``pattern[i]`` steps of child ``i``.

    ``Interleave(a, b, pattern=(1, 4))`` runs one ``a`` step, then four ``b``
    steps, and repeats. Each child's ``prepare`` is called once per solve; the
    context is the tuple of the children's contexts and the residual the
    first child's that defines one. Each child sees its *own* step count as
    ``k`` (so a learned step's ``alpha_k`` schedule counts its own
    applications). To apply several children as *one* step, use :class:`Cycle`.

    Parameters
    ----------
    *solvers : FixedPointSolver
        Two or more children.
    pattern : tuple of int, optional
        Steps of each child per cycle; default one each.
    """

    def __init__(self, *solvers: FixedPointSolver, pattern: tuple[int, ...] | None = None):
        super().__init__("Interleave", solvers, at_least=2)
        pattern = tuple(pattern) if pattern is not None else (1,) * len(solvers)
        if len(pattern) != len(solvers) or any(
            check_int("Interleave", "pattern", p) < 1 for p in pattern
        ):
            raise ValueError(
                f"Interleave: expected a pattern of {len(solvers)} positive integers (one per "
                f"child), got {pattern}"
            )
        self.pattern = tuple(int(p) for p in pattern)
        self.cycle = sum(self.pattern)

    def child_at(self, k: int) -> tuple[int, int]:
        """``(child index, that child's own step index)`` for global step ``k``."""
        cycles, position = divmod(k, self.cycle)
        for index, count in enumerate(self.pattern):
            if position < count:
                return index, cycles * count + position
            position -= count
        raise AssertionError("unreachable: position lies inside one cycle")

    def step(self, ctx: tuple[Any, ...], h: Tensor, k: int) -> Tensor:
        index, local_k = self.child_at(k)
        return self.solvers[index].step(ctx[index], h, local_k)

    def step_name(self, k: int) -> str:
        index, local_k = self.child_at(k)
        return self.solvers[index].step_name(local_k)

    def __repr__(self) -> str:
        children = ", ".join(repr(s) for s in self.solvers)
        return f"Interleave({children}, pattern={self.pattern})"
