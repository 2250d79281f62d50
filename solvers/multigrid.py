"""Geometric multigrid with operator-dependent interpolation (black-box multigrid).

One step of :class:`Multigrid` is one V-, W-, F- or K-cycle for ``A u = f``:

1. ``pre`` smoothing sweeps on ``A u = f``;
2. restrict the residual ``r_c = R (f - A u)``;
3. solve ``A_c e_c = r_c`` approximately by the same cycle on the coarse grid
   (once for V, twice for W, an F-cycle followed by a V-cycle for F, two
   flexible-CG iterations preconditioned by a K-cycle for K), exactly
   (batched dense LU) on the coarsest grid, or by any solver there (a
   learned corrector, see below);
4. correct ``u <- u + P e_c`` and apply ``post`` smoothing sweeps (colours in
   the same order as before: red-black after the correction reduces the Poisson
   V(2,2) factor to 0.02, against 0.09 for the reversed order; ``symmetric=True``
   reverses them, which conjugate gradients needs).

``P`` is Dendy's operator-dependent interpolation, ``R = P^T`` and
``A_c = R A P`` (see :mod:`irsolve.solvers._interpolation`); the default smoother
is red-black / four-colour Gauss–Seidel, exact Gauss–Seidel on the 5-point
fine stencil and on the 9-point Galerkin stencils. The hierarchy is built once
per input in :meth:`Multigrid.prepare` and is batched, so the engine can drop
converged samples from it.

Complex operators (:class:`~irsolve.solvers.Helmholtz2D` and its shifted
Laplacian, :class:`~irsolve.solvers.helmholtz.ComplexStencilProblem`) are
coarsened with real weights: Dendy's interpolation of the problem's
``interpolation_stencil`` (the real ``-Δ``), whose Galerkin products are
carried down beside the complex ones, while the complex operator gets the
Galerkin coarse stencils ``A_c = P^T A P`` (complex symmetric like ``A``) and is
smoothed with it (use a damped :class:`~irsolve.solvers.Jacobi`, as Erlangga,
Oosterlee and Vuik 2006 do). Weights computed from the complex stencil itself
diverged on the shifted Laplacian (63^2, k = 40, layered medium: V(1,1) with
Jacobi 0.5 grows the residual ~10x per cycle), because the collapsed stencil
is indefinite; with the Laplacian's weights the same V(1,1) cycle reduces it
by 0.17-0.6 per cycle (Jacobi 0.8).

Any grid size is accepted. A Dirichlet grid of ``n`` nodes per side has
``n // 2`` coarse nodes per side, its odd-indexed nodes; for even ``n`` the
last coarse line runs next to the boundary, and the interpolation there takes
its profile from the operator (see :mod:`irsolve.solvers._interpolation`).
Measured V(2,2) factor on Poisson: 0.020-0.022 for n = 15 .. 512, odd or even.
Periodic grids halve while their size is even; a one-node periodic grid
(``A = 0``) gives the mean-zero solution, 0.

High contrast. When the coefficient jumps from node to node (Darcy with ``a``
in {1, 1000} drawn per node) the high-coefficient nodes form irregular clusters
whose constants have little energy; the clusters that hold no coarse node, or
reach it only through fine nodes, are not represented by the geometric coarse
grid, and the default V(2,2) needs 247-439 cycles to 1e-8 (factor 0.94-0.96)
at 63^2-127^2. :meth:`Multigrid.robust` (K(2,2) cycle, zebra line relaxation,
block relaxation of the strongly coupled clusters, coarsest grid 16) needs
15-34 cycles (factor 0.47-0.51) on 33 samples at 63^2, 64^2 and 127^2, where
PyAMG Ruge–Stüben needs 53-333 on the same matrices; wall time (set-up + solve,
2-core CPU, one thread) 1.0-3.2x PyAMG RS's. On smooth (FNO 12/3) coefficients
it needs 5 cycles against 6 for the default V(2,2), at 2-3x the time, so the
default stays the cheap V(2,2). As a preconditioner of conjugate gradients
(``Multigrid.robust(symmetric=True)``, one cycle from zero per iteration through
:meth:`Multigrid.precondition`) it needs 13-25 iterations (PyAMG RS + CG: 18-28);
the K-cycle inside flexible CG needs 10-14. Figures from
``benchmarks/bench_multigrid.py``. Without the cluster blocks (K-cycle and zebra
lines only) one sample in 15 at 63^2 still needed 156 cycles. The count grows
on larger grids, where more clusters exceed the 32 nodes relaxed as a block:
29 and 74 cycles at 255^2 (22 and 58 with ``cluster_size=128``; PyAMG RS did
not reach 1e-8 in 1000 cycles on either), 58 on one sample at 511^2.

Any solver as the coarse solve. ``Multigrid(coarse=solver)`` replaces the LU
solve of ``A_c e = r_c`` on the coarsest grid by one step of ``solver`` from
zero (:func:`~irsolve.interface.apply_from_zero`), prepared once on the
coarse problem (:class:`CoarseProblem`: the Galerkin ``A_c`` and, for a
diffusion problem, the coefficient averaged down the hierarchy,
``log a_{l+1} = R log a_l / R 1``, which a learned step reads as its
feature). With the learned corrector,
``coarse=Cycle(ResidualCorrector(net), GaussSeidel(sweeps=3), repeats=3)``
is three learned steps ``e <- e + alpha d`` on ``A_c`` with the energy step
length ``alpha = <r, d> / <d, A_c d>`` (never increasing the
``A_c``-energy error, whatever the net returns), each followed by three
sweeps; ``alpha`` depends on ``r_c``, so the cycle is not a linear map of the
residual and suits flexible Krylov methods (:class:`~irsolve.solvers.FlexibleCG`)
only. With ``coarsest=32`` the coarse grid is 32^2 (31^2 for ``2^k - 1``
grids) whatever the fine grid, so a corrector trained at 32^2 costs the same
per cycle at every size. Its peer is the exact LU solve it replaces, which is
cheap at 32^2 (1024 unknowns): a learned coarse solve only pays where the
coarse problem is too big for a dense factorisation or has no direct solver.
Measured in ``benchmarks/bench_coarse_corrector.py``.

References
----------
J. E. Dendy, "Black box multigrid", J. Comput. Phys. 48 (1982) 366–386.
Y. Notay, P. S. Vassilevski, "Recursive Krylov-based multigrid cycles", Numer.
Linear Algebra Appl. 15 (2008) 473–487 (the K-cycle).
U. Trottenberg, C. W. Oosterlee, A. Schüller, *Multigrid*, Academic Press
2001, Ch. 2 (cycles) and Sec. 7.7 (operator-dependent interpolation).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from irsolve._validate import check_bool, check_choice, check_float_dtype, check_int
from irsolve.interface import FixedPointSolver, apply_from_zero, require_solver, restrict
from irsolve.solvers._interpolation import Transfer, can_coarsen, galerkin, interpolation
from irsolve.solvers._interpolation import prolong as _prolong
from irsolve.solvers._interpolation import restrict as _restrict
from irsolve.solvers._stencil import apply_stencil, centre_index, stencil_to_dense
from irsolve.solvers.gauss_seidel import GaussSeidel
from irsolve.solvers.jacobi import Jacobi
from irsolve.solvers.problems import (
    ComplexStencilProblem,
    StencilProblem,
    require_stencil_problem,
)

__all__ = ["CoarseProblem", "Hierarchy", "Level", "Multigrid"]

logger = logging.getLogger(__name__)

CYCLES = ("V", "W", "F", "K")
#: Largest coarsest grid (unknowns per sample) factorised densely.
MAX_DIRECT = 4096


@dataclass
class Level:
    """One grid of the hierarchy.

    ``stencil`` is its operator, ``smoother`` the smoother's data for it (from
    ``smoother.setup``; ``None`` on the coarsest grid) and ``transfer`` the
    interpolation to the next coarser grid (``None`` on the coarsest).
    """

    stencil: Tensor
    smoother: Any
    transfer: Transfer | None
    periodic: bool

    @property
    def n(self) -> int:
        """Nodes per side."""
        return self.stencil.shape[-1]


class CoarseProblem(StencilProblem):
    """The coarsest level as a problem of its own: the Galerkin stencil ``A_c``, and the
    fine diffusion coefficient averaged down (``a``, ``None`` for other problems).

    ``log a_{l+1} = R log a_l / R 1`` level by level (``R`` the restriction): the
    geometric mean over each coarse node's stencil, which is what a solver that
    reads the coefficient (the learned corrector's feature ``log(a / a_g)``) sees.
    """

    def __init__(self, stencil: Tensor, f: Tensor, periodic: bool, a: Tensor | None) -> None:
        super().__init__(stencil, f, periodic)
        self.a = a


class CoarseSolveContext:
    """What the multigrid contexts share: a ``problem`` and the coarse solver's context
    ``coarse`` (``None`` with the built-in LU); a mixin of their dataclasses."""

    def with_rhs(self, f: Tensor) -> Any:
        """The same hierarchy for the fine right-hand side ``f`` (the coarse solver's own
        right-hand side is set per coarse solve)."""
        return dataclasses.replace(self, problem=self.problem.with_rhs(f))

    def restricted(self, index: Tensor, coarse_solver: Any) -> Any:
        """The hierarchy of the samples ``index``; ``coarse_solver`` restricts its own context."""
        own = restrict(dataclasses.replace(self, coarse=None), index)
        if self.coarse is not None:
            own.coarse = coarse_solver.restrict(self.coarse, index)
        return own


@dataclass
class Hierarchy(CoarseSolveContext):
    """Multigrid context: the problem, its levels (finest first) and the coarse solver's data.

    ``lu`` and ``pivots`` are the coarsest LU factor (``None`` with a coarse
    solver); ``coarse`` is that solver's context, prepared once on the
    :class:`CoarseProblem` (``None`` with LU); ``coarse_name`` names the coarse
    solve for the printout. Every tensor is batched along dim 0, so
    :func:`irsolve.interface.restrict` restricts it to a subset of samples.
    """

    problem: StencilProblem
    levels: list[Level]
    lu: Tensor | None
    pivots: Tensor | None
    coarse: Any = None
    coarse_name: str = "dense LU"

    def __repr__(self) -> str:
        """Levels, unknowns and stencil nonzeros per level (of sample 0), and the operator
        and grid complexities ``sum_l nnz(A_l) / nnz(A_0)`` and ``sum_l n_l / n_0``, as
        PyAMG's ``MultilevelSolver`` prints them."""
        batch = self.levels[0].stencil.shape[0]
        unknowns = [level.n**2 for level in self.levels]
        nonzeros = [
            int(torch.count_nonzero(level.stencil[0])) if batch else 0 for level in self.levels
        ]
        total = max(sum(nonzeros), 1)
        solver = self.coarse_name
        lines = [
            f"Hierarchy(batch={batch}, levels={len(self.levels)}, "
            f"operator complexity {sum(nonzeros) / max(nonzeros[0], 1):.3f}, "
            f"grid complexity {sum(unknowns) / unknowns[0]:.3f}, "
            f"coarse solver: {solver} of {unknowns[-1]} unknowns)",
            "  level  unknowns  nonzeros",
        ]
        for index, (n, nnz) in enumerate(zip(unknowns, nonzeros, strict=True)):
            lines.append(f"  {index:5d}  {n:8d}  {nnz:8d} [{100 * nnz / total:5.2f}%]")
        return "\n".join(lines)


class Multigrid(FixedPointSolver):
    """Black-box geometric multigrid; one step is one cycle.

    Parameters
    ----------
    cycle
        ``"V"``, ``"W"``, ``"F"`` or ``"K"``. The K-cycle solves each coarse
        equation by two flexible-CG iterations, each preconditioned by a K-cycle
        on the next grid (about the cost of a W-cycle); it assumes a symmetric
        positive definite ``A`` and is not a linear map of the residual.
    pre, post
        Smoothing sweeps before and after the coarse-grid correction (>= 0,
        not both zero).
    smoother
        A :class:`~irsolve.solvers.GaussSeidel` (default, ``omega = 1``) or
        :class:`~irsolve.solvers.Jacobi` instance.
    coarse
        Coarsest-grid solver: ``"direct"`` (batched dense LU, at most
        ``MAX_DIRECT`` unknowns) or any :class:`~irsolve.FixedPointSolver`
        instance, one step of which from zero is the coarse solve (see the module
        docstring; any coarse size).
    coarsest
        Coarsening stops at a grid of at most this many nodes per side (or one
        that cannot be halved: a periodic grid of odd size).
    cycle_dtype
        Floating dtype of the hierarchy and the cycles; ``None``: the
        problem's. With ``torch.float32`` for a float64 problem each step is a
        mixed-precision iterative refinement: the residual ``f - A h`` is
        formed in float64 and the correction ``e`` (one cycle on ``A e = r``
        from zero) in float32, so iterates still converge to float64 accuracy
        while the cycles move half the bytes.
    symmetric
        Post-smooth in the reverse order of the pre-smoothing (colours, lines,
        cluster blocks), so that with ``pre == post`` a V- or W-cycle from zero
        is a symmetric positive definite map ``r -> B r`` for symmetric positive
        definite ``A``, the preconditioner conjugate gradients needs. Costs
        nothing, but the same-order default converges faster stand-alone.

    Notes
    -----
    ``prepare(problem)`` builds the hierarchy (a :class:`Hierarchy`);
    ``residual`` is the physical residual ``f - A h`` of the finest grid. For
    periodic problems the iterate is kept at mean zero.
    """

    def __init__(
        self,
        cycle: str = "V",
        pre: int = 2,
        post: int = 2,
        smoother: GaussSeidel | Jacobi | None = None,
        coarse: str | FixedPointSolver = "direct",
        coarsest: int = 8,
        cycle_dtype: torch.dtype | None = None,
        symmetric: bool = False,
    ) -> None:
        owner = "Multigrid"
        self.cycle = check_choice(owner, "cycle", cycle, CYCLES)
        self.pre = check_int(owner, "pre", pre, minimum=0)
        self.post = check_int(owner, "post", post, minimum=0)
        if self.pre + self.post == 0:
            raise ValueError(f"{owner}: expected pre + post >= 1, got pre={pre}, post={post}")
        if isinstance(coarse, str):
            coarse = check_choice(owner, "coarse", coarse, ("direct",))
        else:
            coarse = require_solver(owner, "coarse ('direct' or a solver)", coarse)
        self.coarse = coarse
        self.coarsest = check_int(owner, "coarsest", coarsest, minimum=1)
        smoother = GaussSeidel() if smoother is None else smoother
        if not isinstance(smoother, (GaussSeidel, Jacobi)):
            raise TypeError(
                f"{owner}: expected smoother to be a GaussSeidel or Jacobi, "
                f"got {type(smoother).__name__}"
            )
        self.smoother = smoother
        self.cycle_dtype = (
            None if cycle_dtype is None else check_float_dtype(owner, "cycle_dtype", cycle_dtype)
        )
        self.symmetric = check_bool(owner, "symmetric", symmetric)
        if self.symmetric and (cycle == "F" or self.pre != self.post):
            raise ValueError(
                f"{owner}: expected a V, W or K cycle with pre == post for symmetric=True, got "
                f"cycle={cycle!r}, pre={pre}, post={post}"
            )

    @classmethod
    def robust(cls, symmetric: bool = False) -> Multigrid:
        """The configuration for coefficients that jump from node to node.

        ``Multigrid(cycle="K", smoother=GaussSeidel(ordering="zebra", clusters=0.25),
        coarsest=16)``: zebra line relaxation and cluster blocks in the smoother,
        Krylov coarse solves (K-cycle), a 15 x 15 or 16 x 16 coarsest grid (the
        K-cycle visits the coarse levels 2^level times, so dropping the 8 x 8
        level halves its cost at the same cycle count). Dirichlet grids only
        (zebra lines). ``symmetric=True`` gives the symmetric V(2,2) with the
        same smoother instead, a fixed preconditioner for conjugate gradients.
        Measured figures are in the module docstring.

        Examples
        --------
        >>> a = torch.where(torch.rand(3, 1, 63, 63) < 0.5, 1.0, 1000.0)  # doctest: +SKIP
        >>> sol = solve(None, Multigrid.robust(), Darcy2D(a), tol=0.0, rtol=1e-8)  # doctest: +SKIP
        """
        smoother = GaussSeidel(ordering="zebra", clusters=0.25)
        if symmetric:
            return cls(smoother=smoother, coarsest=16, symmetric=True)
        return cls(cycle="K", smoother=smoother, coarsest=16)

    def prepare(self, x: StencilProblem) -> Hierarchy:
        """Build the hierarchy: interpolation weights and Galerkin operators, then the LU factor
        (or the coarse solver's context on the :class:`CoarseProblem`)."""
        problem = require_stencil_problem(x, "Multigrid")
        periodic = problem.periodic
        levels = []
        stencil = problem.stencil.to(self.cycle_dtype or problem.stencil.dtype)
        # Complex operators: the weights follow the problem's real diffusion stencil (-Δ).
        follow = self._interpolation_stencil(problem)
        while True:
            n = stencil.shape[-1]
            if n <= self.coarsest or not can_coarsen(n, periodic):
                levels.append(Level(stencil, None, None, periodic))
                break
            transfer = interpolation(stencil if follow is None else follow, periodic)
            smoother = self.smoother.setup(stencil, periodic)
            levels.append(Level(stencil, smoother, transfer, periodic))
            stencil = galerkin(stencil, transfer)
            follow = None if follow is None else galerkin(follow, transfer)
        logger.debug("multigrid hierarchy: sizes %s", [lev.n for lev in levels])
        if self.coarse != "direct":
            coarse = self.coarse.prepare(self._coarse_problem(problem, levels))
            return Hierarchy(problem, levels, None, None, coarse, type(self.coarse).__name__)
        size = stencil.shape[-1]
        if size * size > MAX_DIRECT:
            raise ValueError(
                f"Multigrid: expected a grid that halves down to at most {MAX_DIRECT} unknowns; "
                f"the {'periodic' if periodic else 'Dirichlet'} grid of {problem.n} stops at "
                f"{size} x {size} (coarsest={self.coarsest}: coarsening stops at that many "
                "points per side or fewer, and must stop at 64 or fewer; periodic grids halve "
                "only while even)"
            )
        dense = stencil_to_dense(stencil, periodic)
        if periodic:
            # Constants span the null space: A + c 1 1^T is regular, and for a right-hand
            # side orthogonal to 1 its solution solves A e = r with mean zero. c is scaled
            # by the mean centre coefficient of the stencil (not of the dense matrix: on a
            # one-node grid every coupling wraps onto the node and A = 0).
            scale = stencil[:, centre_index(stencil)].abs().flatten(1).mean(dim=1)
            dense = dense + (scale / size**2)[:, None, None]
        # One factorisation per sample: with 2 CPU threads, torch 2.13's batched lu_factor
        # returned invalid pivots (0 or garbage) for every batch of 225 x 225 or 961 x 961
        # coarse matrices tried (60 of 60), while single-matrix calls were all correct.
        factors = [torch.linalg.lu_factor(matrix) for matrix in dense]
        lu = torch.stack([factor[0] for factor in factors])
        pivots = torch.stack([factor[1] for factor in factors])
        return Hierarchy(problem, levels, lu, pivots)

    def _coarse_problem(
        self, problem: StencilProblem, levels: list[Level]
    ) -> CoarseProblem | ComplexStencilProblem:
        """The coarsest level as a :class:`CoarseProblem` (zero right-hand side), with the
        coefficient ``a`` of a diffusion problem averaged down: ``log a <- R log a / R 1``;
        a complex operator's as a :class:`ComplexStencilProblem` (e.g. for
        :class:`~irsolve.solvers.SparseLU`)."""
        stencil = levels[-1].stencil
        zeros = torch.zeros(stencil.shape[0], 1, *stencil.shape[-2:], dtype=stencil.dtype)
        if stencil.is_complex():
            return ComplexStencilProblem(stencil, zeros.to(stencil.device))
        a = getattr(problem, "a", None)
        if isinstance(a, Tensor):
            log_a = a.log().to(levels[0].stencil.dtype)
            for level in levels[:-1]:
                weights = _restrict(level.transfer, torch.ones_like(log_a))
                log_a = _restrict(level.transfer, log_a) / weights
            a = log_a.exp()
        return CoarseProblem(stencil, zeros.to(stencil.device), problem.periodic, a)

    def _interpolation_stencil(self, problem: StencilProblem) -> Tensor | None:
        """The real stencil the interpolation follows for a complex problem, else ``None``."""
        if not problem.stencil.is_complex():
            return None
        follow = getattr(problem, "interpolation_stencil", None)
        if follow is None or self.cycle_dtype is not None:
            raise TypeError(
                "Multigrid: expected a complex operator with a real interpolation_stencil "
                "(Helmholtz2D, its shifted Laplacian) and cycle_dtype=None, got "
                f"{type(problem).__name__} and cycle_dtype={self.cycle_dtype}"
            )
        if self.cycle == "K":
            raise ValueError("Multigrid: the K-cycle assumes an SPD operator, got a complex one")
        return follow

    def residual(self, ctx: Hierarchy, h: Tensor) -> Tensor:
        return ctx.problem.residual(h)

    def step(self, ctx: Hierarchy, h: Tensor, k: int) -> Tensor:
        dtype = ctx.levels[0].stencil.dtype
        if dtype == ctx.problem.f.dtype:
            u = self._cycle(ctx, 0, h, ctx.problem.f, self.cycle)
        else:  # mixed precision: correction from the residual, formed in the problem's dtype
            r = ctx.problem.residual(h).to(dtype)
            u = h + self.precondition(ctx, r).to(h.dtype)
        if ctx.problem.periodic:
            u = u - u.mean(dim=(-2, -1), keepdim=True)
        return u

    def precondition(self, ctx: Hierarchy, r: Tensor) -> Tensor:
        """One cycle from a zero initial guess on ``A e = r``: the preconditioner ``B r``.

        ``r`` is ``(B, C, n, n)`` in the hierarchy's dtype. With ``symmetric=True``
        and a V or W cycle, ``B`` is a fixed symmetric positive definite matrix (for
        symmetric positive definite ``A``), as conjugate gradients needs; the K-cycle
        is not linear in ``r`` and suits flexible Krylov methods only.
        """
        return self._cycle(ctx, 0, None, r, self.cycle)

    def _coarse_solve(self, ctx: Hierarchy, f: Tensor) -> Tensor:
        """``A_c e = f`` on the coarsest grid: by the LU factor, or one step of the coarse
        solver from zero."""
        if ctx.lu is not None:
            b = f.reshape(f.shape[0], -1, 1)
            return torch.linalg.lu_solve(ctx.lu, ctx.pivots, b).reshape(f.shape)
        return apply_from_zero(self.coarse, ctx.coarse, f)

    def restrict(self, ctx: Hierarchy, index: Tensor) -> Hierarchy:
        """The hierarchy of the samples ``index``; the coarse solver restricts its own context."""
        return ctx.restricted(index, self.coarse)

    def _cycle(self, ctx: Hierarchy, depth: int, u: Tensor | None, f: Tensor, kind: str) -> Tensor:
        """One ``kind`` cycle on level ``depth`` from ``u`` (``None``: zero initial guess)."""
        level = ctx.levels[depth]
        if level.transfer is None:
            return self._coarse_solve(ctx, f)
        if u is None:
            u = torch.zeros_like(f)
        if self.pre:
            u = self.smoother.smooth(level.smoother, u, f, self.pre)
        r = f - apply_stencil(level.stencil, u, level.periodic)
        rc = _restrict(level.transfer, r)
        if ctx.levels[depth + 1].transfer is None:
            ec = self._coarse_solve(ctx, rc)
        elif kind == "V":
            ec = self._cycle(ctx, depth + 1, None, rc, "V")
        elif kind == "W":
            ec = self._cycle(ctx, depth + 1, None, rc, "W")
            ec = self._cycle(ctx, depth + 1, ec, rc, "W")
        elif kind == "K":
            ec = self._krylov(ctx, depth + 1, rc)
        else:
            ec = self._cycle(ctx, depth + 1, None, rc, "F")
            ec = self._cycle(ctx, depth + 1, ec, rc, "V")
        u = u + _prolong(level.transfer, ec)
        if self.post:
            if self.symmetric and isinstance(self.smoother, GaussSeidel):
                u = self.smoother.smooth(level.smoother, u, f, self.post, reverse=True)
            else:
                u = self.smoother.smooth(level.smoother, u, f, self.post)
        return u

    def _krylov(self, ctx: Hierarchy, depth: int, r: Tensor) -> Tensor:
        """Two flexible-CG iterations on level ``depth``, preconditioned by a K-cycle each.

        With ``c_1 = B r``, ``v_1 = A c_1``, ``rho_1 = <c_1, v_1>``,
        ``alpha_1 = <c_1, r> / rho_1``, ``r_2 = r - alpha_1 v_1``, ``c_2 = B r_2``,
        ``v_2 = A c_2``, ``gamma = <c_2, v_1>``, ``rho_2 = <c_2, v_2> - gamma^2 / rho_1``
        and ``alpha_2 = <c_2, r_2>``, the iterate is
        ``(alpha_1 - gamma alpha_2 / (rho_1 rho_2)) c_1 + (alpha_2 / rho_2) c_2``
        (flexible CG, as in Notay and Vassilevski 2008). Products are per sample;
        a zero residual gives a zero correction.
        """
        level = ctx.levels[depth]

        def dot(a: Tensor, b: Tensor) -> Tensor:
            return (a * b).sum(dim=(-3, -2, -1), keepdim=True)

        def ratio(num: Tensor, den: Tensor) -> Tensor:
            return torch.where(den != 0, num / torch.where(den != 0, den, 1.0), 0.0)

        c1 = self._cycle(ctx, depth, None, r, "K")
        v1 = apply_stencil(level.stencil, c1, level.periodic)
        rho1 = dot(c1, v1)
        alpha1 = ratio(dot(c1, r), rho1)
        r2 = r - alpha1 * v1
        c2 = self._cycle(ctx, depth, None, r2, "K")
        v2 = apply_stencil(level.stencil, c2, level.periodic)
        gamma = dot(c2, v1)
        rho2 = dot(c2, v2) - ratio(gamma * gamma, rho1)
        alpha2 = ratio(dot(c2, r2), rho2)
        return (alpha1 - ratio(gamma, rho1) * alpha2) * c1 + alpha2 * c2

    def __repr__(self) -> str:
        return (
            f"Multigrid(cycle={self.cycle!r}, pre={self.pre}, post={self.post}, "
            f"smoother={self.smoother!r}, coarse={self.coarse!r}, coarsest={self.coarsest}, "
            f"cycle_dtype={self.cycle_dtype}, symmetric={self.symmetric})"
        )
