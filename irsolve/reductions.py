"""Per-sample reductions: one value per sample of a batch ``(B, ...)``, over all other dims.

Every solver, the engine and the analysis reduce batched tensors sample by
sample; these are the only definitions. Norms scale each sample by its
largest entry before squaring, so a sample of size ``1e-170`` (whose squares
underflow in float64) has its true norm, not 0, and one of size ``1e170``
does not overflow; a NaN or Inf entry gives a NaN or Inf norm. The inner
product conjugates its first argument, ``<a, b> = sum(conj(a) b)``, as
``numpy.vdot`` does, so complex problems (Helmholtz) use the same functions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["broadcast", "dot", "flat", "max_abs", "norm", "rms"]


def flat(t: Tensor) -> Tensor:
    """``t`` as ``(B, N)``: one row per sample (a ``(B,)`` tensor gives ``(B, 1)``)."""
    return t.flatten(1) if t.dim() > 1 else t.unsqueeze(1)


def broadcast(values: Tensor, like: Tensor) -> Tensor:
    """``(B,)`` values viewed as ``(B, 1, ..., 1)`` to broadcast against ``like`` ``(B, ...)``."""
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


def dot(a: Tensor, b: Tensor) -> Tensor:
    """``(B,)``: ``<a_b, b_b> = sum(conj(a_b) * b_b)`` over all non-batch dims.

    Real for real tensors; for complex ones ``dot(a, a)`` is ``||a||^2`` (real
    valued, complex dtype). Not rescaled: a product of two samples of size
    ``1e-170`` underflows to 0, so test sizes with :func:`norm`.
    """
    return (flat(a).conj() * flat(b)).sum(dim=1)


def max_abs(t: Tensor) -> Tensor:
    """``(B,)``: ``max |t_b|`` (0 for a sample with no entries)."""
    rows = flat(t)
    if rows.shape[1] == 0:
        return rows.abs().sum(dim=1)
    return rows.abs().amax(dim=1)


def norm(t: Tensor) -> Tensor:
    """``(B,)``: the Euclidean norm ``||t_b||_2``, without underflow or overflow.

    Computed as ``m ||t_b / m||_2`` with ``m = max |t_b|`` (the scaling of
    LAPACK's ``dnrm2``): the squares of ``t_b / m`` lie in ``[0, 1]``. Real
    valued also for complex ``t``.
    """
    rows = flat(t)
    scale = max_abs(rows).detach()
    safe = torch.where(torch.isfinite(scale) & (scale > 0), scale, torch.ones_like(scale))
    return torch.linalg.vector_norm(rows / safe.unsqueeze(1), dim=1) * safe


def rms(t: Tensor) -> Tensor:
    """``(B,)``: the root mean square ``||t_b||_2 / sqrt(N)``, independent of the resolution."""
    return norm(t) / math.sqrt(max(flat(t).shape[1], 1))
