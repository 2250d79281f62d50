"""Multicolour Gauss–Seidel / SOR relaxation for 5- and 9-point stencils.

The grid is split into the four colours ``(i mod 2, j mod 2)``. No two nodes of
one colour are neighbours in a 9-point stencil, so updating one colour at a
time, each node by

``u_P <- u_P + omega (f_P - (A u)_P) / a_PP``,

is an exact Gauss–Seidel (``omega = 1``) or SOR (``1 < omega < 2``) sweep in the
four-colour ordering, and it vectorises. The colours are visited as
``(0, 0), (1, 1), (0, 1), (1, 0)``: on a 5-point stencil the first two form the
red points and the last two the black, so the sweep is exactly red-black
Gauss–Seidel (Briggs, Henson and McCormick, *A Multigrid Tutorial*, 2nd ed.,
SIAM 2000, Sec. 2.1; Trottenberg, Oosterlee and Schüller, *Multigrid*, 2001,
Sec. 4.1 for multicolour orderings). On periodic grids with odd ``n`` the
colouring does not close across the wrap, and nodes on both sides of it are
relaxed simultaneously.
"""

from __future__ import annotations

from irsolve.solvers._stencil import offsets, pad
from irsolve.solvers.problems import StencilProblem, check_omega, require_stencil_problem
from torch import Tensor

from irsolve.interface import FixedPointSolver

__all__ = ["COLOURS", "GaussSeidel", "multicolour_sweeps"]

#: Visiting order of the colours ``(i mod 2, j mod 2)`` in a forward sweep.
COLOURS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (0, 1), (1, 0))

ORDERINGS = ("redblack",)


def _refresh_halo(up: Tensor) -> None:
    """Copy the wrapped-around values into the one-node halo of a periodic padded array."""
    up[..., 0, 1:-1] = up[..., -2, 1:-1]
    up[..., -1, 1:-1] = up[..., 1, 1:-1]
    up[..., :, 0] = up[..., :, -2]
    up[..., :, -1] = up[..., :, 1]


def multicolour_sweeps(
    stencil: Tensor,
    inv_diag: Tensor,
    u: Tensor,
    f: Tensor,
    periodic: bool,
    omega: float,
    sweeps: int,
    reverse: bool = False,
) -> Tensor:
    """``sweeps`` multicolour Gauss–Seidel/SOR sweeps; returns a new tensor.

    ``reverse`` visits the colours in the opposite order (use it for
    post-smoothing to keep a multigrid cycle symmetric).
    """
    n0, n1 = u.shape[-2:]
    up = pad(u, periodic)
    colours = COLOURS[::-1] if reverse else COLOURS
    offs = offsets(stencil)
    for _ in range(sweeps):
        for ci, cj in colours:
            r = f[..., ci::2, cj::2].clone()
            for k, (di, dj) in enumerate(offs):
                neighbour = up[..., 1 + ci + di : 1 + n0 + di : 2, 1 + cj + dj : 1 + n1 + dj : 2]
                r.addcmul_(stencil[:, k : k + 1, ci::2, cj::2], neighbour, value=-1.0)
            up[..., 1 + ci : 1 + n0 : 2, 1 + cj : 1 + n1 : 2].addcmul_(
                r, inv_diag[..., ci::2, cj::2], value=omega
            )
            if periodic:
                _refresh_halo(up)
    return up[..., 1:-1, 1:-1]


class GaussSeidel(FixedPointSolver):
    """Gauss–Seidel (``omega = 1``) or SOR (``1 < omega < 2``) as a fixed-point solver.

    Parameters
    ----------
    omega
        Relaxation weight in (0, 2).
    ordering
        ``"redblack"``: red-black on 5-point stencils, its four-colour
        extension on 9-point stencils (both exact Gauss–Seidel orderings).
    sweeps
        Sweeps per step (>= 1).

    The context is the problem itself, so ``step`` also accepts a
    :class:`~irsolve.solvers.Poisson2D` or :class:`~irsolve.solvers.Darcy2D`
    directly; ``residual`` is ``f - A h``.
    """

    def __init__(self, omega: float = 1.0, ordering: str = "redblack", sweeps: int = 1) -> None:
        self.omega = check_omega(omega)
        if ordering not in ORDERINGS:
            raise ValueError(f"expected ordering in {ORDERINGS}, got {ordering!r}")
        if sweeps < 1:
            raise ValueError(f"expected sweeps >= 1, got {sweeps}")
        self.ordering = ordering
        self.sweeps = int(sweeps)

    def prepare(self, x: StencilProblem) -> StencilProblem:
        return require_stencil_problem(x, "GaussSeidel")

    def step(self, ctx: StencilProblem, h: Tensor, k: int) -> Tensor:
        problem = require_stencil_problem(ctx, "GaussSeidel")
        return multicolour_sweeps(
            problem.stencil,
            1.0 / problem.diagonal(),
            h,
            problem.f,
            problem.periodic,
            self.omega,
            self.sweeps,
        )

    def smooth(
        self,
        stencil: Tensor,
        inv_diag: Tensor,
        u: Tensor,
        f: Tensor,
        periodic: bool,
        sweeps: int,
        reverse: bool = False,
    ) -> Tensor:
        """Smoother interface used by :class:`~irsolve.solvers.Multigrid`."""
        return multicolour_sweeps(stencil, inv_diag, u, f, periodic, self.omega, sweeps, reverse)

    def __repr__(self) -> str:
        return f"GaussSeidel(omega={self.omega}, ordering={self.ordering!r}, sweeps={self.sweeps})"
