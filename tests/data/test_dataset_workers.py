"""HDF5Dataset under DataLoader worker processes: one file handle per process, same batches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import irsolve.data.dataset as dataset_module
from irsolve.data.dataset import HDF5Dataset
from irsolve.data.well_format import WellDatasetWriter
from irsolve.learned.nets import base_operator
from irsolve.learned.training import TrainConfig, seed_everything, train_base

N_TRAJ, N_T, N = 3, 5, 8


def write_toy(root: Path) -> Path:
    """A Well dataset with one training file of a vorticity-like field ``w``."""
    rng = np.random.default_rng(0)
    with WellDatasetWriter(root, "toy") as writer:
        for split in ("train", "valid", "test"):
            writer.write(
                split,
                f"toy_{split}.hdf5",
                time=np.arange(N_T),
                coords={"x": np.arange(N) / N, "y": np.arange(N) / N},
                t0_fields={"w": rng.normal(size=(N_TRAJ, N_T, N, N)).astype(np.float32)},
            )
    return root / "toy"


def test_each_worker_opens_its_own_file_handle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Workers are forked with the parent's open handle in memory; h5py handles are not
    # fork-safe, so each worker must open the file again. _open logs the opening pid.
    root = write_toy(tmp_path)
    ds = HDF5Dataset(root, "train", n_steps_input=2, n_steps_output=1)
    ds[0]  # the parent now holds an open handle
    log = tmp_path / "opened"
    log.mkdir()
    real_open = dataset_module._open

    def logged_open(path: Path):
        (log / f"{os.getpid()}-{len(list(log.iterdir()))}").touch()
        return real_open(path)

    monkeypatch.setattr(dataset_module, "_open", logged_open)
    loader = DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="fork")
    x = torch.cat([batch[0] for batch in loader])
    openers = [int(p.name.split("-")[0]) for p in log.iterdir()]
    assert len(openers) == 2 and len(set(openers)) == 2  # once per worker
    assert os.getpid() not in openers  # the parent's handle was reused, not reopened
    torch.testing.assert_close(x, torch.stack([ds[i][0] for i in range(len(ds))]), rtol=0, atol=0)


def test_training_with_two_loader_workers_is_reproducible(tmp_path: Path) -> None:
    # Workers read in other processes; the order is drawn in the main process from the
    # seeded generator, so one seed gives one history, and the losses are finite.
    root = write_toy(tmp_path)
    train = HDF5Dataset(root, "train", n_steps_input=1, n_steps_output=1)
    histories = []
    for _ in range(2):
        seed_everything(0)
        model = base_operator("fno", 1, 1, n_modes=(2, 2), hidden_channels=4, n_layers=1)
        config = TrainConfig(epochs=2, batch_size=4, device="cpu", progress=False, num_workers=2)
        result = train_base(model, train, None, config)
        histories.append([record["train_loss"] for record in result.history])
    assert histories[0] == histories[1]
    assert all(np.isfinite(histories[0]))
