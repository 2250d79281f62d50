"""Small exact fixed-point maps used by the core tests (affine maps with known norms)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from irsolve import FixedPointSolver, Problem


def random_contraction(batch: int, n: int, q: float, generator: torch.Generator) -> Tensor:
    """``(batch, n, n)`` matrices ``U diag(s) V^T`` with ``max s = q`` (so ``||M||_2 = q``)."""
    u, _ = torch.linalg.qr(torch.randn(batch, n, n, dtype=torch.float64, generator=generator))
    v, _ = torch.linalg.qr(torch.randn(batch, n, n, dtype=torch.float64, generator=generator))
    s = q * torch.rand(batch, n, dtype=torch.float64, generator=generator)
    s[:, 0] = q
    return u @ torch.diag_embed(s) @ v.transpose(1, 2)


class AffineMap(FixedPointSolver):
    """``G(h) = M h + c`` per sample; the context holds ``(M, c)`` so it can be restricted."""

    def __init__(self, matrix: Tensor, shift: Tensor) -> None:
        self.matrix, self.shift = matrix, shift

    def prepare(self, x: Any) -> tuple[Tensor, Tensor]:
        return self.matrix, self.shift

    def step(self, ctx: tuple[Tensor, Tensor], h: Tensor, k: int) -> Tensor:
        matrix, shift = ctx
        return torch.einsum("bij,bj->bi", matrix, h) + shift

    def fixed_point(self) -> Tensor:
        eye = torch.eye(self.matrix.shape[-1], dtype=self.matrix.dtype)
        return torch.linalg.solve(eye - self.matrix, self.shift)


class DiagonalProblem(Problem):
    """``A u = f`` with ``A = diag(d)`` per sample: the smallest problem with a residual."""

    def __init__(self, diagonal: Tensor, rhs: Tensor) -> None:
        self.diagonal, self.rhs = diagonal, rhs

    @property
    def batch_size(self) -> int:
        return self.rhs.shape[0]

    def zeros(self) -> Tensor:
        return torch.zeros_like(self.rhs)

    def residual(self, u: Tensor) -> Tensor:
        return self.rhs - self.diagonal * u

    def restrict(self, index: Tensor) -> DiagonalProblem:
        return DiagonalProblem(self.diagonal[index], self.rhs[index])


class Richardson(FixedPointSolver):
    """``h + omega (f - A h)`` on a :class:`DiagonalProblem`: contracts iff |1 - omega d| < 1."""

    def __init__(self, omega: float) -> None:
        self.omega = omega

    def step(self, ctx: DiagonalProblem, h: Tensor, k: int) -> Tensor:
        return h + self.omega * ctx.residual(h)
