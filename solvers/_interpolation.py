"""Operator-dependent interpolation and Galerkin coarsening on 9-point stencils.

Full coarsening by two: on a fine grid of ``n`` nodes per side the coarse
nodes are the fine nodes with odd index ``i = 2I + 1``, ``I = 0..m-1``,
``m = n // 2``. The other fine nodes are interpolated from their coarse
neighbours with Dendy's black-box weights (J. E. Dendy, "Black box multigrid",
J. Comput. Phys. 48 (1982) 366–386), computed from the fine stencil ``S``
collapsed across the direction of interpolation:

* a node between two coarse nodes along ``j`` (odd ``i``, even ``j``) takes
  ``w_W = -sum_di S(di, -1) / sum_di S(di, 0)`` and
  ``w_E = -sum_di S(di, +1) / sum_di S(di, 0)``; along ``i`` likewise;
* a node in the middle of four coarse nodes (even ``i``, even ``j``) solves its
  own equation with the values already interpolated on the edges, e.g.
  ``w_NW = -(S(-1,-1) + S(-1,0) w_W(north edge) + S(0,-1) w_N(west edge)) / S(0,0)``.

Restriction is the transpose ``R = P^T`` and the coarse operator the Galerkin
product ``A_c = R A P`` (a 9-point stencil again). Jumps in the coefficient
are followed by the weights, which is what keeps the cycle robust for
Darcy problems with contrast (Alcouffe, Brandt, Dendy and Painter, SIAM J.
Sci. Stat. Comput. 2 (1981) 430–454).

Grids that do not halve cleanly are embedded: a Dirichlet grid with even
``n = 2m`` gets one more row and column of decoupled nodes after it (identity
rows), so the transfer operates on ``2m + 1`` nodes; their interpolation
weights vanish, so nothing leaks through them. The last coarse line then runs
next to the boundary, where collapsing under a constant profile is wrong.
There the profile across the line is taken from the operator itself (see
:func:`_collapse`), which keeps the V(2,2) factor of even grids at that of odd
ones: Poisson 0.021 at n = 64 and 128, against 0.099 and 0.107 with the plain
collapse. Periodic grids need even ``n`` (the wrap closes the pattern).

The arithmetic is batched over dim 0 and runs on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from irsolve.solvers._stencil import OFFSETS9, offsets, pad

# Index of offset (di, dj) in the 9-point layout: 3 (di + 1) + (dj + 1).
NW, N, NE, W, C, E, SW, S, SE = range(9)


@dataclass
class Transfer:
    """Interpolation weights from a coarse grid of ``m x m`` to a fine grid of ``n x n``.

    Attributes
    ----------
    along_j
        ``(B, 2, m, e)``: weights of the west and east coarse neighbours of the
        fine nodes ``(2I + 1, 2J)``.
    along_i
        ``(B, 2, e, m)``: weights of the north and south coarse neighbours of
        the fine nodes ``(2I, 2J + 1)``.
    centre
        ``(B, 4, e, e)``: weights of the NW, NE, SW, SE coarse neighbours of the
        fine nodes ``(2I, 2J)``.
    n, periodic
        Fine size and boundary type (``e = m + 1`` for Dirichlet, ``m`` periodic).
    """

    along_j: Tensor
    along_i: Tensor
    centre: Tensor
    n: int
    periodic: bool

    @property
    def size(self) -> int:
        """Nodes per side of the embedded fine grid: ``2 m + 1`` (Dirichlet) or ``n``."""
        return self.n if self.periodic else 2 * self.m + 1

    def embedding(self) -> tuple[int, int, int, int]:
        """``F.pad`` widths that embed a fine ``n x n`` array in the ``size x size`` grid."""
        extra = self.size - self.n
        return (0, extra, 0, extra)

    @property
    def m(self) -> int:
        """Coarse nodes per side."""
        return self.along_j.shape[-2]


def can_coarsen(n: int, periodic: bool) -> bool:
    """Whether an ``n``-node grid has a coarse grid (periodic grids need even ``n >= 6``)."""
    return n % 2 == 0 and n >= 6 if periodic else n >= 3


def _take(a: Tensor, start: int, count: int, dim: int, fill: float) -> Tensor:
    """Entries ``start, start + 2, ...`` (``count`` of them) of ``a`` along ``dim``.

    An index past the end (the decoupled line of an embedded grid) reads ``fill``.
    """
    index = [slice(None)] * a.dim()
    index[dim] = slice(start, None, 2)
    piece = a[tuple(index)]
    piece = piece.narrow(dim, 0, min(count, piece.shape[dim]))
    after = count - piece.shape[dim]
    if after == 0:
        return piece
    return F.pad(piece, (0, after, 0, 0) if dim == -1 else (0, 0, 0, after), value=fill)


def _nodes(a: Tensor, rows: tuple[int, int], cols: tuple[int, int], fill: float = 0.0) -> Tensor:
    """Sub-grid ``a[rows[0]::2, cols[0]::2]`` of ``rows[1] x cols[1]`` nodes (see ``_take``)."""
    return _take(_take(a, *rows, -2, fill), *cols, -1, fill)


def _channel(stencil: Tensor, di: int, dj: int) -> Tensor | None:
    """Coefficient of offset ``(di, dj)`` as ``(B, n, n)``; ``None`` if the stencil lacks it."""
    offs = offsets(stencil)
    return stencil[:, offs.index((di, dj))] if (di, dj) in offs else None


def _collapse(stencil: Tensor, across: int, d: int, periodic: bool) -> Tensor:
    """Sum of the coefficients at offset ``d`` along one axis, over the other axis (``across``).

    ``across = -2`` sums ``S(di, d)`` over ``di``; ``across = -1`` sums ``S(d, dj)``
    over ``dj``. Collapsing assumes the error is constant across the
    interpolation direction. On the first and last line of a Dirichlet grid
    it vanishes at the boundary instead; there the profile across the line is
    the one that solves the collapsed 1-D equation ``c_b u_0 = c_1 (u_1 - u_0)``
    (no flux divergence at the line, zero boundary value), so the neighbour
    one line in carries ``u_1 / u_0 = 1 + c_b / c_1`` times the value, with
    ``c_1`` the coupling to that line and ``c_b`` the coupling to the boundary,
    which is the row sum of an operator that annihilates constants in the
    interior (Darcy, Poisson and their Galerkin coarse operators). For the
    Laplacian with the boundary one spacing away this is the linear profile,
    ``u_1 / u_0 = 2``.
    """
    terms = {}
    for t in (-1, 0, 1):
        c = _channel(stencil, t, d) if across == -2 else _channel(stencil, d, t)
        if c is not None:
            terms[t] = c
    b, _, n, _ = stencil.shape
    total = stencil.new_zeros(b, n, n)
    for c in terms.values():
        total = total + c
    if periodic:
        return total
    for line, inward in ((0, 1), (n - 1, -1)):
        if inward in terms:
            side = [slice(None)] * 3
            side[across] = line
            extra = _boundary_ratio(stencil, across, line, inward)
            total[tuple(side)] += terms[inward][tuple(side)] * extra
    return total


def _boundary_ratio(stencil: Tensor, across: int, line: int, inward: int) -> Tensor:
    """``c_b / c_1`` at the nodes of a boundary line, ``(B, n)`` (see :func:`_collapse`).

    At the two ends of the line the row sum also holds the coupling to the
    other boundary, so the ends take the value of their inner neighbour.
    """
    index = [slice(None)] * 4
    index[across] = line
    rows = stencil[tuple(index)]  # (B, K, n): the stencils of the line's nodes
    axis = 0 if across == -2 else 1
    inward_k = [k for k, offset in enumerate(offsets(stencil)) if offset[axis] == inward]
    ratio = rows.sum(dim=1) / -rows[:, inward_k].sum(dim=1)
    ratio[:, 0] = ratio[:, 1]
    ratio[:, -1] = ratio[:, -2]
    return ratio


def interpolation(stencil: Tensor, periodic: bool) -> Transfer:
    """Dendy's operator-dependent interpolation weights from a fine stencil (see module doc)."""
    n = stencil.shape[-1]
    if not can_coarsen(n, periodic):
        raise ValueError(f"cannot coarsen a {'periodic' if periodic else 'Dirichlet'} grid of {n}")
    m = n // 2
    e = m if periodic else m + 1
    odd, even = (1, m), (0, e)  # first index and count of the odd / even lines
    # Fine nodes between coarse nodes along j (odd row, even column): collapse over di.
    west, mid, east = (
        _nodes(_collapse(stencil, -2, d, periodic), odd, even, float(d == 0)) for d in (-1, 0, 1)
    )
    along_j = -torch.stack((west / mid, east / mid), dim=1)
    # Fine nodes between coarse nodes along i (even row, odd column): collapse over dj.
    north, mid, south = (
        _nodes(_collapse(stencil, -1, d, periodic), even, odd, float(d == 0)) for d in (-1, 0, 1)
    )
    along_i = -torch.stack((north / mid, south / mid), dim=1)
    # Fine nodes at cell centres (even row, even column): their four edges are already
    # interpolated, so each solves its own equation for the four coarse corners.
    z = {}
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            c = _channel(stencil, di, dj)
            if c is not None:
                z[di, dj] = _nodes(c, even, even, float(di == dj == 0))
    zero = torch.zeros_like(z[0, 0])
    wj = _pad_dim(along_j, -2, periodic)  # row I of the padded array = edge row I - 1
    wi = _pad_dim(along_i, -1, periodic)
    above, below = wj[..., 0:e, :], wj[..., 1 : e + 1, :]
    left, right = wi[..., :, 0:e], wi[..., :, 1 : e + 1]
    zn, zs, zw, ze = z[-1, 0], z[1, 0], z[0, -1], z[0, 1]
    centre = -torch.stack(
        (
            z.get((-1, -1), zero) + zn * above[:, 0] + zw * left[:, 0],
            z.get((-1, 1), zero) + zn * above[:, 1] + ze * right[:, 0],
            z.get((1, -1), zero) + zs * below[:, 0] + zw * left[:, 1],
            z.get((1, 1), zero) + zs * below[:, 1] + ze * right[:, 1],
        ),
        dim=1,
    ) / z[0, 0].unsqueeze(1)
    return Transfer(along_j, along_i, centre, n, periodic)


def _pad_dim(w: Tensor, dim: int, periodic: bool) -> Tensor:
    """Pad one spatial dim of a weight array by one on each side (zeros or wrap-around)."""
    widths = (0, 0, 1, 1) if dim == -2 else (1, 1, 0, 0)
    return F.pad(w, widths, mode="circular" if periodic else "constant")


def prolong(t: Transfer, coarse: Tensor) -> Tensor:
    """``P e``: coarse ``(B, C, m, m)`` to fine ``(B, C, n, n)``."""
    m = t.m
    e = t.centre.shape[-1]
    cp = pad(coarse, t.periodic)
    fine = coarse.new_empty(*coarse.shape[:2], t.size, t.size)
    fine[..., 1::2, 1::2] = coarse
    wj, wi, wc = t.along_j, t.along_i, t.centre
    rows = cp[..., 1 : m + 1, :]
    fine[..., 1::2, 0::2] = wj[:, 0:1] * rows[..., 0:e] + wj[:, 1:2] * rows[..., 1 : e + 1]
    cols = cp[..., :, 1 : m + 1]
    fine[..., 0::2, 1::2] = wi[:, 0:1] * cols[..., 0:e, :] + wi[:, 1:2] * cols[..., 1 : e + 1, :]
    fine[..., 0::2, 0::2] = (
        wc[:, 0:1] * cp[..., 0:e, 0:e]
        + wc[:, 1:2] * cp[..., 0:e, 1 : e + 1]
        + wc[:, 2:3] * cp[..., 1 : e + 1, 0:e]
        + wc[:, 3:4] * cp[..., 1 : e + 1, 1 : e + 1]
    )
    return fine[..., : t.n, : t.n]


def restrict(t: Transfer, fine: Tensor) -> Tensor:
    """``R r = P^T r``: fine ``(B, C, n, n)`` to coarse ``(B, C, m, m)``."""
    m = t.m
    e = t.centre.shape[-1]
    r = F.pad(fine, t.embedding())
    acc = fine.new_zeros(*fine.shape[:2], m + 2, m + 2)
    acc[..., 1 : m + 1, 1 : m + 1] += r[..., 1::2, 1::2]
    wj, wi, wc = t.along_j, t.along_i, t.centre
    rx = r[..., 1::2, 0::2]
    acc[..., 1 : m + 1, 0:e] += wj[:, 0:1] * rx
    acc[..., 1 : m + 1, 1 : e + 1] += wj[:, 1:2] * rx
    ry = r[..., 0::2, 1::2]
    acc[..., 0:e, 1 : m + 1] += wi[:, 0:1] * ry
    acc[..., 1 : e + 1, 1 : m + 1] += wi[:, 1:2] * ry
    rc = r[..., 0::2, 0::2]
    acc[..., 0:e, 0:e] += wc[:, 0:1] * rc
    acc[..., 0:e, 1 : e + 1] += wc[:, 1:2] * rc
    acc[..., 1 : e + 1, 0:e] += wc[:, 2:3] * rc
    acc[..., 1 : e + 1, 1 : e + 1] += wc[:, 3:4] * rc
    if t.periodic:
        acc[..., :, m] += acc[..., :, 0]
        acc[..., :, 1] += acc[..., :, m + 1]
        acc[..., m, :] += acc[..., 0, :]
        acc[..., 1, :] += acc[..., m + 1, :]
    return acc[..., 1 : m + 1, 1 : m + 1]


def _columns(t: Transfer) -> dict[tuple[int, int], Tensor]:
    """The entries of column ``I`` of ``P``: ``P[2I + 1 + a, I]`` for ``a`` in the 3 x 3 box.

    Returned as ``(B, m, m)`` arrays indexed by the coarse node ``I``, except
    ``a = (0, 0)`` (the coarse node itself, weight one), which is left out.
    """
    m = t.m
    wj, wi, wc = t.along_j, t.along_i, t.centre
    if t.periodic:  # the edge / centre arrays have m entries per wrapped dim; repeat the first
        wj = F.pad(wj, (0, 1, 0, 0), mode="circular")
        wi = F.pad(wi, (0, 0, 0, 1), mode="circular")
        wc = F.pad(wc, (0, 1, 0, 1), mode="circular")
    lo, hi = slice(0, m), slice(1, m + 1)
    return {
        (0, -1): wj[:, 1, :, lo],  # fine node west of I: I is its east neighbour
        (0, 1): wj[:, 0, :, hi],
        (-1, 0): wi[:, 1, lo, :],
        (1, 0): wi[:, 0, hi, :],
        (-1, -1): wc[:, 3, lo, lo],  # cell centre north-west of I: I is its south-east corner
        (-1, 1): wc[:, 2, lo, hi],
        (1, -1): wc[:, 1, hi, lo],
        (1, 1): wc[:, 0, hi, hi],
    }


def galerkin(stencil: Tensor, t: Transfer) -> Tensor:
    """Coarse 9-point stencil of ``A_c = R A P`` (``R = P^T``), shape ``(B, 9, m, m)``.

    With ``x = 2I + 1 + a`` the fine nodes of column ``I`` of ``P`` and
    ``y = x + s`` their stencil neighbours, ``y = 2(I + d) + 1 + b``, so

    ``A_c(I, I + d) = sum_b P(2(I + d) + 1 + b, I + d) G_{b + 2d}(I)``, with
    ``G_t(I) = sum_{a + s = t} P(2I + 1 + a, I) A(2I + 1 + a, s)``,

    all on coarse-sized arrays (``a, b, d`` in the 3 x 3 box, ``s`` over the
    stencil's offsets). Entries to nodes outside a Dirichlet grid vanish.
    """
    m = t.m
    cols = _columns(t)
    # Fine stencil padded by one node (zero or wrapped): fine node 2I + 1 + a sits at 2I + 2 + a
    # (the decoupled node past an even grid reads the zero padding; its weight is zero anyway).
    padded = pad(stencil, t.periodic)
    g: dict[tuple[int, int], Tensor] = {}
    for ai in (-1, 0, 1):
        for aj in (-1, 0, 1):
            ri, rj = 2 + ai, 2 + aj
            block = padded[..., ri : ri + 2 * m - 1 : 2, rj : rj + 2 * m - 1 : 2]
            weight = cols.get((ai, aj))
            terms = block.clone() if weight is None else weight.unsqueeze(1) * block
            for k, (si, sj) in enumerate(offsets(stencil)):
                key = (ai + si, aj + sj)
                g[key] = terms[:, k] if key not in g else g[key].add_(terms[:, k])
    cols[0, 0] = torch.ones_like(g[0, 0])
    # Padded by one coarse node, so that shifting by d is a slice (zero past a Dirichlet edge).
    shifted = {b: pad(w.unsqueeze(1), t.periodic).squeeze(1) for b, w in cols.items()}
    coarse = stencil.new_zeros(stencil.shape[0], 9, m, m)
    for k, (di, dj) in enumerate(OFFSETS9):
        for bi in (-1, 0, 1):
            for bj in (-1, 0, 1):
                key = (bi + 2 * di, bj + 2 * dj)
                if key not in g:
                    continue
                column = shifted[bi, bj][:, 1 + di : 1 + di + m, 1 + dj : 1 + dj + m]
                coarse[:, k].addcmul_(column, g[key])
    return coarse
