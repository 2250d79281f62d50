"""Whole datasets on disk: simulate, split, write in The Well's layout.

Each ``make_*_dataset`` function writes ``<root>/<name>/data/{train,valid,test}/``
and ``<root>/<name>/stats.yaml`` through
:class:`~irsolve.data.well_format.WellDatasetWriter` (atomic: nothing appears
at the destination until the dataset is complete) and returns the folder.

Randomness is drawn file by file from ``torch.Generator`` seeded with
``SeedSequence([seed, split, file])``, so the same arguments give
bit-identical files and every file's samples are independent of the others.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from irsolve.data.navier_stokes import (
    NavierStokes2D,
    check_time_steps,
    default_forcing,
    random_vorticity,
    velocity_from_vorticity,
)
from irsolve.data.static_problems import darcy_samples, poisson_samples
from irsolve.data.well_format import SPLITS, WellDatasetWriter

__all__ = [
    "TRAJECTORIES_PER_FILE",
    "make_darcy_dataset",
    "make_navier_stokes_dataset",
    "make_poisson_dataset",
    "split_generator",
]

logger = logging.getLogger(__name__)

#: Trajectories simulated together and written to one file, by default.
TRAJECTORIES_PER_FILE = 64

#: The FNO forcing as written to the files' ``forcing`` attribute.
_FORCING_TEXT = "0.1*(sin(2*pi*(x+y)) + cos(2*pi*(x+y)))"


def split_generator(seed: int, split: str, file_index: int) -> torch.Generator:
    """A ``torch.Generator`` for file ``file_index`` of ``split``, from ``SeedSequence``.

    The seed words ``[seed, split index, file_index]`` go through NumPy's
    ``SeedSequence`` hashing, so nearby seeds and files give unrelated streams.
    """
    words = [seed, SPLITS.index(split), file_index]
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _check_int(argument: str, value: object, low: int) -> None:
    """Raise ``ValueError`` naming ``argument`` unless ``value`` is an int ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"expected {argument} to be an int >= {low}, got {value!r}")


def _check_float(argument: str, value: object, *, positive: bool) -> None:
    """Raise ``ValueError`` naming ``argument`` unless ``value`` is finite, ``> 0`` or ``>= 0``."""
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"expected {argument} to be a finite number {bound}, got {value!r}")


def _file_chunks(counts: dict[str, int], per_file: int) -> Iterator[tuple[str, int, int]]:
    """``(split, file_index, n_traj)`` for every file, ``per_file`` trajectories at most."""
    if per_file < 1:
        raise ValueError(f"expected trajectories_per_file >= 1, got {per_file}")
    for split, count in counts.items():
        if count < 0:
            raise ValueError(f"expected a non-negative number of {split} samples, got {count}")
        for file_index, start in enumerate(range(0, count, per_file)):
            yield split, file_index, min(per_file, count - start)


def make_navier_stokes_dataset(
    root: str | os.PathLike[str],
    n_train: int,
    n_valid: int,
    n_test: int,
    *,
    resolution: int = 64,
    n_steps: int = 10,
    record_dt: float = 1.0,
    viscosity: float = 1e-3,
    burn_in: float = 0.0,
    seed: int = 0,
    name: str = "navier_stokes",
    velocity: bool = False,
    trajectories_per_file: int = TRAJECTORIES_PER_FILE,
    overwrite: bool = False,
    progress: bool = False,
    device: torch.device | str | None = None,
) -> Path:
    """Simulate forced 2-D Navier–Stokes trajectories and write them as a Well dataset.

    Each trajectory starts from :func:`~irsolve.data.navier_stokes.random_vorticity`
    (FNO's ``N(0, 7^3 (-Δ + 49)^-2.5)``) and is integrated by
    :class:`~irsolve.data.navier_stokes.NavierStokes2D` with the FNO forcing;
    ``n_steps`` frames ``record_dt`` apart are stored (frame 0 at time
    ``burn_in``) as the t0 field ``vorticity``, plus the t1 field ``velocity``
    when ``velocity=True``.

    Parameters
    ----------
    root
        Parent folder (created if missing); the dataset goes to
        ``<root>/<name>`` and nothing outside ``root`` is written or deleted.
    n_train, n_valid, n_test
        Trajectories per split (``n_train >= 1``; stats come from train).
    resolution
        Grid points per side (even, ``>= 4``).
    n_steps, record_dt
        Frames per trajectory (``>= 1``) and time between them (``> 0``);
        with ``burn_in`` at most
        :data:`~irsolve.data.navier_stokes.MAX_TIME_STEPS` steps of
        ``max_dt`` (checked before anything is simulated or written).
    viscosity
        Kinematic viscosity (FNO: 1e-3, 1e-4).
    burn_in
        Time simulated before frame 0 and not stored (lets the forcing shape
        the flow before recording; 0 records from the random initial state).
    seed
        Seed of every random draw (``>= 0``).
    name
        Dataset folder name and ``@dataset_name``: one plain, visible folder
        name (no ``/``, not ``.`` or ``..``, no leading ``.``).
    velocity
        Also store the velocity ``(u_x, u_y)`` as a t1 field.
    trajectories_per_file
        Trajectories simulated together and written to one file.
    overwrite
        Replace an existing dataset ``<root>/<name>``. The new one is built
        under a hidden name and swapped in by renames
        (:func:`~irsolve.data.atomic_folder.publish`), so a run killed at any
        point leaves the complete old or new dataset; anything there that is
        not a dataset folder is kept and is an error.
    progress
        Show a ``tqdm`` progress bar over trajectories.
    device
        Where to simulate (e.g. ``"cuda"``); initial conditions are always
        drawn on the CPU, so a seed gives the same initial states everywhere.

    Returns
    -------
    Path
        ``<root>/<name>``.

    Raises
    ------
    ValueError
        For an argument out of range (the message names it) or a bad ``name``.
    FileExistsError
        If ``<root>/<name>`` exists and ``overwrite`` is false, or it is not
        a dataset folder.
    NotADirectoryError
        If ``root`` is an existing file.
    """
    if n_train < 1:
        raise ValueError(f"expected n_train >= 1 (statistics come from train), got {n_train}")
    _check_int("n_steps", n_steps, 1)
    _check_float("record_dt", record_dt, positive=True)
    _check_float("burn_in", burn_in, positive=False)
    solver = NavierStokes2D(resolution, viscosity, default_forcing(resolution))
    check_time_steps(
        solver,
        (n_steps - 1) * record_dt + burn_in,
        min(n_train + n_valid + n_test, trajectories_per_file),
        "record_dt x (n_steps - 1) + burn_in",
    )
    coords = np.arange(resolution) / resolution
    time = burn_in + np.arange(n_steps) * record_dt

    def simulate(n_traj: int, generator: torch.Generator) -> dict[str, dict[str, np.ndarray]]:
        w0 = random_vorticity(n_traj, resolution, generator=generator).to(device)
        if burn_in > 0:
            w0 = solver.simulate(w0, 2, burn_in)[:, -1]
        w = solver.simulate(w0, n_steps, record_dt).cpu()
        fields = {"t0_fields": {"vorticity": w.float().numpy()}}
        if velocity:
            fields["t1_fields"] = {"velocity": velocity_from_vorticity(w).float().numpy()}
        return fields

    return _write_dataset(
        root,
        name,
        {"train": n_train, "valid": n_valid, "test": n_test},
        simulate,
        seed=seed,
        per_file=trajectories_per_file,
        overwrite=overwrite,
        progress=progress,
        time=time,
        coords={"x": coords, "y": coords},
        parameters={"viscosity": viscosity, "record_dt": record_dt, "burn_in": burn_in},
        boundary={"x": "periodic", "y": "periodic"},
        extra_attrs={"forcing": _FORCING_TEXT},
    )


def make_darcy_dataset(
    root: str | os.PathLike[str],
    n_train: int,
    n_valid: int,
    n_test: int,
    *,
    resolution: int = 63,
    seed: int = 0,
    name: str = "darcy",
    trajectories_per_file: int = TRAJECTORIES_PER_FILE,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """FNO Darcy pairs (:func:`~irsolve.data.static_problems.darcy_samples`) as a Well dataset.

    Each sample is stored as one frame (``T = 1``) of the t0 fields ``a``
    (coefficient) and ``u`` (solution, relative residual <= 1e-10), with root
    attributes ``input_fields = ["a"]``, ``output_fields = ["u"]`` that
    :class:`~irsolve.data.dataset.HDF5Dataset` reads. Fields are float64 (The
    Well uses float32) so that the stored ``u`` still satisfies the discrete
    PDE: float32 rounding alone would leave a relative residual of about
    ``cond(A) * 6e-8``. Grid: the ``resolution x resolution`` interior nodes
    ``(i + 1) / (resolution + 1)``; ``2^k - 1`` suits multigrid best.
    Other parameters as in :func:`make_navier_stokes_dataset`.
    """

    def sample(n_traj: int, generator: torch.Generator) -> dict[str, dict[str, np.ndarray]]:
        a, u = darcy_samples(n_traj, resolution, generator=generator)
        return {"t0_fields": {"a": a.numpy(), "u": u.numpy()}}

    return _write_static(
        root,
        name,
        (n_train, n_valid, n_test),
        sample,
        ("a", "u"),
        resolution,
        seed,
        trajectories_per_file,
        overwrite,
        progress,
        parameters={"forcing": 1.0, "high": 12.0, "low": 3.0},
    )


def make_poisson_dataset(
    root: str | os.PathLike[str],
    n_train: int,
    n_valid: int,
    n_test: int,
    *,
    resolution: int = 63,
    seed: int = 0,
    name: str = "poisson",
    trajectories_per_file: int = TRAJECTORIES_PER_FILE,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Poisson pairs (:func:`~irsolve.data.static_problems.poisson_samples`) as a Well dataset.

    Stored like :func:`make_darcy_dataset`, with fields ``f`` (input) and ``u``.
    """

    def sample(n_traj: int, generator: torch.Generator) -> dict[str, dict[str, np.ndarray]]:
        f, u = poisson_samples(n_traj, resolution, generator=generator)
        return {"t0_fields": {"f": f.numpy(), "u": u.numpy()}}

    return _write_static(
        root,
        name,
        (n_train, n_valid, n_test),
        sample,
        ("f", "u"),
        resolution,
        seed,
        trajectories_per_file,
        overwrite,
        progress,
        parameters={},
    )


def _write_static(
    root: str | os.PathLike[str],
    name: str,
    counts: tuple[int, int, int],
    sample: Callable[[int, torch.Generator], dict[str, dict[str, np.ndarray]]],
    io_fields: tuple[str, str],
    resolution: int,
    seed: int,
    per_file: int,
    overwrite: bool,
    progress: bool,
    parameters: dict[str, float],
) -> Path:
    """Write a static (one frame per sample) dataset on the Dirichlet interior grid."""
    if counts[0] < 1:
        raise ValueError(f"expected n_train >= 1 (statistics come from train), got {counts[0]}")
    _check_int("resolution", resolution, 1)
    coords = (np.arange(resolution) + 1.0) / (resolution + 1.0)
    return _write_dataset(
        root,
        name,
        dict(zip(SPLITS, counts, strict=True)),
        sample,
        seed=seed,
        per_file=per_file,
        overwrite=overwrite,
        progress=progress,
        time=np.zeros(1),
        coords={"x": coords, "y": coords},
        parameters=parameters,
        boundary={"x": "wall", "y": "wall"},
        extra_attrs={"input_fields": [io_fields[0]], "output_fields": [io_fields[1]]},
        dtype=np.float64,
    )


def _write_dataset(
    root: str | os.PathLike[str],
    name: str,
    counts: dict[str, int],
    sample: Callable[[int, torch.Generator], dict[str, dict[str, np.ndarray]]],
    *,
    seed: int,
    per_file: int,
    overwrite: bool,
    progress: bool,
    **file_content: object,
) -> Path:
    """Drive ``sample(n_traj, generator)`` file by file and write every split."""
    _check_int("seed", seed, 0)
    total = sum(counts.values())
    with (
        WellDatasetWriter(root, name, overwrite=overwrite) as writer,
        tqdm(total=total, desc=name, unit="traj", disable=not progress) as bar,
    ):
        for split, file_index, n_traj in _file_chunks(counts, per_file):
            fields = sample(n_traj, split_generator(seed, split, file_index))
            filename = f"{name}_{split}_{file_index:03d}.hdf5"
            writer.write(split, filename, **fields, **file_content)
            logger.info("wrote %s/%s (%d trajectories)", split, filename, n_traj)
            bar.update(n_traj)
    return writer.destination
