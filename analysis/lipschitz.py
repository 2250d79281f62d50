"""Local Lipschitz constant of a solver's step map: ``||J_G(h)||_2`` per sample.

The step ``G(h) = solver.step(ctx, h, k)`` is a contraction near ``h`` when
the spectral norm of its Jacobian ``J = dG/dh`` is below one. That norm is
``sigma_max(J) = sqrt(lambda_max(J^T J))``, found by power iteration on
``J^T J`` with Jacobian-vector products (forward mode) and vector-Jacobian
products (reverse mode) from :mod:`torch.func`; the dense Jacobian is never
formed (Golub & Van Loan, *Matrix Computations*, 4th ed., Sec. 7.3 and 8.6).
Because ``G`` acts on each sample independently, ``J`` is block diagonal
over the batch and one batched JVP/VJP serves every sample; the iterate is
normalised sample by sample.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor
from torch.func import jvp, vjp

from irsolve.interface import FixedPointSolver

from .stepmap import StepMap, ball_points, sample_l2

__all__ = ["Linearisation", "empirical_lipschitz", "lipschitz", "spectral_norm"]

logger = logging.getLogger(__name__)

Map = Callable[[Tensor], Tensor]


def lipschitz(
    solver: FixedPointSolver,
    x: Any,
    h: Tensor,
    *,
    k: int = 0,
    method: Literal["power", "lanczos", "empirical"] = "power",
    iters: int = 20,
    tol: float = 1e-3,
    radius: float | Tensor | None = None,
    n_pairs: int = 16,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Local Lipschitz constant of the step map ``G(h) = solver.step(ctx, h, k)`` per sample.

    Parameters
    ----------
    solver
        Any :class:`~irsolve.interface.FixedPointSolver`, learned or classical.
        For the derivative methods its ``step`` must be built from torch operations
        (``torch.func`` differentiates it); a learned step should be in
        ``eval()`` mode so that the map does not depend on the batch.
    x
        The solver's input, a tensor ``(B, C, *space)`` or a problem object.
    h
        Point ``(B, C, *space)`` at which the map is linearised.
    k
        Step index (for step-size schedules and composite solvers).
    method
        ``"power"``: ``||J_G(h)||_2`` by power iteration on ``J^T J``;
        ``"lanczos"``: the same products fed to the Lanczos process, much
        more accurate per product when the top singular values cluster (both
        :func:`spectral_norm`). ``"empirical"``: the largest difference
        quotient ``||G(h1) - G(h2)|| / ||h1 - h2||`` over random pairs in the
        ball of radius ``radius`` around ``h`` (:func:`empirical_lipschitz`),
        which needs no derivatives.
    iters, tol
        Power / Lanczos: at most ``iters`` JVP + VJP pairs; stops early once
        every sample's estimate changes by less than ``tol`` (relative).
    radius, n_pairs
        Empirical method: ball radius (default 1 % of ``||h||``, or of
        ``sqrt(numel)`` where ``h`` is zero) and number of random pairs.
    generator
        Optional ``torch.Generator`` for the random start vectors / pairs.

    Returns
    -------
    Tensor
        ``(B,)``, in the dtype the solver computes in. Every method returns
        lower bounds of the local constant: power and Lanczos converge to
        ``sigma_max`` from below, and difference quotients are at most the
        Lipschitz constant on the ball.
    """
    step = StepMap(solver, x, k=k)
    h = h.to(step.dtype)
    if method in ("power", "lanczos"):
        return spectral_norm(step, h, iters=iters, tol=tol, generator=generator, method=method)
    if method == "empirical":
        return empirical_lipschitz(step, h, radius=radius, n_pairs=n_pairs, generator=generator)
    raise ValueError(f"expected method 'power', 'lanczos' or 'empirical', got {method!r}")


class Linearisation:
    """``v -> J v`` and ``u -> J^T u`` of ``fn`` at ``h``.

    ``J v`` uses forward mode; where an operation lacks a forward-mode rule
    it switches to differentiating the (linear) VJP once more, since ``J v``
    is the VJP of ``u -> J^T u`` with cotangent ``v``. The reverse-mode graph
    is recorded on first use only.
    """

    def __init__(self, fn: Map, h: Tensor) -> None:
        self._fn, self._h = fn, h
        self._reverse: tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]] | None = None
        self._double: Map | None = None

    def transpose(self, u: Tensor) -> Tensor:
        if self._reverse is None:
            self._reverse = vjp(self._fn, self._h)
        return self._reverse[1](u)[0]

    def forward(self, v: Tensor) -> Tensor:
        if self._double is None:
            try:
                return jvp(self._fn, (self._h,), (v,))[1]
            except NotImplementedError as err:
                logger.info("forward-mode AD unavailable (%s); using reverse-over-reverse", err)
                self.transpose(torch.zeros_like(self._h))
                out = self._reverse[0]
                self._double = vjp(self.transpose, torch.zeros_like(out))[1]
        return self._double(v)[0]


def spectral_norm(
    fn: Map,
    h: Tensor,
    *,
    iters: int = 20,
    tol: float = 1e-3,
    generator: torch.Generator | None = None,
    method: Literal["power", "lanczos"] = "power",
) -> Tensor:
    """``||J_fn(h)||_2`` per sample from products with ``J^T J`` (one JVP and one VJP each).

    ``method="power"``: with ``v_0`` random and ``v_{i+1} = J^T J v_i /
    ||J^T J v_i||`` (per sample), ``sigma_i = ||J v_i||`` rises to
    ``sigma_max(J)``; the Rayleigh quotient of ``J^T J`` converges like
    ``(sigma_2 / sigma_1)^(4 i)``, slowly when the top singular values cluster.

    ``method="lanczos"``: the Lanczos process on ``J^T J`` with full
    reorthogonalisation builds, from the same products, an orthonormal basis
    of the Krylov space ``span{v_0, .., (J^T J)^(i-1) v_0}`` and a tridiagonal
    ``T_i``; ``sqrt(lambda_max(T_i))`` is the best estimate in that space, at
    least as good as the power iterate's, and converges far faster for
    clustered spectra (Kaniel-Paige-Saad bounds; Golub & Van Loan, Sec. 10.1).
    It keeps ``i`` vectors per sample.

    Parameters
    ----------
    fn
        A map acting independently on each sample of ``h`` (dim 0).
    h
        Linearisation point ``(B, ...)``.
    iters, tol
        At most ``iters`` JVP + VJP pairs; stop once ``|sigma_i - sigma_{i-1}|
        <= tol * sigma_i`` for every sample (``tol = 0`` runs all ``iters``).
    generator
        Optional ``torch.Generator`` for the start vector.
    method
        ``"power"`` or ``"lanczos"``.

    Returns
    -------
    Tensor
        ``(B,)`` estimates of ``sigma_max``, each a lower bound (a Rayleigh
        quotient of ``J^T J``).
    """
    if iters < 1:
        raise ValueError(f"expected iters >= 1, got {iters}")
    if method not in ("power", "lanczos"):
        raise ValueError(f"expected method 'power' or 'lanczos', got {method!r}")
    linear = Linearisation(fn, h)
    v = torch.randn(h.shape, generator=generator, dtype=h.dtype, device=h.device)
    v = _normalise(v)
    if method == "lanczos":
        return _lanczos(linear, v, iters, tol)
    sigma = torch.zeros(h.shape[0], dtype=h.dtype, device=h.device)
    for i in range(iters):
        jv = linear.forward(v)
        new_sigma = sample_l2(jv)
        v = _normalise(linear.transpose(jv))
        if _converged(sigma, new_sigma, tol, i):
            sigma = new_sigma
            break
        sigma = new_sigma
    return sigma.detach()


def _normalise(v: Tensor) -> Tensor:
    """``v_b / ||v_b||`` per sample (a zero sample stays zero)."""
    norm = sample_l2(v).clamp_min(torch.finfo(v.dtype).tiny)
    return v / norm.view((-1,) + (1,) * (v.dim() - 1))


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product ``<a_b, b_b>``, shape ``(B,)``."""
    return (a.flatten(1) * b.flatten(1)).sum(dim=1)


def _converged(old: Tensor, new: Tensor, tol: float, i: int) -> bool:
    done = i > 0 and bool(((new - old).abs() <= tol * new).all())
    if done:
        logger.debug("spectral norm converged after %d JVP+VJP pairs", i + 1)
    return done


def _lanczos(linear: Linearisation, v: Tensor, iters: int, tol: float) -> Tensor:
    """Batched Lanczos on ``J^T J`` from the unit vectors ``v``; returns ``sqrt(lambda_max(T))``."""
    batch = v.shape[0]
    shape = (-1,) + (1,) * (v.dim() - 1)
    basis: list[Tensor] = []
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    sigma = torch.zeros(batch, dtype=v.dtype, device=v.device)
    for i in range(iters):
        w = linear.transpose(linear.forward(v)).detach()
        basis.append(v)
        alphas.append(_dot(w, v))
        for _ in range(2):  # full reorthogonalisation, "twice is enough"
            for u in basis:
                w = w - _dot(w, u).view(shape) * u
        beta = sample_l2(w)
        tridiagonal = torch.diag_embed(torch.stack(alphas, dim=1))
        if betas:
            off = torch.diag_embed(torch.stack(betas, dim=1), offset=1)
            tridiagonal = tridiagonal + off + off.transpose(1, 2)
        largest = torch.linalg.eigvalsh(tridiagonal)[:, -1].clamp_min(0.0)
        new_sigma = largest.sqrt()
        betas.append(beta)
        v = _normalise(w)
        if _converged(sigma, new_sigma, tol, i):
            sigma = new_sigma
            break
        sigma = new_sigma
    return sigma


def empirical_lipschitz(
    fn: StepMap,
    h: Tensor,
    *,
    radius: float | Tensor | None = None,
    n_pairs: int = 16,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Largest ``||G(h1) - G(h2)|| / ||h1 - h2||`` over random pairs in ``B_radius(h)``.

    Points are drawn uniformly in the ball (direction uniform on the sphere,
    radius ``radius * U^(1/n)`` with ``n`` the number of unknowns per sample);
    all ``2 * n_pairs`` points are evaluated in one batched call.

    Parameters
    ----------
    fn
        The step map; its context is tiled over the pairs.
    h
        Centre of the ball, ``(B, ...)``.
    radius
        Scalar or ``(B,)``; default 1 % of ``||h||`` per sample (1 % of
        ``sqrt(n)`` where ``h`` is zero).
    n_pairs
        Number of random pairs per sample.
    generator
        Optional ``torch.Generator`` for the pairs.

    Returns
    -------
    Tensor
        ``(B,)`` largest difference quotient found, a lower bound of the
        Lipschitz constant on the ball.
    """
    if n_pairs < 1:
        raise ValueError(f"expected n_pairs >= 1, got {n_pairs}")
    batch, n = h.shape[0], h[0].numel()
    if radius is None:
        norm = sample_l2(h)
        radius = 0.01 * torch.where(norm > 0, norm, torch.full_like(norm, math.sqrt(n)))
    radius = torch.as_tensor(radius, dtype=h.dtype, device=h.device).expand(batch)
    points = 2 * n_pairs
    centre = h.repeat((points,) + (1,) * (h.dim() - 1))
    offsets = ball_points(centre, radius.repeat(points), generator=generator)
    values = fn.tile(points, h)(centre + offsets)
    values = values.view(2, n_pairs, batch, -1)
    offsets = offsets.view(2, n_pairs, batch, -1)
    ratio = torch.linalg.vector_norm(values[0] - values[1], dim=-1) / torch.linalg.vector_norm(
        offsets[0] - offsets[1], dim=-1
    ).clamp_min(torch.finfo(h.dtype).tiny)
    return ratio.amax(dim=0).detach()
