"""Geometric multigrid in 2-D and 3-D: (bi/tri)linear transfers, Galerkin coarse operators.

On a Dirichlet grid of ``n = 2^L m - 1`` points per side (odd at every level above the
coarsest, which has ``m - 1``: 31, 47, 63, 95, 127, ...) (``h = 1 / (n + 1)``) the
coarse grid keeps every second node: coarse node ``I`` is fine node ``2 I + 1``, so
``n_c = (n - 1) / 2``. Prolongation ``P`` is (bi/tri)linear interpolation, the tensor
product of the 1-D ``[1/2, 1, 1/2]``; restriction is ``R = P^T`` and the coarse operator
the Galerkin product ``A_c = P^T A P`` (a 9- or 27-point stencil, whatever the fine
one), formed per sample with SciPy at set-up; the cycles run in torch, real or complex
(the shifted Laplacian of a Helmholtz problem:
:class:`~irsolve.solvers.ShiftedLaplacian` uses this cycle in 3-D). Smoothing: damped
Jacobi. The coarsest level is solved directly (batched dense LU) or by any solver.
This is the textbook method (Briggs, Henson and McCormick, *A Multigrid Tutorial*, 2nd
ed., SIAM 2000, Ch. 3 and 8; Trottenberg, Oosterlee and Schüller, *Multigrid*, 2001,
Ch. 2 and 7), here mainly for 3-D problems, where :class:`~irsolve.solvers.Multigrid`
(2-D black-box) does not go.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor

from irsolve._validate import check_int
from irsolve.interface import FixedPointSolver, apply_from_zero, require_solver
from irsolve.solvers._stencil import (
    apply_stencil,
    stencil_from_scipy,
    stencil_to_dense,
    stencil_to_scipy,
)
from irsolve.solvers.jacobi import Jacobi, JacobiData
from irsolve.solvers.multigrid import MAX_DIRECT, CoarseSolveContext
from irsolve.solvers.problems import (
    ComplexStencilProblem,
    StencilProblem,
    require_stencil_problem,
)

__all__ = ["GeometricMultigrid", "prolong_grid", "restrict_grid"]


@dataclasses.dataclass
class GeometricLevels(CoarseSolveContext):
    """A solve's hierarchy: the problem, the smoother data of each level but the
    coarsest (finest first), and the coarsest operator's LU factors or, with a coarse
    solver, that solver's context on the coarsest problem (the other ``None``)."""

    problem: StencilProblem
    levels: list[JacobiData]
    lu: Tensor | None
    pivots: Tensor | None
    coarse: Any = None


@functools.cache
def _interpolation_1d(n_coarse: int) -> sp.csr_matrix:
    """1-D linear interpolation ``(2 n_c + 1) x n_c``: ``P[2I + 1, I] = 1``,
    ``P[2I, I] = P[2I + 2, I] = 1/2``."""
    rows, cols, values = [], [], []
    for coarse in range(n_coarse):
        for offset, weight in ((0, 0.5), (1, 1.0), (2, 0.5)):
            rows.append(2 * coarse + offset)
            cols.append(coarse)
            values.append(weight)
    return sp.csr_matrix((values, (rows, cols)), shape=(2 * n_coarse + 1, n_coarse))


def _interpolation(n_coarse: int, dim: int) -> sp.csr_matrix:
    """``P`` on the ``dim``-D grid: the Kronecker product of the 1-D interpolations."""
    one = _interpolation_1d(n_coarse)
    matrix = one
    for _ in range(dim - 1):
        matrix = sp.kron(matrix, one)
    return matrix.tocsr()


class GeometricMultigrid(FixedPointSolver):
    """One multigrid V-cycle per step, on a 2-D or 3-D Dirichlet stencil problem, real or
    complex, with ``n = 2^L m - 1`` points per side (see the module docstring).

    Parameters
    ----------
    smoother : Jacobi
        The smoother and its weight (default ``Jacobi(omega=0.8)``).
    presmooth, postsmooth : int
        Sweeps before and after the coarse correction (default 2 and 2).
    coarsest : int
        Coarsen while a grid has more than this many points per side (default 3).
    coarse : ``"direct"`` or FixedPointSolver
        The solve on the coarsest grid: batched dense LU (default; at most
        ``MAX_DIRECT`` unknowns), or one step from zero of this solver, prepared once
        on the coarsest Galerkin operator as a problem of its own
        (:class:`~irsolve.solvers.StencilProblem`, or
        :class:`~irsolve.solvers.helmholtz.ComplexStencilProblem` for a complex one):
        ``Cycle(FlexibleGMRES(Jacobi(omega=1.0), restart=8), repeats=8)`` is eight
        Jacobi-preconditioned GMRES iterations. The shifted Laplacian's 3-D cycle uses
        this where Jacobi stops smoothing
        (:func:`~irsolve.solvers.helmholtz_preconditioner.default_inner_solver`).

    As a preconditioner: ``FlexibleCG(GeometricMultigrid())`` (the V-cycle with
    symmetric smoothing, ``presmooth == postsmooth``, is a symmetric operator).
    """

    def __init__(
        self,
        smoother: Jacobi | None = None,
        presmooth: int = 2,
        postsmooth: int = 2,
        coarsest: int = 3,
        coarse: str | FixedPointSolver = "direct",
    ) -> None:
        owner = "GeometricMultigrid"
        self.smoother = Jacobi() if smoother is None else smoother
        require_solver(owner, "smoother", self.smoother)
        if not isinstance(self.smoother, Jacobi):
            raise TypeError(
                f"{owner}: expected a Jacobi smoother, got {type(self.smoother).__name__}"
            )
        self.presmooth = check_int(owner, "presmooth", presmooth, minimum=0)
        self.postsmooth = check_int(owner, "postsmooth", postsmooth, minimum=0)
        self.coarsest = check_int(owner, "coarsest", coarsest, minimum=1)
        if coarse != "direct":
            require_solver(owner, "coarse", coarse)
        self.coarse = coarse

    def prepare(self, x: StencilProblem) -> GeometricLevels:
        problem = require_stencil_problem(x, "GeometricMultigrid", dims=(2, 3))
        n, dim = problem.n, problem.dim
        if problem.periodic or not _coarsens(n, self.coarsest):
            raise ValueError(
                "GeometricMultigrid: expected a Dirichlet grid whose side stays odd while it is "
                f"coarsened, n = 2^L m - 1 with m <= coarsest + 1 = {self.coarsest + 1} (15, 31, "
                f"47, 63, 95, 127, ...), got {n} "
                f"({'periodic' if problem.periodic else 'Dirichlet'})"
            )
        stencil, levels = problem.stencil, []
        matrices = stencil_to_scipy(stencil, False)
        while stencil.shape[-1] > self.coarsest:
            levels.append(self.smoother.setup(stencil, False))
            n_coarse = (stencil.shape[-1] - 1) // 2
            p = _interpolation(n_coarse, dim)
            matrices = [(p.T @ matrix @ p).tocsr() for matrix in matrices]
            stencil = stencil_from_scipy(matrices, n_coarse, dim, stencil.dtype, stencil.device)
        if self.coarse != "direct":
            coarse = self.coarse.prepare(_coarse_problem(stencil))
            return GeometricLevels(problem, levels, None, None, coarse)
        if stencil.shape[-1] ** dim > MAX_DIRECT:
            raise ValueError(
                f"GeometricMultigrid: the coarsest grid ({stencil.shape[-1]}^{dim} unknowns) is "
                f"too big for a dense LU (at most {MAX_DIRECT}): lower coarsest or pass a "
                "coarse solver"
            )
        lu, pivots = torch.linalg.lu_factor(stencil_to_dense(stencil, False))
        return GeometricLevels(problem, levels, lu, pivots)

    def residual(self, ctx: GeometricLevels, h: Tensor) -> Tensor:
        return ctx.problem.residual(h)

    def step(self, ctx: GeometricLevels, h: Tensor, k: int) -> Tensor:
        return self._cycle(ctx, 0, h, ctx.problem.f)

    def _cycle(self, ctx: GeometricLevels, depth: int, u: Tensor, f: Tensor) -> Tensor:
        """One V-cycle on level ``depth`` from ``u`` for ``A_depth u = f``."""
        if depth == len(ctx.levels):
            if ctx.lu is None:
                return apply_from_zero(self.coarse, ctx.coarse, f)
            solution = torch.linalg.lu_solve(ctx.lu, ctx.pivots, f.flatten(1).unsqueeze(-1))
            return solution.reshape(f.shape)
        data = ctx.levels[depth]
        u = self.smoother.smooth(data, u, f, self.presmooth) if self.presmooth else u
        coarse_f = restrict_grid(f - apply_stencil(data.stencil, u, False))
        coarse = self._cycle(ctx, depth + 1, torch.zeros_like(coarse_f), coarse_f)
        u = u + prolong_grid(coarse)
        return self.smoother.smooth(data, u, f, self.postsmooth) if self.postsmooth else u

    def restrict(self, ctx: GeometricLevels, index: Tensor) -> GeometricLevels:
        """The hierarchy of the samples ``index``; the coarse solver restricts its own context."""
        return ctx.restricted(index, self.coarse)

    def __repr__(self) -> str:
        coarse = "" if self.coarse == "direct" else f", coarse={self.coarse!r}"
        return (
            f"GeometricMultigrid(smoother={self.smoother!r}, presmooth={self.presmooth}, "
            f"postsmooth={self.postsmooth}, coarsest={self.coarsest}{coarse})"
        )


def _coarse_problem(stencil: Tensor) -> StencilProblem:
    """The coarsest Galerkin operator as a problem (zero right-hand side, set per solve)."""
    zeros = torch.zeros(stencil.shape[0], 1, *stencil.shape[2:], dtype=stencil.dtype)
    zeros = zeros.to(stencil.device)
    if stencil.is_complex():
        return ComplexStencilProblem(stencil, zeros)
    return StencilProblem(stencil, zeros, False)


def _coarsens(n: int, coarsest: int) -> bool:
    """Whether every grid above ``coarsest`` points per side, from ``n`` down, is odd (so its
    coarse grid, every second node, is ``(n - 1) / 2``)."""
    while n > coarsest:
        if n % 2 == 0:
            return False
        n = (n - 1) // 2
    return n >= 1


def _kernel(dim: int, like: Tensor) -> Tensor:
    """The (bi/tri)linear weights ``[1/2, 1, 1/2]^{(x) dim}`` as a conv kernel."""
    one = like.new_tensor([0.5, 1.0, 0.5])
    kernel = one
    for _ in range(dim - 1):
        kernel = kernel[..., None] * one
    return kernel[None, None]


def restrict_grid(r: Tensor) -> Tensor:
    """``R r = P^T r``: the weights of :func:`_kernel`, stride 2, no padding."""
    return _transfer(r, transpose=False)


def prolong_grid(e: Tensor) -> Tensor:
    """``P e``: the transposed convolution of :func:`restrict_grid`."""
    return _transfer(e, transpose=True)


def _transfer(x: Tensor, transpose: bool) -> Tensor:
    """The stride-2 (transposed) convolution with :func:`_kernel`, channel by channel."""
    dim = x.dim() - 2
    conv = {(2, False): F.conv2d, (3, False): F.conv3d}
    conv |= {(2, True): F.conv_transpose2d, (3, True): F.conv_transpose3d}
    out = conv[dim, transpose](x.reshape(-1, 1, *x.shape[2:]), _kernel(dim, x), stride=2)
    return out.reshape(*x.shape[:2], *out.shape[2:])
