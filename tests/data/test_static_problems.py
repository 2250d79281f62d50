"""Stored Darcy and Poisson pairs satisfy their discrete PDEs.

References: the problem's own operator (:meth:`Darcy2D.residual`), its sparse
matrix (:meth:`Darcy2D.to_scipy`), and for Poisson an operator built here from
``pyamg.gallery.poisson`` and solved by ``scipy.sparse.linalg.spsolve``, so
that the last check does not rely on irsolve's stencil at all.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pyamg
import pytest
import scipy.sparse.linalg as spla
import torch

from irsolve.data.dataset import HDF5Dataset
from irsolve.data.generate import make_darcy_dataset, make_poisson_dataset
from irsolve.solvers import Darcy2D

N = 15


def read_pair(root: Path, split: str, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The two stored fields of every sample of ``split``, each ``(n, N, N)`` float64."""
    arrays = {name: [] for name in names}
    for path in sorted((root / "data" / split).glob("*.hdf5")):
        with h5py.File(path, "r") as f:
            for name in names:
                assert f["t0_fields"][name].dtype == np.float64
                arrays[name].append(f["t0_fields"][name][:, 0])
    return tuple(np.concatenate(arrays[name]) for name in names)


@pytest.fixture(scope="module")
def darcy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_darcy_dataset(
        tmp_path_factory.mktemp("darcy"), 3, 1, 1, resolution=N, trajectories_per_file=2
    )


def test_stored_darcy_solution_has_relative_residual_below_1e_8(darcy_root: Path) -> None:
    # Solved to 1e-10 and stored in float64: 1e-8 leaves two digits of margin.
    a, u = read_pair(darcy_root, "train", ("a", "u"))
    assert set(np.unique(a)) == {3.0, 12.0}
    problem = Darcy2D(torch.from_numpy(a)[:, None])
    residual = problem.residual(torch.from_numpy(u)[:, None])
    relative = residual.flatten(1).norm(dim=1) / problem.f.flatten(1).norm(dim=1)
    assert (relative < 1e-8).all(), relative
    f = np.ones(N * N)
    for matrix, sample in zip(problem.to_scipy(), u, strict=True):
        assert np.linalg.norm(f - matrix @ sample.ravel()) / np.linalg.norm(f) < 1e-8


def test_stored_poisson_solution_matches_an_independent_sparse_solve(tmp_path: Path) -> None:
    # -Δ_h = pyamg.gallery.poisson((N, N)) / h^2, h = 1/(N+1) (Briggs et al., Ch. 1);
    # the stored u must equal spsolve's to 1e-8 relative (cond ~ 1e2, rtol 1e-10).
    root = make_poisson_dataset(tmp_path, 2, 1, 1, resolution=N)
    f, u = read_pair(root, "train", ("f", "u"))
    matrix = (pyamg.gallery.poisson((N, N), format="csc") * (N + 1) ** 2).tocsc()
    for rhs, sample in zip(f, u, strict=True):
        reference = spla.spsolve(matrix, rhs.ravel())
        assert np.abs(sample.ravel() - reference).max() < 1e-8 * np.abs(reference).max()


def test_static_dataset_items_are_coefficient_to_solution_pairs(darcy_root: Path) -> None:
    a, u = read_pair(darcy_root, "valid", ("a", "u"))
    ds = HDF5Dataset(darcy_root, "valid", normalize=False)
    assert ds.static and len(ds) == 1
    assert ds.input_channels == ["a"] and ds.output_channels == ["u"]
    x, y = ds[0]
    np.testing.assert_allclose(x[0].numpy(), a[0], rtol=1e-7)
    np.testing.assert_allclose(y[0].numpy(), u[0], rtol=1e-6)
