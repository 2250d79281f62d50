"""A sparse direct solve as a fixed-point solver: SuperLU factors of each sample's ``A``.

One step is ``h <- h + A^{-1} (f - A h)``, so from any ``h`` it returns the
solution (to rounding); as a multigrid coarse solve or a preconditioner it is
the exact inverse. The factors come from :func:`scipy.sparse.linalg.splu` on the
host, one per sample, with a symmetric ordering (``MMD_AT_PLUS_A``) and
threshold pivoting (``diag_pivot_thresh``): on stencil operators this fills far
less than SciPy's default column ordering (X. S. Li, "An overview of SuperLU",
ACM TOMS 31 (2005) 302-325). Fill grows as ``N^{4/3}`` in 3-D, so this
is for coarse grids and references, not fine 3-D grids (see the README's
``splu(A)`` rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spl
import torch
from torch import Tensor

from irsolve._validate import check_real
from irsolve.interface import FixedPointSolver
from irsolve.solvers.problems import StencilProblem, require_stencil_problem

__all__ = ["SparseLU", "SparseLUContext"]


@dataclass
class SparseLUContext:
    """The problem and one SuperLU factorisation per sample (shared by right-hand sides)."""

    problem: StencilProblem
    factors: list[spl.SuperLU]

    def with_rhs(self, f: Tensor) -> SparseLUContext:
        return SparseLUContext(self.problem.with_rhs(f), self.factors)

    def restrict(self, index: Tensor) -> SparseLUContext:
        factors = [self.factors[int(i)] for i in index]
        return SparseLUContext(self.problem.restrict(index), factors)


class SparseLU(FixedPointSolver):
    """``h <- h + A^{-1} (f - A h)`` with SuperLU factors of each sample's ``A``.

    Parameters
    ----------
    pivot_threshold
        SuperLU's ``diag_pivot_thresh`` in [0, 1]: 0 keeps the diagonal pivots of
        the symmetric ordering (fine for the damped operators it is meant for);
        1 is partial pivoting (default 0.1).
    """

    def __init__(self, pivot_threshold: float = 0.1) -> None:
        self.pivot_threshold = check_real(
            "SparseLU", "pivot_threshold", pivot_threshold, minimum=0.0, maximum=1.0
        )

    def prepare(self, x: StencilProblem) -> SparseLUContext:
        problem = require_stencil_problem(x, "SparseLU", dims=(2, 3))
        options = {"permc_spec": "MMD_AT_PLUS_A", "diag_pivot_thresh": self.pivot_threshold}
        factors = [spl.splu(matrix.tocsc(), **options) for matrix in problem.to_scipy()]
        return SparseLUContext(problem, factors)

    def residual(self, ctx: SparseLUContext, h: Tensor) -> Tensor:
        return ctx.problem.residual(h)

    def step(self, ctx: SparseLUContext, h: Tensor, k: int) -> Tensor:
        if h.shape[0] == 0:
            return h
        r = ctx.problem.residual(h).detach().cpu().numpy().reshape(h.shape[0], -1)
        e = np.stack([lu.solve(sample) for lu, sample in zip(ctx.factors, r, strict=True)])
        return h + torch.from_numpy(e.reshape(h.shape)).to(h.device, h.dtype)

    def __repr__(self) -> str:
        return f"SparseLU(pivot_threshold={self.pivot_threshold:g})"
