"""Data: PDE generators, The Well's HDF5 layout, and one entry point for the field's files.

>>> from irsolve.data import make_navier_stokes_dataset, HDF5Dataset, load_dataset
>>> root = make_navier_stokes_dataset("data", 64, 8, 8, resolution=64)  # doctest: +SKIP
>>> x, y = HDF5Dataset(root, "train", n_steps_input=4)[0]               # doctest: +SKIP
>>> train = load_dataset("darcy_train_16.pt", split="train", val_fraction=0.1)  # doctest: +SKIP
>>> problem = darcy_problems("darcy_test_16.pt")  # a Darcy2D batch   # doctest: +SKIP
"""

from irsolve.data.darcy_files import darcy_coefficients, darcy_count, darcy_problems
from irsolve.data.dataset import HDF5Dataset
from irsolve.data.formats import FORMATS, PDEBenchDarcy, detect_format, load_dataset
from irsolve.data.generate import (
    make_darcy_dataset,
    make_navier_stokes_dataset,
    make_poisson_dataset,
)
from irsolve.data.navier_stokes import NavierStokes2D, default_forcing, random_vorticity
from irsolve.data.static_problems import darcy_samples, poisson_samples
from irsolve.data.well_format import WellDatasetWriter, compute_stats, write_well_file

__all__ = [
    "FORMATS",
    "HDF5Dataset",
    "PDEBenchDarcy",
    "NavierStokes2D",
    "WellDatasetWriter",
    "compute_stats",
    "darcy_coefficients",
    "darcy_count",
    "darcy_problems",
    "darcy_samples",
    "default_forcing",
    "detect_format",
    "load_dataset",
    "make_darcy_dataset",
    "make_navier_stokes_dataset",
    "make_poisson_dataset",
    "poisson_samples",
    "random_vorticity",
    "write_well_file",
]
