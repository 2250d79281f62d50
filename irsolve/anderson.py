"""Anderson acceleration of any fixed-point solver, per sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from irsolve.interface import FixedPointSolver

__all__ = ["Anderson", "AndersonContext"]


@dataclass
class AndersonContext:
    """Per-solve state: the inner solver's context and the last ``m`` iterates and images.

    ``iterates[:, j]`` holds ``h_i`` and ``images[:, j]`` holds ``G(h_i)`` for the
    last ``stored`` steps, flattened per sample; both ``(B, m, N)``.
    """

    inner: Any
    iterates: Tensor | None = None
    images: Tensor | None = None
    stored: int = 0


class Anderson(FixedPointSolver):
    r"""Anderson acceleration (type II) of the map ``G`` of ``solver``.

    With the last ``m_k = min(k + 1, m)`` iterates ``h_i`` and residuals
    ``g_i = G(h_i) - h_i`` (columns of ``R``), solve per sample

    .. math:: \min_\gamma \|R\gamma\|_2 \quad \text{s.t.} \quad \textstyle\sum_i \gamma_i = 1,

    regularised as ``(R^T R + lam * ||R^T R||_2 I) gamma = mu 1``, and step to
    ``h_{k+1} = sum_i gamma_i ((1 - beta) h_i + beta G(h_i))``.
    Where ``R^T R`` is ill-conditioned (condition number above
    ``1 / sqrt(eps)`` of the dtype) or the weights are not finite, that sample
    takes the plain step ``G(h_k)``. Reference: Walker & Ni, SIAM J. Numer.
    Anal. 49 (2011); the history lives in the context, so one ``Anderson``
    object can serve several solves at once.

    Parameters
    ----------
    solver : FixedPointSolver
        The map to accelerate.
    m : int
        History length.
    beta : float
        Mixing (damping) parameter; 1 is undamped.
    lam : float
        Tikhonov regularisation, relative to the largest eigenvalue of ``R^T R``.
    """

    def __init__(self, solver: FixedPointSolver, m: int = 5, beta: float = 1.0, lam: float = 1e-4):
        if not isinstance(solver, FixedPointSolver):
            raise TypeError(
                f"expected a FixedPointSolver to accelerate, got {type(solver).__name__}"
            )
        if int(m) != m or m < 1:
            raise ValueError(f"expected history length m >= 1, got {m}")
        if not 0 < beta <= 1:
            raise ValueError(f"expected mixing beta in (0, 1], got {beta}")
        if lam < 0:
            raise ValueError(f"expected regularisation lam >= 0, got {lam}")
        self.solver, self.m, self.beta, self.lam = solver, int(m), float(beta), float(lam)
        self.default_dtype = solver.default_dtype

    def prepare(self, x: Any) -> AndersonContext:
        return AndersonContext(inner=self.solver.prepare(x))

    def residual(self, ctx: AndersonContext, h: Tensor) -> Tensor | None:
        return self.solver.residual(ctx.inner, h)

    def restrict(self, ctx: AndersonContext, index: Tensor) -> AndersonContext:
        return AndersonContext(
            inner=self.solver.restrict(ctx.inner, index),
            iterates=None if ctx.iterates is None else ctx.iterates.index_select(0, index),
            images=None if ctx.images is None else ctx.images.index_select(0, index),
            stored=ctx.stored,
        )

    def step(self, ctx: AndersonContext, h: Tensor, k: int) -> Tensor:
        image = self.solver.step(ctx.inner, h, k)
        batch = h.shape[0]
        if ctx.iterates is None:
            size = h[0].numel()
            ctx.iterates = h.new_zeros(batch, self.m, size)
            ctx.images = h.new_zeros(batch, self.m, size)
        slot = h.new_tensor([ctx.stored % self.m], dtype=torch.long)
        # Out-of-place writes keep the history differentiable under solve(grad=True).
        ctx.iterates = ctx.iterates.index_copy(1, slot, h.reshape(batch, 1, -1))
        ctx.images = ctx.images.index_copy(1, slot, image.reshape(batch, 1, -1))
        ctx.stored += 1
        used = min(ctx.stored, self.m)
        if used == 1:
            return image

        iterates, images = ctx.iterates[:, :used], ctx.images[:, :used]
        residuals = images - iterates
        gram = residuals @ residuals.transpose(1, 2)
        scale = torch.linalg.matrix_norm(gram, ord=2).clamp_min(torch.finfo(h.dtype).tiny)
        eye = torch.eye(used, dtype=h.dtype, device=h.device)
        gram = gram + self.lam * scale[:, None, None] * eye
        ones = h.new_ones(batch, used, 1)
        weights = torch.linalg.solve(gram, ones).squeeze(-1)
        weights = weights / weights.sum(dim=1, keepdim=True)

        ill_conditioned = torch.linalg.cond(gram) > torch.finfo(h.dtype).eps ** -0.5
        usable = torch.isfinite(weights).all(dim=1) & ~ill_conditioned
        mixed = (1 - self.beta) * iterates + self.beta * images
        accelerated = (weights.unsqueeze(1) @ mixed).reshape(h.shape)
        return torch.where(usable.reshape(-1, *([1] * (h.dim() - 1))), accelerated, image)

    def step_name(self, k: int) -> str:
        return f"Anderson({self.solver.step_name(k)})"

    def __repr__(self) -> str:
        return f"Anderson({self.solver!r}, m={self.m}, beta={self.beta}, lam={self.lam})"
