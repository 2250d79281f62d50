"""The fixed-point solver interface shared by classical and learned steps.

A solver is a map ``G`` applied as ``h_{k+1} = G(h_k)``; :func:`irsolve.solve`
drives it. Everything a solver needs per input (a multigrid hierarchy, an
Anderson history) lives in the *context* returned by :meth:`prepare`, never
on the solver object, so one solver can serve several solves at once.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "FixedPointSolver",
    "Problem",
    "apply_from_zero",
    "require_solver",
    "restrict",
    "with_rhs",
]


class Problem(ABC):
    """A batched discrete problem ``A u = f`` that carries its own operator.

    Subclasses (``Poisson2D``, ``Darcy2D``) hold batched tensors with the
    batch along dim 0 and implement the four methods below, which the engine
    uses to start a solve, judge it and drop finished samples.
    """

    @property
    @abstractmethod
    def batch_size(self) -> int:
        """Number of samples in the batch."""

    @abstractmethod
    def zeros(self) -> Tensor:
        """A zero solution of the right shape, dtype and device: ``(B, C, *space)``."""

    @abstractmethod
    def residual(self, u: Tensor) -> Tensor:
        """Physical residual ``f - A u``, shaped like ``u``."""

    @abstractmethod
    def restrict(self, index: Tensor) -> Problem:
        """The same problem restricted to the samples ``index`` (a 1-D long tensor)."""

    def apply(self, u: Tensor) -> Tensor:
        """The operator ``A u``, shaped like ``u`` (needed by Krylov methods).

        Subclasses that can apply their operator override this; the default raises.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define apply(u) (the operator A u); "
            "Krylov methods need it"
        )

    def with_rhs(self, f: Tensor) -> Problem:
        """The same operator with the right-hand side ``f`` (shaped like a solution).

        Used to apply a solver as a preconditioner to ``A z = r``: the solver's
        context is prepared once and only the right-hand side is swapped (see
        :func:`with_rhs`). Subclasses that hold ``f`` override this; the
        default raises.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define with_rhs(f), so a solver's context "
            "built on it cannot be given a new right-hand side"
        )


def restrict(obj: Any, index: Tensor) -> Any:
    """Restrict a solver context to the batch rows ``index``.

    Tensors are sliced along dim 0 (every tensor in a context is batched);
    objects with a ``restrict(index)`` method (problems, contexts of their
    own kind) use it; dataclasses, tuples, lists and dicts are restricted
    field by field; anything else (numbers, strings, ``None``, modules) is
    shared by all samples and passed through unchanged.
    """
    if isinstance(obj, Tensor):
        return obj.index_select(0, index) if obj.dim() > 0 else obj
    if hasattr(obj, "restrict") and callable(obj.restrict):
        return obj.restrict(index)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: restrict(getattr(obj, f.name), index) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, (tuple, list)):
        items = [restrict(o, index) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    if isinstance(obj, dict):
        return {key: restrict(value, index) for key, value in obj.items()}
    return obj


def with_rhs(obj: Any, f: Tensor) -> Any:
    """Give a solver context the right-hand side ``f``.

    Every :class:`Problem` in the context is replaced by ``problem.with_rhs(f)``;
    the walk mirrors :func:`restrict`: objects with a ``with_rhs(f)`` method
    (problems, contexts of their own kind) use it; dataclasses, tuples, lists
    and dicts are rebuilt field by field; anything else (tensors, numbers,
    modules) is kept. A container in which nothing changed is returned as
    is, so swapping the right-hand side of a multigrid hierarchy copies no
    level. Quantities a context derived from the old ``f`` are *not*
    updated: a solver that caches such a quantity overrides
    :meth:`FixedPointSolver.with_rhs`.
    """
    if isinstance(obj, Tensor):
        return obj
    if hasattr(obj, "with_rhs") and callable(obj.with_rhs) and not isinstance(obj, type):
        return obj.with_rhs(f)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for field in dataclasses.fields(obj):
            value = getattr(obj, field.name)
            new = with_rhs(value, f)
            if new is not value:
                changes[field.name] = new
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, (tuple, list)):
        items = [with_rhs(o, f) for o in obj]
        if all(new is old for new, old in zip(items, obj, strict=True)):
            return obj
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    if isinstance(obj, dict):
        values = {key: with_rhs(value, f) for key, value in obj.items()}
        return obj if all(values[key] is obj[key] for key in obj) else values
    return obj


def require_solver(owner: str, name: str, value: Any) -> FixedPointSolver:
    """``value`` if it is a :class:`FixedPointSolver` instance, else a one-line ``TypeError``.

    A solver class passed where an instance belongs (``FlexibleGMRES(ShiftedLaplacian)``)
    is named with the call that fixes it (``ShiftedLaplacian()``).
    """
    if isinstance(value, type) and issubclass(value, FixedPointSolver):
        raise TypeError(
            f"{owner}: expected {name} to be a solver instance, got the class "
            f"{value.__name__}: pass an instance, {value.__name__}()"
        )
    if not isinstance(value, FixedPointSolver):
        raise TypeError(
            f"{owner}: expected {name} to be a FixedPointSolver, got {type(value).__name__}"
        )
    return value


def apply_from_zero(solver: FixedPointSolver, ctx: Any, f: Tensor) -> Tensor:
    """``z = G(0)`` on ``A z = f``: one step of ``solver`` from zero with right-hand side ``f``.

    ``ctx`` is ``solver``'s context, prepared once on the operator; only its
    right-hand side is swapped (:meth:`FixedPointSolver.with_rhs`). This is how
    a solver serves as an approximate inverse ``z = B f``: the preconditioner
    of a Krylov method, the inner solve of the shifted Laplacian, a multigrid
    coarse solve. Several steps are one step of a ``Cycle(..., repeats=m)``.
    """
    return solver.step(solver.with_rhs(ctx, f), torch.zeros_like(f), 0)


class FixedPointSolver(ABC):
    """One step ``h_{k+1} = G(x, h_k)`` of a fixed-point iteration.

    Subclasses implement :meth:`step`; :meth:`prepare` and :meth:`residual`
    have defaults. A solver keeps no per-solve state on ``self``: what must
    survive between steps goes in the context.
    """

    #: dtype the solver computes in by default (classical: float64, learned: float32).
    default_dtype: torch.dtype = torch.float64

    def prepare(self, x: Any) -> Any:
        """Per-input set-up, done once per solve; returns the context (default: ``x``)."""
        return x

    @abstractmethod
    def step(self, ctx: Any, h: Tensor, k: int) -> Tensor:
        """Apply the map once: return ``h_{k+1}`` from ``h_k`` (``k`` is the iteration index)."""

    def residual(self, ctx: Any, h: Tensor) -> Tensor | None:
        """Physical residual ``f - A h`` where the problem defines one, else ``None``.

        The default returns the problem's residual when the context is a
        :class:`Problem`, and ``None`` for plain tensor inputs.
        """
        if isinstance(ctx, Problem):
            return ctx.residual(h)
        return None

    def restrict(self, ctx: Any, index: Tensor) -> Any:
        """Context for the samples ``index`` only; default: :func:`restrict`."""
        return restrict(ctx, index)

    def with_rhs(self, ctx: Any, f: Tensor) -> Any:
        """Context for the same operator with right-hand side ``f``; default: :func:`with_rhs`.

        Lets a Krylov method prepare a preconditioner once per solve and apply
        it to a new residual each iteration. A solver whose context holds a
        quantity derived from ``f`` overrides this (or raises, when it cannot
        serve a new right-hand side).
        """
        return with_rhs(ctx, f)

    def step_name(self, k: int) -> str:
        """Name of the solver that performs step ``k`` (composites report a child)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
