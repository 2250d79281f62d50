"""HDF5Dataset: windows, channel order, normalisation, workers and clear errors.

The synthetic file of :func:`write_active_matter_like` is built with h5py
directly from The Well's published specification
(https://polymathic-ai.org/the_well/data_format/) and the ``active_matter``
field list (t0 ``concentration``; t1 ``velocity``; t2 ``D``, ``E``: 11
channels), not with irsolve's writer, so it checks the reader against the
specification rather than against itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from irsolve.data.dataset import HDF5Dataset
from irsolve.data.well_format import WellDatasetWriter

N_TRAJ, N_T, H, W = 2, 6, 4, 5

ACTIVE_MATTER_CHANNELS = [
    "concentration",
    "velocity_x",
    "velocity_y",
    "D_xx",
    "D_xy",
    "D_yx",
    "D_yy",
    "E_xx",
    "E_xy",
    "E_yx",
    "E_yy",
]


def write_active_matter_like(path: Path) -> None:
    """Channel ``c`` of trajectory ``b`` at frame ``t`` holds ``1000 b + 100 t + c``.

    A constant t0 field ``mask`` (neither sample- nor time-varying, shape
    ``(H, W)``) is added, which the reader must leave out by default.
    """
    b = np.arange(N_TRAJ)[:, None, None, None, None]
    t = np.arange(N_T)[None, :, None, None, None]
    c = np.arange(11)[None, None, None, None, :]
    value = np.broadcast_to(1000 * b + 100 * t + c, (N_TRAJ, N_T, H, W, 11)).astype(np.float32)
    strings = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs.update(
            dataset_name="active_matter",
            grid_type="cartesian",
            n_spatial_dims=2,
            n_trajectories=N_TRAJ,
            simulation_parameters=np.array(["L", "zeta", "alpha"], dtype=strings),
            L=10.0,
            zeta=1.0,
            alpha=-1.0,
        )
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=strings)
        dims["time"] = np.arange(N_T, dtype=np.float32) * 0.25
        dims["x"] = np.linspace(0, 10, H, dtype=np.float32)
        dims["y"] = np.linspace(0, 10, W, dtype=np.float32)
        f.create_group("boundary_conditions")
        f.create_group("scalars").attrs["field_names"] = np.array([], dtype=strings)
        layout = {
            "t0_fields": [("concentration", value[..., 0]), ("mask", np.ones((H, W)))],
            "t1_fields": [("velocity", value[..., 1:3])],
            "t2_fields": [
                ("D", value[..., 3:7].reshape(N_TRAJ, N_T, H, W, 2, 2)),
                ("E", value[..., 7:11].reshape(N_TRAJ, N_T, H, W, 2, 2)),
            ],
        }
        for group_name, fields in layout.items():
            group = f.create_group(group_name)
            group.attrs["field_names"] = np.array([n for n, _ in fields], dtype=strings)
            for name, data in fields:
                ds = group.create_dataset(name, data=data)
                varying = data.ndim > 2  # "mask" is a constant field: read by nobody by default
                ds.attrs.update(
                    dim_varying=[True, True], sample_varying=varying, time_varying=varying
                )


def test_active_matter_like_file_reads_11_channels_in_the_well_order(tmp_path: Path) -> None:
    path = tmp_path / "active_matter.hdf5"
    write_active_matter_like(path)
    ds = HDF5Dataset(path, n_steps_input=2, n_steps_output=1, normalize=False)
    assert ds.input_channels == ACTIVE_MATTER_CHANNELS
    assert len(ds) == N_TRAJ * (N_T - 3 + 1)
    traj, start = 1, 2
    x, y = ds[traj * (N_T - 2) + start]
    assert x.shape == (2 * 11, H, W) and y.shape == (11, H, W)
    # Time-major (T F): channel i of x is frame start + i // 11, component i % 11.
    expected_x = [1000 * traj + 100 * (start + i // 11) + i % 11 for i in range(22)]
    expected_y = [1000 * traj + 100 * (start + 2) + c for c in range(11)]
    assert x[:, 0, 0].tolist() == expected_x
    assert y[:, -1, -1].tolist() == expected_y


def write_dataset(root: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A toy dataset with 2 train files, 1 valid, 1 test; returns the raw vorticity per split."""
    raw = {}
    with WellDatasetWriter(root, "toy") as writer:
        for split, n_files in (("train", 2), ("valid", 1), ("test", 1)):
            parts = []
            for i in range(n_files):
                w = rng.normal(1.5, 2.0, (N_TRAJ, N_T, H, W)).astype(np.float32)
                v = rng.normal(0.0, 0.5, (N_TRAJ, N_T, H, W, 2)).astype(np.float32)
                writer.write(
                    split,
                    f"toy_{split}_{i:03d}.hdf5",
                    time=np.arange(N_T),
                    coords={"x": np.arange(H) / H, "y": np.arange(W) / W},
                    t0_fields={"w": w},
                    t1_fields={"v": v},
                )
                parts.append(np.concatenate([w[..., None], v], axis=-1))
            raw[split] = np.concatenate(parts)  # (n, T, H, W, 3)
    return raw


def test_round_trip_windows_equal_the_written_frames(tmp_path: Path) -> None:
    raw = write_dataset(tmp_path, np.random.default_rng(0))
    ds = HDF5Dataset(
        tmp_path / "toy", "train", n_steps_input=3, n_steps_output=2, stride=2, normalize=False
    )
    starts = list(range(0, N_T - 5 + 1, 2))
    assert len(ds) == raw["train"].shape[0] * len(starts)
    for index in range(len(ds)):
        traj, k = divmod(index, len(starts))
        frames = np.moveaxis(raw["train"][traj], -1, 1)  # (T, 3, H, W)
        s = starts[k]
        x, y = ds[index]
        np.testing.assert_array_equal(x.numpy(), frames[s : s + 3].reshape(9, H, W))
        np.testing.assert_array_equal(y.numpy(), frames[s + 3 : s + 5].reshape(6, H, W))


def test_every_split_is_normalised_with_the_training_statistics(tmp_path: Path) -> None:
    raw = write_dataset(tmp_path, np.random.default_rng(1))
    stats = yaml.safe_load((tmp_path / "toy" / "stats.yaml").read_text())
    mean = np.array([stats["mean"]["w"], *stats["mean"]["v"]])
    std = np.array([stats["std"]["w"], *stats["std"]["v"]])
    train = raw["train"].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mean, train.mean(0), rtol=1e-10)
    for split in ("valid", "test"):
        ds = HDF5Dataset(tmp_path / "toy", split, n_steps_input=1, n_steps_output=1)
        x, _ = ds[0]
        expected = (np.moveaxis(raw[split][0, 0], -1, 0) - mean[:, None, None]) / std[:, None, None]
        np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_dataloader_with_two_workers_yields_the_same_items(tmp_path: Path) -> None:
    write_dataset(tmp_path, np.random.default_rng(2))
    ds = HDF5Dataset(tmp_path / "toy", "train", n_steps_input=2, n_steps_output=1)
    ds[0]  # a handle opened in the parent must not leak into the workers
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    x = torch.cat([batch[0] for batch in loader])
    expected = torch.stack([ds[i][0] for i in range(len(ds))])
    torch.testing.assert_close(x, expected, rtol=0, atol=0)


def test_truncated_file_error_names_the_file(tmp_path: Path) -> None:
    write_dataset(tmp_path, np.random.default_rng(3))
    path = tmp_path / "toy" / "data" / "valid" / "toy_valid_000.hdf5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"toy_valid_000\.hdf5: its SHA-256 differs from"):
        HDF5Dataset(tmp_path / "toy", "valid")
    (tmp_path / "toy" / "SHA256SUMS").unlink()  # no checksums: HDF5's own error, named
    with pytest.raises(ValueError, match=r"toy_valid_000\.hdf5: cannot open as HDF5"):
        HDF5Dataset(tmp_path / "toy", "valid")


def test_a_flipped_byte_in_a_field_is_refused_by_the_checksum(tmp_path: Path, caplog) -> None:
    """HDF5 has no checksum of its data: SHA256SUMS is what finds a changed value."""
    write_dataset(tmp_path, np.random.default_rng(3))
    path = tmp_path / "toy" / "data" / "train" / "toy_train_000.hdf5"
    HDF5Dataset(tmp_path / "toy", "train")  # intact: loads
    HDF5Dataset(path)  # the file alone: checked against its dataset's SHA256SUMS too
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # one bit, near the end of the file
    path.write_bytes(bytes(data))
    for root in (tmp_path / "toy", path):
        with pytest.raises(ValueError, match=r"toy_train_000\.hdf5: its SHA-256 differs"):
            HDF5Dataset(root, "train")
    (tmp_path / "toy" / "SHA256SUMS").unlink()
    with caplog.at_level("WARNING"):
        HDF5Dataset(tmp_path / "toy", "train")  # loads, and says it could not check
    assert "has no SHA256SUMS: its files' integrity cannot be checked" in caplog.text


def test_corrupt_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "noise.hdf5"
    path.write_bytes(np.random.default_rng(4).bytes(4096))
    with pytest.raises(ValueError, match=r"noise\.hdf5: cannot open as HDF5"):
        HDF5Dataset(path, normalize=False)


def test_missing_field_error_names_the_file_and_the_fields_it_has(tmp_path: Path) -> None:
    path = tmp_path / "active_matter.hdf5"
    write_active_matter_like(path)
    with pytest.raises(
        ValueError, match=r"active_matter\.hdf5: expected field\(s\) \['pressure'\]"
    ):
        HDF5Dataset(path, input_fields=["pressure"], normalize=False)


def test_missing_split_and_missing_stats_are_reported(tmp_path: Path) -> None:
    write_dataset(tmp_path, np.random.default_rng(5))
    shutil.rmtree(tmp_path / "toy" / "data" / "test")
    with pytest.raises(FileNotFoundError, match=r"split folder .*test"):
        HDF5Dataset(tmp_path / "toy", "test")
    (tmp_path / "toy" / "stats.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"stats\.yaml"):
        HDF5Dataset(tmp_path / "toy", "train")


def test_work_folder_of_an_unfinished_write_is_not_read_as_a_dataset(tmp_path: Path) -> None:
    write_dataset(tmp_path, np.random.default_rng(5))
    work = tmp_path / ".toy.irsolve-host-1-0123abcd.tmp"
    shutil.copytree(tmp_path / "toy", work)
    with pytest.raises(ValueError, match="work folder of an unfinished"):
        HDF5Dataset(work, "train")


def test_window_longer_than_the_trajectory_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "active_matter.hdf5"
    write_active_matter_like(path)
    with pytest.raises(ValueError, match=r"active_matter\.hdf5: window of 5 input \+ 2 output"):
        HDF5Dataset(path, n_steps_input=5, n_steps_output=2, normalize=False)


@pytest.fixture(scope="module")
def active_matter_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("well") / "active_matter.hdf5"
    write_active_matter_like(path)
    return path


@settings(max_examples=20)
@given(
    n_in=st.integers(1, N_T - 1),
    n_out=st.integers(1, N_T - 1),
    stride=st.integers(1, N_T),
    pick=st.integers(0, 10**6),
)
def test_any_window_shape_indexes_trajectory_then_start(
    active_matter_file: Path, n_in: int, n_out: int, stride: int, pick: int
) -> None:
    assume(n_in + n_out <= N_T)
    ds = HDF5Dataset(
        active_matter_file, n_steps_input=n_in, n_steps_output=n_out, stride=stride, normalize=False
    )
    starts = (N_T - n_in - n_out) // stride + 1
    assert len(ds) == N_TRAJ * starts
    index = pick % len(ds)
    traj, start = divmod(index, starts)
    start *= stride
    x, y = ds[index]
    frames_x = [1000 * traj + 100 * (start + i // 11) + i % 11 for i in range(11 * n_in)]
    first_y = start + n_in
    frames_y = [1000 * traj + 100 * (first_y + i // 11) + i % 11 for i in range(11 * n_out)]
    assert x[:, 1, 2].tolist() == frames_x
    assert y[:, 1, 2].tolist() == frames_y


def test_single_file_of_a_dataset_finds_its_stats_and_matches_the_folder(tmp_path: Path) -> None:
    write_dataset(tmp_path, np.random.default_rng(6))
    folder = HDF5Dataset(tmp_path / "toy", "valid", n_steps_input=2)
    single = HDF5Dataset(
        tmp_path / "toy" / "data" / "valid" / "toy_valid_000.hdf5", n_steps_input=2
    )
    assert len(single) == len(folder)
    for index in (0, len(folder) - 1):
        torch.testing.assert_close(single[index], folder[index], rtol=0, atol=0)
