"""The step map ``G(h) = solver.step(ctx, h, k)`` of a solver, as a batched function.

Every analysis in :mod:`irsolve.analysis` differentiates or probes the map a
:class:`~irsolve.interface.FixedPointSolver` applies once, for a fixed input
``x`` (hence a fixed context) and a fixed step index ``k``. :class:`StepMap`
holds that map; :meth:`StepMap.tile` repeats its context so that several probe
points per sample are evaluated in one batched call (the map acts on each
sample independently, so probe ``p`` of sample ``b`` sits at row
``p * B + b``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from irsolve import reductions
from irsolve._validate import check_int
from irsolve.interface import FixedPointSolver, Problem

__all__ = ["StepMap", "ball_points", "working_dtype"]


def ball_points(
    like: Tensor,
    radius: Tensor,
    *,
    generator: torch.Generator | None = None,
    norm: Callable[[Tensor], Tensor] = reductions.norm,
) -> Tensor:
    """Random points in the balls ``||e_b|| <= radius_b``, shaped like ``like``.

    A Gaussian direction scaled to unit ``norm``, at radius ``radius U^(1/n)``
    (``U`` uniform, ``n`` unknowns per sample): uniform in the ball for the
    Euclidean norm; for another norm (the energy norm, an ellipsoid) the
    points fill the ball but are not uniform in volume.
    """
    direction = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    direction = direction / reductions.broadcast(
        norm(direction).clamp_min(torch.finfo(like.dtype).tiny), like
    )
    n = like[0].numel()
    u = torch.rand(like.shape[0], generator=generator, dtype=like.dtype, device=like.device)
    scale = radius * u ** (1.0 / n)
    return direction * reductions.broadcast(scale, like)


def working_dtype(solver: FixedPointSolver, x: Any) -> torch.dtype:
    """The dtype the analysis computes in: a problem's own, else ``solver.default_dtype``."""
    if isinstance(x, Problem):
        return x.zeros().dtype
    return solver.default_dtype


class StepMap:
    """``G(h) = solver.step(ctx, h, k)`` for one prepared input and a fixed ``k``.

    Parameters
    ----------
    solver
        Any fixed-point solver.
    x
        The solver's input: a tensor ``(B, C, *space)`` (converted to
        ``solver.default_dtype``) or a :class:`~irsolve.interface.Problem`.
    k
        Step index passed to ``solver.step`` (matters for step-size schedules
        and composite solvers).
    ctx
        An already prepared context for ``x``; prepared here when omitted.
    """

    def __init__(self, solver: FixedPointSolver, x: Any, k: int = 0, ctx: Any = None) -> None:
        if not isinstance(solver, FixedPointSolver):
            raise TypeError(
                f"StepMap: expected solver to be a FixedPointSolver, got {type(solver).__name__}"
            )
        self.solver = solver
        self.k = check_int("StepMap", "k", k, minimum=0)
        self.dtype = working_dtype(solver, x)
        if isinstance(x, Tensor):
            x = x.to(self.dtype)
        self.ctx = solver.prepare(x) if ctx is None else ctx

    def __call__(self, h: Tensor) -> Tensor:
        return self.solver.step(self.ctx, h, self.k)

    def tile(self, copies: int, like: Tensor) -> StepMap:
        """The same map on ``copies`` stacked copies of the batch of ``like``.

        Probe ``p`` of sample ``b`` is row ``p * B + b`` (``B = like.shape[0]``).
        """
        if copies == 1:
            return self
        index = torch.arange(like.shape[0], device=like.device).repeat(copies)
        tiled = StepMap.__new__(StepMap)
        tiled.solver, tiled.k, tiled.dtype = self.solver, self.k, self.dtype
        tiled.ctx = self.solver.restrict(self.ctx, index)
        return tiled
