"""Flexible Krylov methods whose preconditioner is any fixed-point solver.

:class:`FlexibleCG` (for symmetric positive definite operators) and
:class:`FlexibleGMRES` (for any non-singular operator) are
:class:`~irsolve.FixedPointSolver` s: one step is one Krylov iteration, with
one application of the preconditioner and one of the operator, so
:func:`irsolve.solve` drives them, judges every sample on its physical
residual ``f - A h`` and drops converged samples like for any other solver.

The preconditioner ``M`` is a fixed-point solver applied once to ``A z = r``
from ``z = 0`` (:func:`~irsolve.interface.apply_from_zero`): Jacobi sweeps, a
multigrid cycle, a learned step that reads the residual, or a
:class:`~irsolve.Cycle` of them (``Cycle(..., repeats=m)`` for ``m`` steps).
Its context is prepared once per solve; each iteration swaps in the new
right-hand side through :meth:`~irsolve.FixedPointSolver.with_rhs`.
``M`` may change from one iteration to the next (a learned step, a nonlinear
smoother): that is what the *flexible* variants allow.

The problem must apply its operator (:meth:`~irsolve.Problem.apply`) and,
for most preconditioners, take a new right-hand side
(:meth:`~irsolve.Problem.with_rhs`); :class:`~irsolve.solvers.Poisson2D`,
:class:`~irsolve.solvers.Darcy2D` and any
:class:`~irsolve.solvers.StencilProblem` do.

Every sample has its own inner products, step lengths and least-squares
problem. A sample whose iteration breaks down (``<p, A p> <= 0``: the
operator or the preconditioner is not positive; a degenerate Krylov basis;
NaN from the preconditioner) gets a NaN iterate, which the engine ends as
``UNSTABLE`` while it keeps that sample's lowest-residual iterate; the other
samples go on.

References
----------
Y. Notay, "Flexible conjugate gradients", SIAM J. Sci. Comput. 22 (2000)
1444–1460.
Y. Saad, "A flexible inner-outer preconditioned GMRES algorithm", SIAM J.
Sci. Comput. 14 (1993) 461–469.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from irsolve._validate import check_int, check_memory
from irsolve.interface import FixedPointSolver, Problem, apply_from_zero, require_solver, restrict
from irsolve.reductions import broadcast, dot, norm

__all__ = ["FlexibleCG", "FlexibleCGContext", "FlexibleGMRES", "FlexibleGMRESContext"]

logger = logging.getLogger(__name__)


def _project(vectors: Tensor, x: Tensor) -> Tensor:
    """``(B, k)`` inner products ``<v_i, x> = sum(conj(v_i) x)`` of each of ``vectors``
    ``(B, k, N)`` with ``x`` ``(B, N)``, as the batched matrix product ``conj(V conj(x))``.

    Conjugating ``x`` (one vector) rather than ``V`` keeps the product free of a
    ``k x N`` temporary: at 47^3 with 100 complex vectors it takes 20 ms where the
    elementwise product and sum took 400 ms (one thread).
    """
    return torch.bmm(vectors, x.conj().unsqueeze(-1)).squeeze(-1).conj()


def _combine(vectors: Tensor, weights: Tensor) -> Tensor:
    """``sum_i weights[:, i] vectors[:, i]``, ``(B, N)``, for ``vectors`` ``(B, k, N)``."""
    return torch.bmm(weights.unsqueeze(1).to(vectors.dtype), vectors).squeeze(1)


def _put(buffer: Tensor, dim: int, index: int, value: Tensor) -> Tensor:
    """``buffer`` with ``value`` at ``index`` along ``dim``: written in place, or out of
    place while autograd records (``solve(grad=True)``), so the history stays differentiable."""
    slot = torch.tensor([index], device=buffer.device)
    if torch.is_grad_enabled() and (buffer.requires_grad or value.requires_grad):
        return buffer.index_copy(dim, slot, value.unsqueeze(dim))
    return buffer.index_copy_(dim, slot, value.unsqueeze(dim))


def _breakdown(name: str, broken: Tensor, reason: str) -> None:
    """Log the samples (positions in the current batch) whose iteration broke down."""
    samples = broken.nonzero().flatten().tolist()
    logger.warning("%s breakdown (%s) in batch rows %s: ending them", name, reason, samples)


class _FlexibleKrylov(FixedPointSolver):
    """What both flexible methods share: the preconditioner and the residual of the iterate.

    Each step ends by computing the true residual of the iterate it returns
    and keeping the pair in the context (:meth:`_returned`). The engine then
    asks for ``residual(ctx, h)`` of that iterate and passes it (or its rows,
    after dropping converged samples) to the next step: both read the pair,
    so ``A`` is applied once per iterate and :meth:`residual` changes nothing.
    """

    def __init__(self, preconditioner: FixedPointSolver) -> None:
        self.preconditioner = require_solver(type(self).__name__, "preconditioner", preconditioner)

    def stored_vectors(self) -> int:
        """Vectors per sample the method stores (the memory check of :meth:`_check_problem`)."""
        raise NotImplementedError

    def _check_problem(self, x: Any) -> Problem:
        owner = type(self).__name__
        if not isinstance(x, Problem):
            raise TypeError(
                f"{owner} expected a Problem carrying A and f (Poisson2D, Darcy2D, "
                f"StencilProblem), got {type(x).__name__}"
            )
        u = x.zeros()
        check_memory(
            owner,
            f"its {self.stored_vectors()} stored vectors for a batch of {u.shape[0]} with "
            f"{u[0].numel()} unknowns ({u.dtype})",
            self.stored_vectors() * u.numel() * u.element_size(),
        )
        return x

    def precondition(self, ctx: Any, r: Tensor) -> Tensor:
        """``z = M r``: one preconditioner step on ``A z = r`` from ``z = 0``."""
        return apply_from_zero(self.preconditioner, ctx.preconditioner, r)

    def residual(self, ctx: Any, h: Tensor) -> Tensor:
        """Physical residual ``f - A h``: kept by the step that returned ``h``, else computed."""
        cached = ctx.iterate
        if cached is not None and (
            cached is h or (cached.shape == h.shape and torch.equal(cached, h))
        ):
            return ctx.residual
        return ctx.problem.residual(h)

    def _returned(self, ctx: Any, h: Tensor) -> Tensor:
        """Keep ``h`` and its true residual ``f - A h`` in the context; return ``h``."""
        ctx.iterate, ctx.residual = h, ctx.problem.residual(h)
        return h


@dataclass
class FlexibleCGContext:
    """Per-solve state of :class:`FlexibleCG`.

    ``directions[:, i]``, ``images[:, i]`` and ``energies[:, i]`` hold the
    search direction ``p_i`` (flattened per sample), ``A p_i`` and
    ``<p_i, A p_i>`` for the last ``min(stored, m)`` steps (a ring buffer,
    ``(B, m, N)`` and ``(B, m)``). ``iterate`` / ``residual``: the iterate
    the last step returned and its residual ``f - A h``.
    """

    problem: Problem
    preconditioner: Any
    directions: Tensor | None = None
    images: Tensor | None = None
    energies: Tensor | None = None
    stored: int = 0
    iterate: Tensor | None = None
    residual: Tensor | None = None


class FlexibleCG(_FlexibleKrylov):
    r"""Flexible conjugate gradients FCG(m) for symmetric positive definite ``A``.

    From ``h_k`` with residual ``r_k = f - A h_k`` (recomputed from the
    iterate, so rounding does not make the recurrence drift), one step is

    .. math::

        z_k = M_k r_k, \qquad
        p_k = z_k - \sum_{i = k - m}^{k - 1}
              \frac{\langle z_k, A p_i\rangle}{\langle p_i, A p_i\rangle} p_i, \qquad
        h_{k+1} = h_k + \frac{\langle r_k, p_k\rangle}{\langle p_k, A p_k\rangle} p_k,

    per sample (Notay 2000). ``p_k`` is ``A``-orthogonal to the last ``m``
    directions, and the step length minimises the energy norm of the error
    along ``p_k``, so ``||h - u||_A`` never increases, whatever ``M_k`` is.
    With a fixed symmetric positive definite ``M`` and ``m >= 1`` this is
    preconditioned CG in exact arithmetic; a variable or non-symmetric ``M``
    (a multigrid cycle whose smoother is not symmetric, a learned step) needs
    the explicit orthogonalisation, and ``m > 1`` keeps the convergence close
    to CG's.

    Parameters
    ----------
    preconditioner
        Any :class:`~irsolve.FixedPointSolver` whose context accepts a new
        right-hand side (:meth:`~irsolve.FixedPointSolver.with_rhs`).
    m
        Directions kept for the orthogonalisation (>= 1).

    Notes
    -----
    The context (a :class:`FlexibleCGContext`) holds the history; one
    ``FlexibleCG`` object can serve several solves. If the iterate passed to
    :meth:`step` is not the one the previous step returned, the step is
    still an exact energy line search from it. ``<p_k, A p_k> <= 0`` or a
    non-finite step length ends that sample (NaN iterate, ``UNSTABLE``).

    Examples
    --------
    >>> sol = solve(None, FlexibleCG(Multigrid()), Darcy2D(a), tol=0, rtol=1e-8)  # doctest: +SKIP
    """

    def __init__(self, preconditioner: FixedPointSolver, m: int = 5) -> None:
        super().__init__(preconditioner)
        self.m = check_int(type(self).__name__, "m", m, minimum=1)

    def stored_vectors(self) -> int:
        return 2 * self.m + 2

    def prepare(self, x: Problem) -> FlexibleCGContext:
        """Check the problem (real: CG needs a symmetric positive definite ``A``) and prepare
        the preconditioner's context once."""
        problem = self._check_problem(x)
        if problem.zeros().is_complex():
            raise TypeError(
                f"FlexibleCG: expected a real symmetric positive definite problem, got the "
                f"complex {type(problem).__name__}: use FlexibleGMRES (with ShiftedLaplacian() "
                "for Helmholtz)"
            )
        return FlexibleCGContext(problem, self.preconditioner.prepare(problem))

    def restrict(self, ctx: FlexibleCGContext, index: Tensor) -> FlexibleCGContext:
        own = restrict(dataclasses.replace(ctx, preconditioner=None), index)
        own.preconditioner = self.preconditioner.restrict(ctx.preconditioner, index)
        return own

    def with_rhs(self, ctx: FlexibleCGContext, f: Tensor) -> FlexibleCGContext:
        """A fresh context (no history) for right-hand side ``f``: FCG as an inner solver."""
        return FlexibleCGContext(
            ctx.problem.with_rhs(f), self.preconditioner.with_rhs(ctx.preconditioner, f)
        )

    def step(self, ctx: FlexibleCGContext, h: Tensor, k: int) -> Tensor:
        batch = h.shape[0]
        r = self.residual(ctx, h)
        z = self.precondition(ctx, r).reshape(batch, -1)
        used = min(ctx.stored, self.m)
        if used:
            images, energies = ctx.images[:, :used], ctx.energies[:, :used]
            coefficients = _project(images, z) / energies
            p = z - _combine(ctx.directions[:, :used], coefficients)
        else:
            p = z
        ap = ctx.problem.apply(p.reshape(h.shape)).reshape(batch, -1)
        energy = dot(p, ap)
        alpha = dot(r, p) / energy

        usable = torch.isfinite(alpha) & (energy > 0)
        if not bool(usable.all()):
            solved = norm(r) == 0
            broken = ~solved & ~usable
            if bool(broken.any()):
                _breakdown("FlexibleCG", broken, "<p, A p> <= 0 or a non-finite step length")
            # A solved sample stays put, a broken one gets NaN; neither enters the history
            # (zero direction, unit energy).
            keep = usable.unsqueeze(-1)
            p, ap = torch.where(keep, p, 0.0), torch.where(keep, ap, 0.0)
            energy, alpha = torch.where(usable, energy, 1.0), torch.where(usable, alpha, 0.0)
            alpha = torch.where(broken, torch.nan, alpha)
        self._remember(ctx, p, ap, energy)
        return self._returned(ctx, h + broadcast(alpha, h) * p.reshape(h.shape))

    def _remember(self, ctx: FlexibleCGContext, p: Tensor, ap: Tensor, energy: Tensor) -> None:
        """Put ``p``, ``A p`` and ``<p, A p>`` in the ring buffer."""
        if ctx.directions is None:
            ctx.directions = p.new_zeros(p.shape[0], self.m, p.shape[1])
            ctx.images = torch.zeros_like(ctx.directions)
            ctx.energies = p.new_ones(p.shape[0], self.m)
        slot = ctx.stored % self.m
        ctx.directions = _put(ctx.directions, 1, slot, p)
        ctx.images = _put(ctx.images, 1, slot, ap)
        ctx.energies = _put(ctx.energies, 1, slot, energy)
        ctx.stored += 1

    def __repr__(self) -> str:
        return f"FlexibleCG({self.preconditioner!r}, m={self.m})"


@dataclass
class FlexibleGMRESContext:
    """Per-solve state of :class:`FlexibleGMRES` for the current restart cycle.

    ``basis`` ``(B, restart + 1, N)`` holds the orthonormal Arnoldi vectors
    ``v_i`` and ``search`` ``(B, restart, N)`` the preconditioned vectors
    ``z_i = M_i v_i``. The Hessenberg matrix of ``A Z_j = V_{j+1} H_j`` is kept
    as its QR factorisation by Givens rotations: ``cosines`` and ``sines``
    ``(B, restart)``, the triangular factor ``upper`` ``(B, restart, restart)``
    and the rotated right-hand side ``rotated`` ``(B, restart + 1)`` (first
    entry ``beta = ||r_0||``). ``start`` is the cycle's first iterate
    ``x_0``, ``size`` the number of vectors ``z_i`` so far and ``last`` the
    iterate the previous step returned. ``iterate`` / ``residual``: that
    iterate and its residual ``f - A h``.
    """

    problem: Problem
    preconditioner: Any
    basis: Tensor | None = None
    search: Tensor | None = None
    cosines: Tensor | None = None
    sines: Tensor | None = None
    upper: Tensor | None = None
    rotated: Tensor | None = None
    start: Tensor | None = None
    size: int = 0
    last: Tensor | None = None
    iterate: Tensor | None = None
    residual: Tensor | None = None


class FlexibleGMRES(_FlexibleKrylov):
    r"""Flexible GMRES(restart) (Saad 1993) for any non-singular ``A``.

    A cycle starts at ``x_0`` with ``r_0 = f - A x_0``, ``beta = ||r_0||_2``,
    ``v_1 = r_0 / beta``. Step ``j`` of the cycle applies the preconditioner
    and the operator once,

    .. math::

        z_j = M_j v_j, \qquad w = A z_j, \qquad
        h_{ij} = \langle w, v_i\rangle \ (i \le j), \qquad
        v_{j+1} = \Big(w - \sum_{i \le j} h_{ij} v_i\Big) / h_{j+1, j},

    (classical Gram–Schmidt applied twice, as accurate as the modified one),
    and returns the minimal-residual iterate over ``x_0 + span(z_1..z_j)``:

    .. math::

        y_j = \arg\min_y \|\beta e_1 - \bar H_j y\|_2, \qquad
        x_j = x_0 + Z_j y_j,

    so the engine sees the true residual every step. The least-squares
    problem is solved as in GMRES: Givens rotations update the QR
    factorisation of ``\bar H_j`` by one column per step, then one
    triangular solve. Keeping ``Z_j`` rather than ``V_j`` is what lets
    ``M_j`` change every step. After ``restart`` steps the next step starts a
    new cycle from the current iterate, as it does when the iterate passed in
    is not the one returned (the residual norm is then still minimised over
    the new cycle).

    Parameters
    ----------
    preconditioner
        Any :class:`~irsolve.FixedPointSolver` whose context accepts a new
        right-hand side (:meth:`~irsolve.FixedPointSolver.with_rhs`).
    restart
        Steps per cycle (>= 1); memory is ``2 restart + 1`` vectors per sample
        (refused before the solve when the machine cannot hold them).

    Notes
    -----
    All samples of a batch share the step count of the cycle (the engine
    steps them together) but have their own basis and least-squares problem.
    Complex problems (:class:`~irsolve.solvers.Helmholtz2D`) use the inner
    product ``<v, w> = sum(conj(v) w)`` and complex Givens rotations.
    A singular least-squares problem (``H_j`` rank deficient: a zero or
    dependent ``z_j``) or a non-finite value ends that sample (NaN iterate,
    ``UNSTABLE``).
    """

    def __init__(self, preconditioner: FixedPointSolver, restart: int = 30) -> None:
        super().__init__(preconditioner)
        self.restart = check_int(type(self).__name__, "restart", restart, minimum=1)

    def stored_vectors(self) -> int:
        return 2 * self.restart + 1

    def prepare(self, x: Problem) -> FlexibleGMRESContext:
        """Check the problem and prepare the preconditioner's context once."""
        problem = self._check_problem(x)
        return FlexibleGMRESContext(problem, self.preconditioner.prepare(problem))

    def restrict(self, ctx: FlexibleGMRESContext, index: Tensor) -> FlexibleGMRESContext:
        own = restrict(dataclasses.replace(ctx, preconditioner=None), index)
        own.preconditioner = self.preconditioner.restrict(ctx.preconditioner, index)
        return own

    def with_rhs(self, ctx: FlexibleGMRESContext, f: Tensor) -> FlexibleGMRESContext:
        """A fresh context (no cycle) for right-hand side ``f``: FGMRES as an inner solver."""
        return FlexibleGMRESContext(
            ctx.problem.with_rhs(f), self.preconditioner.with_rhs(ctx.preconditioner, f)
        )

    def _start_cycle(self, ctx: FlexibleGMRESContext, h: Tensor, r: Tensor) -> None:
        batch, m = h.shape[0], self.restart
        r = r.reshape(batch, -1)
        beta = norm(r)
        ctx.basis = r.new_zeros(batch, m + 1, r.shape[1])
        ctx.basis[:, 0] = r / torch.where(beta > 0, beta, 1.0).unsqueeze(-1)
        ctx.search = r.new_zeros(batch, m, r.shape[1])
        ctx.cosines, ctx.sines = r.new_ones(batch, m), r.new_zeros(batch, m)
        ctx.upper = r.new_zeros(batch, m, m)
        ctx.rotated = torch.cat([beta.unsqueeze(-1), r.new_zeros(batch, m)], dim=1)
        ctx.start, ctx.size = h, 0

    def _add_column(self, ctx: FlexibleGMRESContext, column: Tensor) -> None:
        """Append column ``j`` (``(B, j + 2)``) of ``H`` to the Givens QR factorisation.

        The rotation of ``(a, b)`` is ``[[c, s], [-conj(s), conj(c)]]`` with
        ``c = conj(a) / rho``, ``s = conj(b) / rho``, ``rho = (|a|^2 + |b|^2)^(1/2)``:
        unitary, it maps ``(a, b)`` to ``(rho, 0)`` (the real rotation for real ``H``).
        """
        j = ctx.size
        entries = list(column.unbind(dim=1))
        for i in range(j):
            c, s = ctx.cosines[:, i], ctx.sines[:, i]
            a, b = entries[i], entries[i + 1]
            entries[i], entries[i + 1] = c * a + s * b, c.conj() * b - s.conj() * a
        rho = torch.hypot(entries[j].abs(), entries[j + 1].abs())
        safe = torch.where(rho > 0, rho, 1.0)
        c = torch.where(rho > 0, entries[j].conj() / safe, 1.0)
        s = entries[j + 1].conj() / safe
        entries[j] = rho.to(column.dtype)
        ctx.cosines = _put(ctx.cosines, 1, j, c)
        ctx.sines = _put(ctx.sines, 1, j, s)
        padding = column.new_zeros(column.shape[0], self.restart - j - 1)
        ctx.upper = _put(ctx.upper, 2, j, torch.cat([torch.stack(entries[: j + 1], 1), padding], 1))
        g = ctx.rotated[:, j]
        g_j, g_next = c * g, -s.conj() * g
        ctx.rotated = _put(_put(ctx.rotated, 1, j, g_j), 1, j + 1, g_next)
        ctx.size = j + 1

    def step(self, ctx: FlexibleGMRESContext, h: Tensor, k: int) -> Tensor:
        batch = h.shape[0]
        continues = ctx.last is not None and 0 < ctx.size < self.restart
        if not (continues and (ctx.last is h or torch.equal(ctx.last, h))):
            self._start_cycle(ctx, h, self.residual(ctx, h))
        j = ctx.size
        v = ctx.basis[:, j].reshape(h.shape)
        z = self.precondition(ctx, v).reshape(batch, -1)
        w = ctx.problem.apply(z.reshape(h.shape)).reshape(batch, -1)
        basis = ctx.basis[:, : j + 1]
        column = _project(basis, w)
        w = w - _combine(basis, column)
        again = _project(basis, w)
        w = w - _combine(basis, again)
        column = column + again
        length = norm(w)
        ctx.basis = _put(
            ctx.basis, 1, j + 1, w / torch.where(length > 0, length, 1.0).unsqueeze(-1)
        )
        ctx.search = _put(ctx.search, 1, j, z)
        self._add_column(ctx, torch.cat([column, length.unsqueeze(-1)], dim=1))

        upper = ctx.upper[:, : j + 1, : j + 1]
        diagonal = upper.diagonal(dim1=-2, dim2=-1).abs()
        scale = diagonal.amax(dim=1).clamp_min(torch.finfo(h.dtype).tiny)
        singular = diagonal.amin(dim=1) <= torch.finfo(h.dtype).eps * scale
        if bool(singular.any()):  # keep the solve finite; those samples end below
            eye = torch.eye(j + 1, dtype=h.dtype, device=h.device)
            upper = torch.where(singular[:, None, None], eye, upper)
        rhs = ctx.rotated[:, : j + 1].unsqueeze(-1)
        y = torch.linalg.solve_triangular(upper, rhs, upper=True).squeeze(-1)
        x = ctx.start + _combine(ctx.search[:, : j + 1], y).reshape(h.shape)

        # The rotations are orthogonal: the rotated right-hand side is zero iff beta is.
        solved = (ctx.rotated[:, : j + 2] == 0).all(dim=1)
        broken = ~solved & (singular | ~torch.isfinite(y).all(dim=1))
        if bool((solved | broken).any()):
            if bool(broken.any()):
                _breakdown("FlexibleGMRES", broken, "singular least-squares problem or NaN")
            x = torch.where(broadcast(solved, h), h, x)
            x = torch.where(broadcast(broken, h), torch.nan, x)
        ctx.last = x
        return self._returned(ctx, x)

    def __repr__(self) -> str:
        return f"FlexibleGMRES({self.preconditioner!r}, restart={self.restart})"
