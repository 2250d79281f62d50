"""Batched tridiagonal solves by parallel cyclic reduction (PCR), factorised once.

A system ``a_k x_{k-1} + b_k x_k + c_k x_{k+1} = d_k``, ``k = 0..n-1`` (``a_0 = c_{n-1} = 0``),
is reduced in ``ceil(log2 n)`` steps. The step with stride ``s`` eliminates the
couplings at distance ``s`` from every equation at once,

``alpha_k = -a_k / b_{k-s}``, ``gamma_k = -c_k / b_{k+s}``,
``a_k <- alpha_k a_{k-s}``, ``c_k <- gamma_k c_{k+s}``,
``b_k <- b_k + alpha_k c_{k-s} + gamma_k a_{k+s}``,
``d_k <- d_k + alpha_k d_{k-s} + gamma_k d_{k+s}``

(entries past either end are zero), after which every equation has decoupled and
``x_k = d_k / b_k`` (Hockney and Jesshope, *Parallel Computers 2*, Adam Hilger
1988, Sec. 5.4). The multipliers depend only on the matrix, so
:func:`factorise` computes them once and :func:`solve` applies them to any
right-hand side: ``ceil(log2 n)`` vectorised steps instead of the ``2 n``
sequential ones of the Thomas algorithm. Reduction keeps diagonal dominance, so
it is stable for the weakly diagonally dominant M-matrix lines of a relaxation
on 5- and 9-point elliptic stencils. torch has no batched banded solver, and
``scipy.linalg.solve_banded`` works on host arrays only, hence this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

__all__ = ["Tridiagonal", "factorise", "solve"]


@dataclass
class Tridiagonal:
    """PCR multipliers of a batch of tridiagonal systems along the last dim.

    Attributes
    ----------
    alpha, gamma
        One ``(..., n)`` tensor per reduction step (strides 1, 2, 4, ...).
    inv_diag
        ``1 / b`` after the last step, ``(..., n)``.
    """

    alpha: list[Tensor]
    gamma: list[Tensor]
    inv_diag: Tensor


def _back(x: Tensor, s: int) -> Tensor:
    """``y_k = x_{k-s}`` along the last dim, zero for ``k < s``."""
    return F.pad(x[..., :-s], (s, 0))


def _ahead(x: Tensor, s: int) -> Tensor:
    """``y_k = x_{k+s}`` along the last dim, zero for ``k >= n - s``."""
    return F.pad(x[..., s:], (0, s))


def factorise(lower: Tensor, diag: Tensor, upper: Tensor) -> Tridiagonal:
    """Multipliers for :func:`solve`, one system per index of the leading dims.

    ``lower[..., k]`` couples ``x_k`` to ``x_{k-1}`` and ``upper[..., k]`` to
    ``x_{k+1}``; ``lower[..., 0]`` and ``upper[..., -1]`` are ignored (taken as zero).
    """
    n = diag.shape[-1]
    a = lower.clone()
    c = upper.clone()
    a[..., 0] = 0.0
    c[..., -1] = 0.0
    b = diag
    alphas, gammas = [], []
    s = 1
    while s < n:
        # Outside the line b reads one (never divides by zero) and a, c read zero.
        alpha = -a / F.pad(b[..., :-s], (s, 0), value=1.0)
        gamma = -c / F.pad(b[..., s:], (0, s), value=1.0)
        b = b + alpha * _back(c, s) + gamma * _ahead(a, s)
        a, c = alpha * _back(a, s), gamma * _ahead(c, s)
        alphas.append(alpha)
        gammas.append(gamma)
        s *= 2
    return Tridiagonal(alphas, gammas, 1.0 / b)


def solve(t: Tridiagonal, d: Tensor) -> Tensor:
    """Solve the factorised systems for ``d`` (broadcast against the multipliers)."""
    s = 1
    for alpha, gamma in zip(t.alpha, t.gamma, strict=True):
        reduced = d.clone()
        reduced[..., s:].addcmul_(alpha[..., s:], d[..., :-s])
        reduced[..., :-s].addcmul_(gamma[..., :-s], d[..., s:])
        d = reduced
        s *= 2
    return d * t.inv_diag
