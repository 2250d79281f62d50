"""Local Lipschitz constant of a solver's step map: ``||J_G(h)||`` per sample.

The module of :func:`irsolve.analysis.lipschitz` (the function keeps the
short name; the module is ``lipschitz_estimates`` so the two never shadow
each other), of :func:`spectral_norm` and :func:`empirical_lipschitz`.

The step ``G(h) = solver.step(ctx, h, k)`` is a contraction near ``h`` when
the operator norm of its Jacobian ``J = dG/dh`` is below one. In the 2-norm
that is ``sigma_max(J) = sqrt(lambda_max(J^T J))``, found by the Lanczos
process (or power iteration) on ``J^T J`` with Jacobian-vector products
(forward mode) and vector-Jacobian products (reverse mode) from
:mod:`torch.func`; the dense Jacobian is never formed (Golub & Van Loan,
*Matrix Computations*, 4th ed., Sec. 7.3, 8.6 and 10.1). In the energy norm
of an SPD problem the same iterations run on ``A^{-1} J^T A J`` in the
``A``-inner product (:mod:`irsolve.analysis.norms`).
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

from irsolve._validate import check_choice, check_int, check_real
from irsolve.interface import FixedPointSolver, Problem
from irsolve.reductions import broadcast

from .norms import EnergyNorm, EuclideanNorm, NormName, make_norm
from .stepmap import StepMap, ball_points

__all__ = ["Linearisation", "empirical_lipschitz", "lipschitz", "spectral_norm"]

logger = logging.getLogger(__name__)

Map = Callable[[Tensor], Tensor]


def lipschitz(
    solver: FixedPointSolver,
    x: Any,
    h: Tensor,
    *,
    k: int = 0,
    method: Literal["power", "lanczos", "empirical"] = "lanczos",
    norm: NormName = "l2",
    iters: int = 20,
    spectral_tol: float = 1e-3,
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
        ``"lanczos"`` (default): ``||J_G(h)||`` by the Lanczos process on
        ``J^T J``; ``"power"``: power iteration with the same products,
        much less accurate per product when the top singular values cluster
        (a Jacobi step of a 15 x 15 Darcy problem, 20 products: power up to
        1.6 % low, Lanczos 2.4e-4; ``benchmarks/bench_lipschitz.py``; both
        :func:`spectral_norm`).
        ``"empirical"``: the largest difference quotient
        ``||G(h1) - G(h2)|| / ||h1 - h2||`` over random pairs in the ball of
        radius ``radius`` around ``h`` (:func:`empirical_lipschitz`), which
        needs no derivatives.
    norm
        ``"l2"``: the Euclidean norm over all non-batch entries; ``"energy"``:
        ``||e||_A = sqrt(e^T A e)`` of ``x``, a stencil problem with a
        symmetric positive definite operator (:class:`~irsolve.analysis.norms.EnergyNorm`).
    iters, spectral_tol
        Power / Lanczos: at most ``iters`` JVP + VJP pairs; stops early once
        every sample's estimate changes by less than ``spectral_tol`` (relative).
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

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong type or out of range, named in the message.
    """
    check_solver_call("lipschitz", solver, x, h, k)
    check_choice("lipschitz", "method", method, ("power", "lanczos", "empirical"))
    check_choice("lipschitz", "norm", norm, ("l2", "energy"))
    iters = check_int("lipschitz", "iters", iters, minimum=1)
    spectral_tol = check_real("lipschitz", "spectral_tol", spectral_tol, minimum=0.0)
    n_pairs = check_int("lipschitz", "n_pairs", n_pairs, minimum=1)
    if radius is not None and not isinstance(radius, Tensor):
        radius = check_real("lipschitz", "radius", radius, minimum=0.0, open_min=True)
    measure = make_norm("lipschitz", norm, x)
    step = StepMap(solver, x, k=k)
    h = h.to(step.dtype)
    if method == "empirical":
        return empirical_lipschitz(
            step, h, radius=radius, n_pairs=n_pairs, generator=generator, norm=measure
        )
    return spectral_norm(
        step, h, iters=iters, tol=spectral_tol, generator=generator, method=method, norm=measure
    )


def check_solver_call(owner: str, solver: Any, x: Any, h: Any, k: Any, name: str = "h") -> None:
    """The checks shared by the analysis entry points: a solver, a batched tensor ``h`` (of the
    problem's solution shape when ``x`` is a :class:`~irsolve.interface.Problem`), a step index."""
    if not isinstance(solver, FixedPointSolver):
        raise TypeError(
            f"{owner}: expected solver to be a FixedPointSolver, got {type(solver).__name__}"
        )
    if not isinstance(h, Tensor) or h.dim() < 2:
        got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ValueError(f"{owner}: expected {name} as a batched tensor (B, C, *space), got {got}")
    if isinstance(x, Problem) and h.shape != x.zeros().shape:
        raise ValueError(
            f"{owner}: expected {name} of the problem's solution shape "
            f"{tuple(x.zeros().shape)}, got {tuple(h.shape)}"
        )
    check_int(owner, "k", k, minimum=0)


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
    method: Literal["power", "lanczos"] = "lanczos",
    norm: EuclideanNorm | EnergyNorm | None = None,
) -> Tensor:
    """``||J_fn(h)||`` per sample from products with ``J^T J`` (one JVP and one VJP each).

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

    In a ``W``-norm (``norm``, e.g. the energy norm ``W = A``) both run on
    ``W^{-1} J^T W J``, self-adjoint in ``<a, b>_W = a^T W b``, with
    ``W``-orthonormal vectors; its largest eigenvalue is
    ``||W^{1/2} J W^{-1/2}||_2^2``, the squared operator norm in the
    ``W``-norm. Each product then costs one solve with ``W`` as well.

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
        ``"lanczos"`` or ``"power"``.
    norm
        The norm (:mod:`irsolve.analysis.norms`), tiled like ``h``'s batch;
        default Euclidean.

    Returns
    -------
    Tensor
        ``(B,)`` estimates of ``sigma_max``, each a lower bound (a Rayleigh
        quotient of ``J^T J``).
    """
    if not callable(fn):
        raise TypeError(f"spectral_norm: expected fn to be callable, got {type(fn).__name__}")
    if not isinstance(h, Tensor) or h.dim() < 1:
        got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ValueError(f"spectral_norm: expected h as a batched tensor (B, ...), got {got}")
    iters = check_int("spectral_norm", "iters", iters, minimum=1)
    tol = check_real("spectral_norm", "tol", tol, minimum=0.0)
    check_choice("spectral_norm", "method", method, ("power", "lanczos"))
    norm = EuclideanNorm() if norm is None else norm
    linear = Linearisation(fn, h)
    v = torch.randn(h.shape, generator=generator, dtype=h.dtype, device=h.device)
    v = _normalise(v, norm)
    if method == "lanczos":
        return _lanczos(linear, v, iters, tol, norm)
    sigma = torch.zeros(h.shape[0], dtype=h.dtype, device=h.device)
    for i in range(iters):
        jv = linear.forward(v)
        new_sigma = norm(jv)
        v = _normalise(norm.solve(linear.transpose(norm.gram(jv))), norm)
        if _converged(sigma, new_sigma, tol, i):
            sigma = new_sigma
            break
        sigma = new_sigma
    return sigma.detach()


def _normalise(v: Tensor, norm: EuclideanNorm | EnergyNorm) -> Tensor:
    """``v_b / ||v_b||`` per sample (a zero sample stays zero)."""
    size = norm(v).clamp_min(torch.finfo(v.dtype).tiny)
    return v / broadcast(size, v)


def _converged(old: Tensor, new: Tensor, tol: float, i: int) -> bool:
    done = i > 0 and bool(((new - old).abs() <= tol * new).all())
    if done:
        logger.debug("spectral norm converged after %d JVP+VJP pairs", i + 1)
    return done


def _lanczos(
    linear: Linearisation, v: Tensor, iters: int, tol: float, norm: EuclideanNorm | EnergyNorm
) -> Tensor:
    """Batched Lanczos on ``W^{-1} J^T W J`` in the ``W``-inner product of ``norm`` from the
    ``W``-unit vectors ``v``; returns ``sqrt(lambda_max(T))``."""
    batch = v.shape[0]
    shape = (-1,) + (1,) * (v.dim() - 1)
    basis: list[Tensor] = []
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    sigma = torch.zeros(batch, dtype=v.dtype, device=v.device)
    for i in range(iters):
        w = norm.solve(linear.transpose(norm.gram(linear.forward(v)))).detach()
        basis.append(v)
        alphas.append(norm.inner(w, v))
        for _ in range(2):  # full reorthogonalisation, "twice is enough"
            for u in basis:
                w = w - norm.inner(w, u).view(shape) * u
        beta = norm(w)
        tridiagonal = torch.diag_embed(torch.stack(alphas, dim=1))
        if betas:
            off = torch.diag_embed(torch.stack(betas, dim=1), offset=1)
            tridiagonal = tridiagonal + off + off.transpose(1, 2)
        largest = torch.linalg.eigvalsh(tridiagonal)[:, -1].clamp_min(0.0)
        new_sigma = largest.sqrt()
        betas.append(beta)
        v = _normalise(w, norm)
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
    norm: EuclideanNorm | EnergyNorm | None = None,
) -> Tensor:
    """Largest ``||G(h1) - G(h2)|| / ||h1 - h2||`` over random pairs in ``B_radius(h)``.

    Points are drawn in the ball of ``norm`` (default Euclidean; see
    :func:`~irsolve.analysis.stepmap.ball_points`); all ``2 * n_pairs``
    points are evaluated in one batched call.

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
    norm
        The norm of the quotient and the ball (:mod:`irsolve.analysis.norms`).

    Returns
    -------
    Tensor
        ``(B,)`` largest difference quotient found, a lower bound of the
        Lipschitz constant on the ball.
    """
    n_pairs = check_int("empirical_lipschitz", "n_pairs", n_pairs, minimum=1)
    norm = EuclideanNorm() if norm is None else norm
    batch, n = h.shape[0], h[0].numel()
    if radius is None:
        size = norm(h)
        radius = 0.01 * torch.where(size > 0, size, torch.full_like(size, math.sqrt(n)))
    radius = torch.as_tensor(radius, dtype=h.dtype, device=h.device).expand(batch)
    points = 2 * n_pairs
    centre = h.repeat((points,) + (1,) * (h.dim() - 1))
    offsets = ball_points(
        centre, radius.repeat(points), generator=generator, norm=norm.tile(points)
    )
    values = fn.tile(points, h)(centre + offsets)
    half = n_pairs * batch  # rows p * B + b: the first half pairs with the second
    pair_norm = norm.tile(n_pairs)
    ratio = pair_norm(values[:half] - values[half:]) / pair_norm(
        offsets[:half] - offsets[half:]
    ).clamp_min(torch.finfo(h.dtype).tiny)
    return ratio.view(n_pairs, batch).amax(dim=0).detach()
