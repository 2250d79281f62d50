"""Batched stencil algebra on uniform 2-D and 3-D grids, one code for both.

A stencil is a tensor ``S`` of shape ``(B, K, n, ..., n)`` over ``d = 2`` or ``3``
grid dimensions, with ``K = 2d + 1`` (the star: 5 or 7 points) or ``K = 3^d``
(the box: 9 or 27 points): ``S[b, k, i]`` is the coefficient of
``u[b, i + o_k]`` in row ``i`` of the operator, with the offsets ``o_k`` of
:func:`stencil_offsets`, in lexicographic order (so the centre is ``k = K // 2``;
in 2-D :data:`OFFSETS5` / :data:`OFFSETS9`). The grid is either

* Dirichlet: neighbours outside ``0..n-1`` are zero boundary values, so their
  coefficients must be zero; or
* periodic: indices wrap modulo ``n``.

Rows are ordered in C order (``i * n + j`` in 2-D, ``(i * n + j) * n + l`` in 3-D)
when a stencil is turned into a matrix.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor

#: Grid dimensions a stencil may have.
DIMENSIONS = (2, 3)


@cache
def stencil_offsets(dim: int, points: int) -> tuple[tuple[int, ...], ...]:
    """The offsets of the ``points``-point stencil in ``dim`` dimensions, lexicographic:
    the box ``{-1, 0, 1}^dim`` (``points = 3^dim``) or its star, the centre and the
    ``2 dim`` neighbours along the axes (``points = 2 dim + 1``)."""
    box = tuple(itertools.product((-1, 0, 1), repeat=dim))
    if points == len(box):
        return box
    if points == 2 * dim + 1:
        return tuple(o for o in box if sum(map(abs, o)) <= 1)
    raise ValueError(f"expected {2 * dim + 1} or {3**dim} stencil points in {dim}-D, got {points}")


#: Offsets of the 9-point stencil; index ``k = 3 (di + 1) + (dj + 1)``, centre ``k = 4``.
OFFSETS9: tuple[tuple[int, ...], ...] = stencil_offsets(2, 9)
#: Offsets of the 5-point stencil (north, west, centre, east, south); centre ``k = 2``.
OFFSETS5: tuple[tuple[int, ...], ...] = stencil_offsets(2, 5)


def stencil_dim(stencil: Tensor) -> int:
    """Grid dimensions of a ``(B, K, n, ..., n)`` stencil (2 or 3), checked with ``K``."""
    dim = stencil.dim() - 2
    if dim not in DIMENSIONS or stencil.shape[1] not in (2 * dim + 1, 3**dim):
        raise ValueError(
            "expected a stencil of shape (B, 5 or 9, n, n) or (B, 7 or 27, n, n, n), got "
            f"{tuple(stencil.shape)}"
        )
    return dim


def offsets(stencil: Tensor) -> tuple[tuple[int, ...], ...]:
    """The offsets of a stencil (see :func:`stencil_offsets`)."""
    return stencil_offsets(stencil_dim(stencil), stencil.shape[1])


def centre_index(stencil: Tensor) -> int:
    """Channel of the centre (diagonal) coefficient: the middle of the lexicographic order."""
    return stencil.shape[1] // 2


def pad(u: Tensor, periodic: bool, dim: int = 2) -> Tensor:
    """Pad the ``dim`` trailing dims by one node: zeros (Dirichlet) or wrap-around (periodic)."""
    return F.pad(u, (1, 1) * dim, mode="circular" if periodic else "constant")


def apply_stencil(stencil: Tensor, u: Tensor, periodic: bool) -> Tensor:
    """``A u`` for a batched stencil: ``(A u)_i = sum_k S_k,i u_{i + o_k}``.

    ``u`` has shape ``(B, C, n, ..., n)``; every channel is multiplied by the same
    operator (``S`` broadcasts over channels).
    """
    dim = stencil_dim(stencil)
    sizes = u.shape[-dim:]
    up = pad(u, periodic, dim)
    out = None
    for k, offset in enumerate(offsets(stencil)):
        window = tuple(slice(1 + o, 1 + o + size) for o, size in zip(offset, sizes, strict=True))
        shifted = up[(..., *window)]
        if out is None:
            out = stencil[:, k : k + 1] * shifted
        else:
            out.addcmul_(stencil[:, k : k + 1], shifted)
    return out


def _row_col(
    n: int, offset: tuple[int, ...], periodic: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat row indices, column indices and the mask of entries inside the grid."""
    index = np.indices((n,) * len(offset))
    moved = index + np.asarray(offset).reshape(-1, *[1] * len(offset))
    if periodic:
        inside = np.ones(index.shape[1:], dtype=bool)
        moved = moved % n
    else:
        inside = ((moved >= 0) & (moved < n)).all(axis=0)
    shape = (n,) * len(offset)
    rows = np.ravel_multi_index(tuple(index), shape).ravel()
    cols = np.ravel_multi_index(tuple(np.clip(moved, 0, n - 1)), shape).ravel()
    return rows, cols, inside.ravel()


def stencil_to_scipy(stencil: Tensor, periodic: bool) -> list[sp.csr_matrix]:
    """One ``scipy.sparse.csr_matrix`` of size ``n^d x n^d`` per sample (rows in C order).

    Meant for references and tests: it copies the stencil to the host, in
    float64 (complex128 for a complex stencil).
    """
    size = stencil.shape[-1] ** stencil_dim(stencil)
    n = stencil.shape[-1]
    dtype = torch.complex128 if stencil.is_complex() else torch.float64
    values = stencil.detach().to("cpu", dtype).numpy()
    matrices = []
    for sample in values:
        rows, cols, data = [], [], []
        for k, offset in enumerate(offsets(stencil)):
            r, c, inside = _row_col(n, offset, periodic)
            rows.append(r[inside])
            cols.append(c[inside])
            data.append(sample[k].ravel()[inside])
        coo = sp.coo_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), (size, size)
        )
        matrices.append(coo.tocsr())
    return matrices


def stencil_from_scipy(
    matrices: list[sp.spmatrix], n: int, dim: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """The ``3^dim``-point Dirichlet stencil ``(B, 3^dim, n, ..., n)`` of matrices whose
    entries couple only grid neighbours (a Galerkin product of stencil operators): the
    inverse of :func:`stencil_to_scipy`. Entries outside the box are not represented."""
    points = stencil_offsets(dim, 3**dim)
    host = torch.complex128 if dtype.is_complex else torch.float64
    stencil = torch.zeros(len(matrices), len(points), *[n] * dim, dtype=host)
    for b, matrix in enumerate(matrices):
        csr = matrix.tocsr()
        for k, offset in enumerate(points):
            rows, cols, inside = _row_col(n, offset, False)
            values = np.zeros(rows.shape, dtype=complex if dtype.is_complex else float)
            values[inside] = np.asarray(csr[rows[inside], cols[inside]]).ravel()
            stencil[b, k] = torch.from_numpy(values.reshape((n,) * dim))
    return stencil.to(dtype=dtype, device=device)


def stencil_to_dense(stencil: Tensor, periodic: bool) -> Tensor:
    """The operator as a dense batched matrix ``(B, n^d, n^d)`` on the stencil's device.

    Used for the direct solve on the coarsest multigrid level; entries that
    wrap onto the same column (periodic grids with ``n < 3``) are summed.
    """
    b, n, dim = stencil.shape[0], stencil.shape[-1], stencil_dim(stencil)
    dense = stencil.new_zeros(b, n**dim, n**dim)
    for k, offset in enumerate(offsets(stencil)):
        r, c, inside = _row_col(n, offset, periodic)
        rows = torch.as_tensor(r[inside], device=stencil.device)
        cols = torch.as_tensor(c[inside], device=stencil.device)
        values = stencil[:, k].reshape(b, -1)[:, torch.as_tensor(inside, device=stencil.device)]
        batch = torch.arange(b, device=stencil.device)[:, None].expand_as(values)
        dense.index_put_((batch, rows.expand_as(values), cols.expand_as(values)), values, True)
    return dense
