"""Batched 5- and 9-point stencil algebra on uniform 2-D grids.

A stencil is a tensor ``S`` of shape ``(B, K, n, n)`` with ``K = 5`` or ``K = 9``:
``S[b, k, i, j]`` is the coefficient of ``u[b, i + di_k, j + dj_k]`` in row
``(i, j)`` of the operator, with the offsets ``(di_k, dj_k)`` listed in
:data:`OFFSETS5` / :data:`OFFSETS9`. The grid is either

* Dirichlet: neighbours outside ``0..n-1`` are zero boundary values, so their
  coefficients must be zero; or
* periodic: indices wrap modulo ``n``.

Rows are ordered ``i * n + j`` (C order) when a stencil is turned into a matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor

#: Offsets of the 9-point stencil; index ``k = 3 (di + 1) + (dj + 1)``, centre ``k = 4``.
OFFSETS9: tuple[tuple[int, int], ...] = tuple((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1))
#: Offsets of the 5-point stencil (north, west, centre, east, south); centre ``k = 2``.
OFFSETS5: tuple[tuple[int, int], ...] = ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))


def offsets(stencil: Tensor) -> tuple[tuple[int, int], ...]:
    """The offsets of a ``(B, 5, n, n)`` or ``(B, 9, n, n)`` stencil."""
    if stencil.dim() != 4 or stencil.shape[1] not in (5, 9):
        raise ValueError(
            f"expected a stencil of shape (B, 5, n, n) or (B, 9, n, n), got {tuple(stencil.shape)}"
        )
    return OFFSETS9 if stencil.shape[1] == 9 else OFFSETS5


def centre_index(stencil: Tensor) -> int:
    """Channel of the centre (diagonal) coefficient."""
    return 4 if stencil.shape[1] == 9 else 2


def pad(u: Tensor, periodic: bool) -> Tensor:
    """Pad the two trailing dims by one node: zeros (Dirichlet) or wrap-around (periodic)."""
    return F.pad(u, (1, 1, 1, 1), mode="circular" if periodic else "constant")


def apply_stencil(stencil: Tensor, u: Tensor, periodic: bool) -> Tensor:
    """``A u`` for a batched stencil: ``(A u)_ij = sum_k S_k,ij u_{i+di_k, j+dj_k}``.

    ``u`` has shape ``(B, C, n, n)``; every channel is multiplied by the same
    operator (``S`` broadcasts over channels).
    """
    n0, n1 = u.shape[-2:]
    up = pad(u, periodic)
    out = None
    for k, (di, dj) in enumerate(offsets(stencil)):
        shifted = up[..., 1 + di : 1 + di + n0, 1 + dj : 1 + dj + n1]
        if out is None:
            out = stencil[:, k : k + 1] * shifted
        else:
            out.addcmul_(stencil[:, k : k + 1], shifted)
    return out


def _row_col(n: int, di: int, dj: int, periodic: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat row indices, column indices and the mask of entries inside the grid."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ii, jj = i + di, j + dj
    if periodic:
        inside = np.ones_like(i, dtype=bool)
        ii, jj = ii % n, jj % n
    else:
        inside = (ii >= 0) & (ii < n) & (jj >= 0) & (jj < n)
    return (i * n + j).ravel(), (ii * n + jj).ravel(), inside.ravel()


def stencil_to_scipy(stencil: Tensor, periodic: bool) -> list[sp.csr_matrix]:
    """One ``scipy.sparse.csr_matrix`` of size ``n^2 x n^2`` per sample (rows in C order).

    Meant for references and tests: it copies the stencil to the host, in
    float64 (complex128 for a complex stencil).
    """
    n = stencil.shape[-1]
    dtype = torch.complex128 if stencil.is_complex() else torch.float64
    values = stencil.detach().to("cpu", dtype).numpy()
    matrices = []
    for sample in values:
        rows, cols, data = [], [], []
        for k, (di, dj) in enumerate(offsets(stencil)):
            r, c, inside = _row_col(n, di, dj, periodic)
            rows.append(r[inside])
            cols.append(c[inside])
            data.append(sample[k].ravel()[inside])
        shape = (n * n, n * n)
        coo = sp.coo_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape
        )
        matrices.append(coo.tocsr())
    return matrices


def stencil_to_dense(stencil: Tensor, periodic: bool) -> Tensor:
    """The operator as a dense batched matrix ``(B, n^2, n^2)`` on the stencil's device.

    Used for the direct solve on the coarsest multigrid level; entries that
    wrap onto the same column (periodic grids with ``n < 3``) are summed.
    """
    b, _, n, _ = stencil.shape
    dense = stencil.new_zeros(b, n * n, n * n)
    for k, (di, dj) in enumerate(offsets(stencil)):
        r, c, inside = _row_col(n, di, dj, periodic)
        rows = torch.as_tensor(r[inside], device=stencil.device)
        cols = torch.as_tensor(c[inside], device=stencil.device)
        values = stencil[:, k].reshape(b, -1)[:, torch.as_tensor(inside, device=stencil.device)]
        batch = torch.arange(b, device=stencil.device)[:, None].expand_as(values)
        dense.index_put_((batch, rows.expand_as(values), cols.expand_as(values)), values, True)
    return dense
