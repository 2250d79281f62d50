"""Per-sample norms the analysis measures errors in: Euclidean or energy (``A``-) norm.

A norm here comes from an inner product ``<a, b>_W = a^T W b`` with ``W``
symmetric positive definite, one ``W`` per sample: ``W = I`` gives the
Euclidean norm, ``W = A`` (the problem's operator) the energy norm
``||e||_A = sqrt(e^T A e)``, in which classical smoothers such as
Gauss-Seidel are contractions for SPD ``A`` even where their 2-norm exceeds
one. For a splitting ``A = M - N`` with error propagation ``E = I - M^{-1} A``,
``A - E^T A E = (M^{-1} A)^T (M + M^T - A) (M^{-1} A)``; SOR in any ordering
has ``M = D / omega + L`` and ``M + M^T - A = (2 / omega - 1) D``, positive
definite for ``0 < omega < 2``, so ``||E||_A < 1`` (Hackbusch, *Iterative
Solution of Large Sparse Systems of Equations*, Springer, on SOR for SPD
matrices; Saad, *Iterative Methods for Sparse Linear Systems*, 2nd ed., SIAM
2003, Ch. 4).

The operator norm of a linear map ``J`` in the ``W``-norm is
``||W^{1/2} J W^{-1/2}||_2``, the square root of the largest eigenvalue of
``W^{-1} J^T W J``, which is self-adjoint in ``<., .>_W``; the Lanczos and
power iterations in :mod:`irsolve.analysis.lipschitz_estimates` work in that inner
product, so they need products with ``W`` and solves with ``W``, never
``W^{1/2}``. Each object also knows how to tile itself like
:meth:`~irsolve.analysis.stepmap.StepMap.tile` (probe ``p`` of sample ``b`` at
row ``p * B + b``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from irsolve.reductions import dot, norm
from irsolve.solvers.problems import StencilProblem

__all__ = ["EnergyNorm", "EuclideanNorm", "NormName", "make_norm"]

NormName = Literal["l2", "energy"]


class EuclideanNorm:
    """``||t_b||_2`` over all non-batch entries of each sample (``W = I``)."""

    name = "l2"

    def __call__(self, t: Tensor) -> Tensor:
        return norm(t)

    def inner(self, a: Tensor, b: Tensor) -> Tensor:
        """``<a_b, b_b>`` per sample."""
        return dot(a, b)

    def gram(self, t: Tensor) -> Tensor:
        """``W t`` (here ``t``)."""
        return t

    def solve(self, t: Tensor) -> Tensor:
        """``W^{-1} t`` (here ``t``)."""
        return t

    def tile(self, copies: int) -> EuclideanNorm:
        return self


class EnergyNorm:
    """The energy norm ``||e||_A = sqrt(e^T A e)`` of a symmetric positive definite stencil problem.

    Products ``A e`` use the problem's stencil (any device); solves ``A^{-1} r``
    use one sparse LU factorisation per sample, computed once on the host
    with a symmetric fill-reducing ordering and diagonal pivots, so that it is
    ``P A P^T = L D L^T``: all pivots positive is then exactly the test of
    positive definiteness (Sylvester's criterion on the leading minors).

    Parameters
    ----------
    problem
        A :class:`~irsolve.solvers.StencilProblem` whose operator is symmetric
        positive definite in every sample (Dirichlet :class:`Poisson2D`,
        :class:`Darcy2D`).

    Raises
    ------
    ValueError
        If some sample's ``A`` is not symmetric (to 64 ulps of its largest
        entry) or not positive definite, naming the samples.
    """

    name = "energy"

    def __init__(self, problem: StencilProblem, *, _factors: list[Any] | None = None) -> None:
        self.problem = problem
        self._factors = _factors if _factors is not None else self._factorise(problem)

    @staticmethod
    def _factorise(problem: StencilProblem) -> list[Any]:
        eps = torch.finfo(problem.f.dtype).eps
        factors, asymmetric, indefinite = [], [], []
        for b, matrix in enumerate(problem.to_scipy()):
            largest = abs(matrix).max()
            if abs(matrix - matrix.T).max() > 64 * eps * largest:
                asymmetric.append(b)
                factors.append(None)
                continue
            try:
                lu = spla.splu(
                    matrix.tocsc(),
                    permc_spec="MMD_AT_PLUS_A",
                    diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True},
                )
                definite = np.array_equal(lu.perm_r, lu.perm_c) and bool(
                    (lu.U.diagonal() > 0).all()
                )
            except RuntimeError:  # an exactly zero pivot: singular
                definite = False
            if not definite:
                indefinite.append(b)
            factors.append(lu if definite else None)
        if asymmetric or indefinite:
            raise ValueError(
                "the energy norm needs a symmetric positive definite operator, got "
                + "; ".join(
                    f"{what} in samples {bad}"
                    for what, bad in (
                        ("a non-symmetric A", asymmetric),
                        ("A not positive definite", indefinite),
                    )
                    if bad
                )
            )
        return factors

    def __call__(self, t: Tensor) -> Tensor:
        return self.inner(t, t).clamp_min(0.0).sqrt()

    def inner(self, a: Tensor, b: Tensor) -> Tensor:
        """``a_b^T A_b b_b`` per sample."""
        return dot(a, self.gram(b))

    def gram(self, t: Tensor) -> Tensor:
        """``A t`` (``t`` of shape ``(B, C, n, n)``)."""
        return self.problem.apply(t)

    def solve(self, t: Tensor) -> Tensor:
        """``A^{-1} t`` per sample, by the stored factorisations (on the host)."""
        host = t.detach().to("cpu", torch.float64).reshape(t.shape[0], -1, self.problem.n**2)
        out = np.stack(
            [
                lu.solve(np.ascontiguousarray(host[b].numpy().T)).T
                for b, lu in enumerate(self._factors)
            ]
        )
        return torch.from_numpy(out).reshape(t.shape).to(dtype=t.dtype, device=t.device)

    def tile(self, copies: int) -> EnergyNorm:
        if copies == 1:
            return self
        batch = self.problem.batch_size
        index = torch.arange(batch, device=self.problem.f.device).repeat(copies)
        return EnergyNorm(self.problem.restrict(index), _factors=self._factors * copies)


def make_norm(owner: str, norm: Any, x: Any) -> EuclideanNorm | EnergyNorm:
    """The norm named ``norm`` (``"l2"`` or ``"energy"``) for the solver input ``x``."""
    if norm == "l2":
        return EuclideanNorm()
    if norm == "energy":
        if not isinstance(x, StencilProblem):
            raise TypeError(
                f"{owner}: norm='energy' needs x to be a StencilProblem with an SPD operator "
                f"(Poisson2D, Darcy2D), got {type(x).__name__}"
            )
        try:
            return EnergyNorm(x)
        except ValueError as err:
            raise ValueError(f"{owner}: {err}") from None
    raise ValueError(f"{owner}: expected norm to be one of 'l2', 'energy', got {norm!r}")
