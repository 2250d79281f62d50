"""Small data files in each layout irsolve reads, written by the tests of tests/data."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

N, H = 12, 8


def arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """neuraloperator-style pairs: a bool mask ``x`` and a float64 ``y``, each ``(N, H, H)``."""
    rng = np.random.default_rng(seed)
    return rng.random((N, H, H)) > 0.5, rng.standard_normal((N, H, H))


def write_pt(path, x, y):
    """A neuraloperator ``.pt`` dict ``{"x", "y"}``."""
    torch.save({"x": torch.as_tensor(x), "y": torch.as_tensor(y)}, path)
    return path


def write_pdebench(path, nu, u):
    """PDEBench's 2D Darcy layout: nu (N, H, W), tensor (N, 1, H, W), cell-centre coordinates."""
    n = nu.shape[-1]
    centres = (np.arange(n) + 0.5) / n
    with h5py.File(path, "w") as f:
        f["nu"] = nu.astype(np.float32)
        f["tensor"] = u[:, None].astype(np.float32)
        f["x-coordinate"] = centres
        f["y-coordinate"] = centres
    return path


def write_every_format(folder, x, y):
    """The same pairs in each single-file layout; returns ``{format: path}``."""
    np.savez(folder / "pairs.npz", x=x, y=y)
    np.save(folder / "pairs_x.npy", x)
    np.save(folder / "pairs_y.npy", y)
    return {
        "pt": write_pt(folder / "pairs.pt", x, y),
        "npz": folder / "pairs.npz",
        "npy": folder / "pairs_y.npy",
        "pdebench": write_pdebench(folder / "2D_DarcyFlow_beta0.5_Train.hdf5", x, y),
    }


def one_line_error(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message
