"""Embedded data: PDE generators and a reader for The Well's HDF5 layout.

>>> from irsolve.data import make_navier_stokes_dataset, HDF5Dataset
>>> root = make_navier_stokes_dataset("data", 64, 8, 8, resolution=64)  # doctest: +SKIP
>>> x, y = HDF5Dataset(root, "train", n_steps_input=4)[0]               # doctest: +SKIP
"""

from irsolve.data.dataset import HDF5Dataset
from irsolve.data.generate import (
    make_darcy_dataset,
    make_navier_stokes_dataset,
    make_poisson_dataset,
)
from irsolve.data.navier_stokes import NavierStokes2D, default_forcing, random_vorticity
from irsolve.data.static_problems import darcy_samples, poisson_samples
from irsolve.data.well_format import WellDatasetWriter, compute_stats, write_well_file

__all__ = [
    "HDF5Dataset",
    "NavierStokes2D",
    "WellDatasetWriter",
    "compute_stats",
    "darcy_samples",
    "default_forcing",
    "make_darcy_dataset",
    "make_navier_stokes_dataset",
    "make_poisson_dataset",
    "poisson_samples",
    "random_vorticity",
    "write_well_file",
]
