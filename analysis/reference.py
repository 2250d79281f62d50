"""The reference solution of a stencil problem: a sparse direct solve per sample.

Every comparison against an exact discrete solution (``irsolve solve
--check``, the demo, the benchmarks) uses :func:`reference_solve`, which
factorises each sample's ``A`` (:meth:`~irsolve.solvers.StencilProblem.to_scipy`)
with SciPy's ``spsolve`` (SuperLU).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import spsolve
from torch import Tensor

from irsolve.solvers.problems import StencilProblem, require_stencil_problem

__all__ = ["reference_solve"]


def reference_solve(problem: StencilProblem) -> Tensor:
    """``u = A^{-1} f`` per sample by ``scipy.sparse.linalg.spsolve``.

    Parameters
    ----------
    problem
        Any :class:`~irsolve.solvers.StencilProblem` (Poisson, Darcy, a
        stencil of one's own) with a non-singular operator.

    Returns
    -------
    Tensor
        ``(B, C, *space)``, shaped like ``problem.zeros()`` and in its dtype
        and device (computed on the host in float64, or complex128).
    """
    problem = require_stencil_problem(problem, "reference_solve", dims=(2, 3))
    like = problem.zeros()
    rhs = problem.f.detach().cpu().reshape(problem.batch_size, -1).numpy()
    solutions = [spsolve(matrix.tocsc(), rhs[b]) for b, matrix in enumerate(problem.to_scipy())]
    exact = torch.from_numpy(np.stack(solutions)) if solutions else like.new_zeros(0).cpu()
    return exact.reshape(like.shape).to(dtype=like.dtype, device=like.device)
