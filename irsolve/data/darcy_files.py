"""Darcy problems from a data file's coefficient fields: :func:`darcy_problems`.

A file that holds Darcy pairs ``(a, u)`` (neuraloperator's ``darcy_*.pt``,
PDEBench's ``2D_DarcyFlow_beta*.hdf5``, ``.npz``/``.npy`` pairs, a static
Well file or folder written by :func:`~irsolve.data.make_darcy_dataset`)
becomes a batch of :class:`~irsolve.solvers.Darcy2D` problems, which any
solver of :mod:`irsolve.solvers` (multigrid, a Krylov method, a learned
corrector) can solve and compare with the file's own solutions
(``load_dataset(path, split=None)``).

The file's ``H x W`` values are taken as the ``n x n`` interior nodes of
:class:`~irsolve.solvers.Darcy2D` (``h = 1 / (n + 1)``, finite volumes,
harmonic face means). The file's solver used another grid and scheme
(PDEBench: cell centres ``(i + 1/2) / n``; neuraloperator's 16 x 16 files: a
subsample of a finer grid, whose coefficient field the mask only samples), so
expect a gap between the two solutions that depends on the grid.

>>> problem = darcy_problems("darcy_test_16.pt", indices=range(8))   # doctest: +SKIP
>>> sol = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-10)      # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from irsolve.data.dataset import HDF5Dataset
from irsolve.data.formats import (
    PDEBenchDarcy,
    _load_npy_pair,
    _load_npz,
    _load_pt,
    detect_format,
)
from irsolve.solvers import Darcy2D

__all__ = ["FNO_MASK_VALUES", "darcy_coefficients", "darcy_count", "darcy_problems"]

logger = logging.getLogger(__name__)

#: Coefficient where a boolean mask is False / True: Li et al., "Fourier Neural
#: Operator for Parametric Partial Differential Equations" (ICLR 2021), Sec. 5.2:
#: the Gaussian field thresholded to 12 where positive and 3 elsewhere.
FNO_MASK_VALUES = (3.0, 12.0)


def darcy_coefficients(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    indices: Iterable[int] | None = None,
    split: str = "test",
    mask_values: tuple[float, float] = FNO_MASK_VALUES,
) -> Tensor:
    """The coefficient fields ``a`` of a Darcy data file, ``(B, 1, H, W)`` float64.

    Parameters
    ----------
    path
        A data file (or static Well dataset folder) whose inputs are one
        coefficient field per sample.
    format
        Its layout (:data:`~irsolve.data.formats.FORMATS`); ``None`` detects it.
    indices
        Samples to read, ints in ``[0, N)`` (default: all); checked before
        anything is read (a ``range`` without being listed).
    split
        The split of a Well dataset folder.
    mask_values
        ``(a where False, a where True)`` for a boolean coefficient (a mask,
        as in neuraloperator's files).

    Raises
    ------
    TypeError
        For an index that is not an int (``0.5`` would silently read sample 0).
    ValueError
        For inputs that are not one real or boolean field per sample, or an
        index out of range.
    """
    path = Path(path)
    n, read = _coefficient_reader(path, format, split)
    a = read(_indices(indices, n, path))
    if a.dtype == torch.bool:
        low, high = mask_values
        logger.info("%s: boolean coefficient mapped to %g (False) and %g (True)", path, low, high)
        return torch.where(a, float(high), float(low)).to(torch.float64)
    return a.to(torch.float64)


def darcy_count(
    path: str | os.PathLike[str], *, format: str | None = None, split: str = "test"
) -> int:
    """The number of coefficient fields :func:`darcy_coefficients` can read from ``path``.

    Raises
    ------
    ValueError
        If ``path`` holds none, or cannot be read (see :func:`darcy_coefficients`).
    """
    count = _coefficient_reader(Path(path), format, split)[0]
    if count == 0:
        raise ValueError(f"{path}: expected at least one coefficient field, got none")
    return count


def _coefficient_reader(
    path: Path, format: str | None, split: str
) -> tuple[int, Callable[[list[int]], Tensor]]:
    """``(N, read)``: the file's sample count and a function reading chosen coefficient fields."""
    fmt = detect_format(path) if format is None else format
    if fmt == "pdebench":

        def read_pdebench(chosen: list[int]) -> Tensor:
            unique, inverse = np.unique(chosen, return_inverse=True)
            with h5py.File(path, "r") as f:
                values = f["nu"][unique][inverse]  # h5py reads increasing indices only
            return torch.from_numpy(values)[:, None]

        return len(PDEBenchDarcy(path)), read_pdebench
    if fmt == "well":
        data = HDF5Dataset(path, split=split, normalize=False)
        if not data.static or len(data.input_channels) != 1:
            raise ValueError(
                f"{path}: expected a static Well file with one input field (the coefficient), "
                f"got input channels {data.input_channels}"
                + ("" if data.static else " of time-dependent data")
            )
        return len(data), lambda chosen: torch.stack([data[i][0] for i in chosen])
    loader = {"pt": _load_pt, "npz": _load_npz, "npy": _load_npy_pair}.get(fmt)
    if loader is None:
        raise ValueError(f"expected format to be one of well, pt, pdebench, npz, npy, got {fmt!r}")
    content, _ = loader(path)
    if "x" not in content:
        raise ValueError(f"{path}: expected the coefficient under 'x', got keys {sorted(content)}")
    x = torch.as_tensor(content["x"])
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3 or x.is_complex():
        raise ValueError(
            f"{path}: expected one real or bool coefficient field per sample, (N, H, W) or "
            f"(N, 1, H, W), got {x.dtype} {tuple(x.shape)}"
        )
    return len(x), lambda chosen: x[chosen][:, None]


def darcy_problems(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    indices: Iterable[int] | None = None,
    split: str = "test",
    forcing: float | None = None,
    mask_values: tuple[float, float] = FNO_MASK_VALUES,
    dtype: torch.dtype = torch.float64,
) -> Darcy2D:
    """``-div(a grad u) = f``, ``u = 0`` on the boundary, for each coefficient field of a file.

    Parameters
    ----------
    path, format, indices, split, mask_values
        As for :func:`darcy_coefficients`.
    forcing
        Constant right-hand side ``f``; ``None``: PDEBench's ``beta`` from
        the file name (``2D_DarcyFlow_beta0.1_Train.hdf5`` -> 0.1), else 1
        (the FNO data's forcing).
    dtype
        Floating dtype of the problems.

    Returns
    -------
    Darcy2D
        A batch of ``len(indices)`` problems on the file's grid taken as
        interior nodes (see the module docstring for the grids).
    """
    a = darcy_coefficients(
        path, format=format, indices=indices, split=split, mask_values=mask_values
    )
    if forcing is None:
        fmt = detect_format(path) if format is None else format
        beta = PDEBenchDarcy(path).beta if fmt == "pdebench" else None
        forcing = 1.0 if beta is None else beta
    return Darcy2D(a, f=forcing, dtype=dtype)


def _indices(indices: Iterable[int] | None, n: int, path: Path) -> list[int]:
    """``indices`` as a list checked against ``n`` samples (all of them when ``None``)."""
    if isinstance(indices, range) and len(indices) > n:  # refused before it is listed
        raise ValueError(
            f"{path}: expected at most {n} indices in [0, {n}) (the samples it holds), "
            f"got {len(indices)} ({indices})"
        )
    if indices is None:
        chosen = list(range(n))
    else:
        chosen = list(indices)
        wrong = [i for i in chosen if isinstance(i, bool) or not isinstance(i, int | np.integer)]
        if wrong:
            raise TypeError(
                f"{path}: expected indices to be ints, got {wrong[0]!r} ({type(wrong[0]).__name__})"
            )
        chosen = [int(i) for i in chosen]
    bad = [i for i in chosen if not 0 <= i < n]
    if bad or not chosen:
        raise ValueError(
            f"{path}: expected at least one index in [0, {n}), got {bad[:5] or 'none'}"
        )
    return chosen
