"""Small fixed-point maps with known constants, for the analysis tests.

Every per-sample quantity lives in the input ``x`` (hence in the context), so
the maps can be tiled and restricted like real solvers.
"""

from __future__ import annotations

import torch
from torch import Tensor

from irsolve.interface import FixedPointSolver


def random_matrix(n: int, singular_values: Tensor, generator: torch.Generator) -> Tensor:
    """``U diag(s) V^T`` with Haar-random orthogonal ``U, V`` (QR of Gaussian matrices)."""
    dtype = singular_values.dtype
    u, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=dtype))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=dtype))
    return u @ torch.diag(singular_values) @ v.T


class AffineMap(FixedPointSolver):
    """``G(h) = M_b h + g_b`` per sample; ``x = cat([M, g[None]])`` has shape ``(B, n + 1, n)``.

    ``h`` has shape ``(B, 1, n)``.
    """

    @staticmethod
    def pack(m: Tensor, g: Tensor) -> Tensor:
        return torch.cat([m, g[:, None, :]], dim=1)

    def step(self, ctx: Tensor, h: Tensor, k: int) -> Tensor:
        n = ctx.shape[-1]
        m, g = ctx[:, :n], ctx[:, n]
        return (torch.einsum("bij,bj->bi", m, h[:, 0]) + g)[:, None]


class QuadraticMap(FixedPointSolver):
    """``G(y + e) = y + g + M e + gamma ||e|| e`` per sample.

    ``J_G(y) = M``, bias ``||G(y) - y|| = ||g||`` and the second-order ratio
    ``||G(y+e) - G(y) - M e|| / ||e||^2 = gamma`` for every ``e``, so
    ``q = ||M||_2`` and ``c = gamma`` exactly. ``x = cat([M, g, y])``,
    shape ``(B, n + 2, n)``; ``h`` has shape ``(B, 1, n)``.
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma

    @staticmethod
    def pack(m: Tensor, g: Tensor, y: Tensor) -> Tensor:
        return torch.cat([m, g[:, None, :], y[:, None, :]], dim=1)

    def step(self, ctx: Tensor, h: Tensor, k: int) -> Tensor:
        n = ctx.shape[-1]
        m, g, y = ctx[:, :n], ctx[:, n], ctx[:, n + 1]
        e = h[:, 0] - y
        size = torch.linalg.vector_norm(e, dim=1, keepdim=True)
        return (y + g + torch.einsum("bij,bj->bi", m, e) + self.gamma * size * e)[:, None]
