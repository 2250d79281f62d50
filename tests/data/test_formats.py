"""irsolve.data.formats: every accepted layout, one-line errors, and seeded disjoint splits.

The reference for each reader is the array the test wrote.
"""

from __future__ import annotations

import pickle
import re

import h5py
import numpy as np
import pytest
import torch
from own_files import (
    H,
    N,
    arrays,
    one_line_error,
    write_every_format,
    write_pdebench,
    write_pt,
)

from irsolve.data import (
    WellDatasetWriter,
    detect_format,
    load_dataset,
)
from irsolve.data.formats import PDEBenchDarcy, split_indices


@pytest.mark.parametrize("fmt", ["pt", "npz", "npy", "pdebench"])
def test_each_format_gives_the_written_pairs_as_float32_with_one_channel(tmp_path, fmt):
    x, y = arrays()
    path = write_every_format(tmp_path, x, y)[fmt]
    assert detect_format(path) == fmt
    data = load_dataset(path, split="train")
    assert len(data) == N
    for i in (0, N - 1):
        xi, yi = data[i]
        assert xi.dtype == yi.dtype == torch.float32
        assert xi.shape == yi.shape == (1, H, H)
        # bool -> {0, 1} exactly; float64 -> float32 rounding only (relative 2^-24)
        np.testing.assert_array_equal(xi[0].numpy(), x[i].astype(np.float32))
        np.testing.assert_array_equal(yi[0].numpy(), y[i].astype(np.float32))


def test_pt_with_channels_keeps_them(tmp_path):
    x = torch.randn(N, 2, H, H, dtype=torch.float64)
    y = torch.randint(0, 5, (N, 3, H, H))
    data = load_dataset(write_pt(tmp_path / "c.pt", x, y), split="train")
    xi, yi = data[3]
    assert xi.shape == (2, H, H) and yi.shape == (3, H, H)
    torch.testing.assert_close(yi, y[3].float(), rtol=0, atol=0)


def test_format_override_reads_a_file_of_another_suffix(tmp_path):
    x, y = arrays()
    path = write_pt(tmp_path / "pairs.bin", x, y)
    with pytest.raises(ValueError, match="suffix '.bin'"):
        load_dataset(path)
    assert len(load_dataset(path, format="pt")) == N


def test_unknown_pt_layout_is_one_line_naming_keys_shapes_and_layouts(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"a": torch.zeros(4, 8, 8), "u": torch.zeros(4, 8, 8)}, path)
    message = one_line_error(lambda: load_dataset(path))
    assert "'a' (4, 8, 8)" in message and "'u' (4, 8, 8)" in message
    assert "accepted:" in message and "PDEBench" in message and "The Well" in message


def test_unknown_hdf5_layout_is_one_line_naming_keys_and_shapes(tmp_path):
    path = tmp_path / "odd.hdf5"
    with h5py.File(path, "w") as f:
        f["coeff"] = np.zeros((3, 8, 8))
        f.create_group("meta")
    message = one_line_error(lambda: load_dataset(path))
    assert "'coeff' (3, 8, 8)" in message and "'meta' (group)" in message and "accepted:" in message


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (torch.zeros(4, 8, 8, dtype=torch.complex64), torch.zeros(4, 8, 8), "real or bool dtype"),
        (torch.zeros(4, 8), torch.zeros(4, 8), r"\(N, H, W\) or \(N, C, H, W\), got \(4, 8\)"),
        (torch.zeros(4, 8, 8), torch.zeros(5, 8, 8), r"got \(4, 1, 8, 8\) and \(5, 1, 8, 8\)"),
    ],
)
def test_bad_arrays_are_one_line_errors(tmp_path, x, y, expected):
    path = write_pt(tmp_path / "bad.pt", x, y)
    assert re.search(expected, one_line_error(lambda: load_dataset(path)))


def test_npy_needs_its_partner(tmp_path):
    np.save(tmp_path / "lonely_x.npy", np.zeros((4, 8, 8)))
    assert "lonely_y.npy" in one_line_error(lambda: load_dataset(tmp_path / "lonely_x.npy"))
    np.save(tmp_path / "plain.npy", np.zeros((4, 8, 8)))
    assert "NAME_x.npy" in one_line_error(lambda: load_dataset(tmp_path / "plain.npy"))


def test_pdebench_coordinates_must_match_the_grid(tmp_path):
    path = tmp_path / "darcy.hdf5"
    with h5py.File(path, "w") as f:
        f["nu"] = np.ones((3, 8, 6))
        f["tensor"] = np.ones((3, 1, 8, 6))
        f["x-coordinate"] = np.zeros(6)  # transposed: x runs along axis 1 (8 points)
        f["y-coordinate"] = np.zeros(8)
    assert "x-coordinate (H,)" in one_line_error(lambda: load_dataset(path))


def test_pdebench_reads_beta_and_survives_pickling_for_workers(tmp_path):
    x, y = arrays()
    data = PDEBenchDarcy(write_pdebench(tmp_path / "2D_DarcyFlow_beta0.01_Train.hdf5", x, y))
    assert data.beta == 0.01
    np.testing.assert_allclose(data.coordinates[0], (np.arange(H) + 0.5) / H)
    twin = pickle.loads(pickle.dumps(data))
    torch.testing.assert_close(twin[5], data[5], rtol=0, atol=0)


# -- splits ---------------------------------------------------------------------


def test_val_fraction_gives_disjoint_splits_that_cover_the_file_and_repeat_per_seed(tmp_path):
    x, y = np.random.default_rng(1).random((40, 4, 4)), np.zeros((40, 4, 4))
    path = write_pt(tmp_path / "p.pt", x, y)
    train = load_dataset(path, split="train", val_fraction=0.2, seed=3)
    valid = load_dataset(path, split="valid", val_fraction=0.2, seed=3)
    assert len(valid) == 8 and len(train) == 32
    assert set(train.indices).isdisjoint(valid.indices)
    assert set(train.indices) | set(valid.indices) == set(range(40))
    again = load_dataset(path, split="valid", val_fraction=0.2, seed=3)
    assert again.indices == valid.indices
    # another seed draws another hold-out (8 of 40: C(40, 8) ~ 8e7 possible sets)
    other = load_dataset(path, split="valid", val_fraction=0.2, seed=4)
    assert set(other.indices) != set(valid.indices)
    # the items are the file's samples at those indices
    torch.testing.assert_close(valid[0][0][0], torch.as_tensor(x[valid.indices[0]]).float())


def test_single_file_never_validates_on_its_training_samples(tmp_path):
    path = write_pt(tmp_path / "p.pt", *arrays())
    assert "--val-fraction" in one_line_error(lambda: load_dataset(path, split="valid"))
    assert "--test-data" in one_line_error(
        lambda: load_dataset(path, split="test", val_fraction=0.25)
    )
    assert len(load_dataset(path, split="test")) == N  # a test file is all test


def test_val_fraction_that_empties_a_side_is_an_error(tmp_path):
    path = write_pt(tmp_path / "p.pt", *arrays())
    assert "both sides" in one_line_error(
        lambda: load_dataset(path, split="train", val_fraction=0.01)
    )


def test_split_indices_keeps_groups_whole():
    groups = np.repeat(np.arange(10), 3)
    train, valid = split_indices(groups, 0.3, seed=0)
    assert len(valid) == 9
    assert set(groups[train]).isdisjoint(groups[valid])


def _well_dataset(root, n_traj=5, n_time=4):
    rng = np.random.default_rng(0)
    coords = {"x": np.linspace(0, 1, 8), "y": np.linspace(0, 1, 8)}
    with WellDatasetWriter(root, "toy") as writer:
        for split in ("train", "valid", "test"):
            writer.write(
                split,
                f"toy_{split}.hdf5",
                time=np.arange(n_time, dtype=float),
                coords=coords,
                t0_fields={"w": rng.standard_normal((n_traj, n_time, 8, 8))},
            )
    return root / "toy"


def test_time_dependent_well_file_is_split_by_trajectory(tmp_path):
    folder = _well_dataset(tmp_path)
    path = folder / "data" / "train" / "toy_train.hdf5"
    train = load_dataset(path, split="train", val_fraction=0.4)
    valid = load_dataset(path, split="valid", val_fraction=0.4)
    windows = 3  # 4 frames, 1 in + 1 out: 3 windows per trajectory
    assert len(valid) == 2 * windows and len(train) == 3 * windows
    assert {i // windows for i in train.indices}.isdisjoint(i // windows for i in valid.indices)


def test_well_folder_keeps_its_splits_and_refuses_val_fraction(tmp_path):
    folder = _well_dataset(tmp_path)
    assert len(load_dataset(folder, split="valid")) == 15
    assert "own train/valid/test" in one_line_error(
        lambda: load_dataset(folder, split="train", val_fraction=0.2)
    )
