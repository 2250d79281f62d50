"""The Well's HDF5 layout as written by irsolve: attributes, statistics, atomicity, determinism.

Reference for the layout: The Well's data format specification (Ohana et al.,
2024, https://polymathic-ai.org/the_well/data_format/).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from irsolve.data.generate import make_navier_stokes_dataset
from irsolve.data.well_format import WellDatasetWriter, compute_stats, write_well_file


def write_small_file(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A 3-trajectory, 4-frame, 5x6 file with a t0, a t1 and a t2 field; returns the data."""
    data = {
        "p": rng.normal(2.0, 3.0, (3, 4, 5, 6)),
        "v": rng.normal(0.0, 1.0, (3, 4, 5, 6, 2)),
        "D": rng.normal(-1.0, 0.5, (3, 4, 5, 6, 2, 2)),
    }
    write_well_file(
        path,
        dataset_name="toy",
        time=np.arange(4) * 0.5,
        coords={"x": np.linspace(0, 1, 5), "y": np.linspace(0, 1, 6)},
        t0_fields={"p": data["p"]},
        t1_fields={"v": data["v"]},
        t2_fields={"D": data["D"]},
        parameters={"Re": 100.0},
        boundary={"x": "wall", "y": "periodic"},
    )
    return {k: v.astype(np.float32) for k, v in data.items()}


def test_file_has_the_well_root_attributes_groups_and_field_attributes(tmp_path: Path) -> None:
    path = tmp_path / "toy.hdf5"
    data = write_small_file(path, np.random.default_rng(0))
    with h5py.File(path, "r") as f:
        assert f.attrs["dataset_name"] == "toy"
        assert f.attrs["grid_type"] == "cartesian"
        assert f.attrs["n_spatial_dims"] == 2
        assert f.attrs["n_trajectories"] == 3
        assert list(f.attrs["simulation_parameters"]) == ["Re"]
        assert f.attrs["Re"] == 100.0
        assert list(f["dimensions"].attrs["spatial_dims"]) == ["x", "y"]
        assert f["dimensions/time"].shape == (4,)
        assert f["dimensions/x"].shape == (5,) and f["dimensions/y"].shape == (6,)
        assert not f["dimensions/x"].attrs["time_varying"]
        assert f["boundary_conditions/x_wall"].attrs["bc_type"] == "WALL"
        assert f["boundary_conditions/y_periodic"].attrs["bc_type"] == "PERIODIC"
        assert f["scalars/Re"][0] == 100.0
        for group, name in (("t0_fields", "p"), ("t1_fields", "v"), ("t2_fields", "D")):
            ds = f[group][name]
            assert list(f[group].attrs["field_names"]) == [name]
            assert ds.dtype == np.float32
            np.testing.assert_array_equal(ds[()], data[name])
            assert ds.attrs["sample_varying"] and ds.attrs["time_varying"]
            assert list(ds.attrs["dim_varying"]) == [True, True]
        assert not f["t2_fields/D"].attrs["symmetric"]


def test_stats_match_numpy_moments_per_component(tmp_path: Path) -> None:
    # Reference: numpy over the same float32 values in float64; 1e-12 relative is
    # the round-off of the chunked (Chan et al.) merge.
    rng = np.random.default_rng(1)
    a = write_small_file(tmp_path / "a.hdf5", rng)
    b = write_small_file(tmp_path / "b.hdf5", rng)
    stats = compute_stats([tmp_path / "a.hdf5", tmp_path / "b.hdf5"])
    for name, comps in (("p", ()), ("v", (2,)), ("D", (2, 2))):
        x = np.concatenate([a[name], b[name]]).astype(np.float64)
        axes = tuple(range(x.ndim - len(comps)))
        delta = np.diff(x, axis=1)
        expected = {
            "mean": x.mean(axes),
            "std": x.std(axes),
            "rms": np.sqrt((x**2).mean(axes)),
            "mean_delta": delta.mean(axes),
            "std_delta": delta.std(axes),
            "rms_delta": np.sqrt((delta**2).mean(axes)),
        }
        for stat, value in expected.items():
            got = np.asarray(stats[stat][name])
            assert got.shape == comps, (stat, name)
            np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-14)


def test_write_rejects_a_field_of_the_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"expected t1 field 'v' of shape \(n_traj, 2, 3, 3, 2\)"):
        write_well_file(
            tmp_path / "bad.hdf5",
            dataset_name="bad",
            time=np.arange(2),
            coords={"x": np.arange(3), "y": np.arange(3)},
            t0_fields={},
            t1_fields={"v": np.zeros((1, 2, 3, 3))},
        )
    assert not list(tmp_path.iterdir())


def test_interrupted_dataset_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(RuntimeError, match="interrupted"):
        with WellDatasetWriter(tmp_path, "toy") as writer:
            writer.write(
                "train",
                "toy_train_000.hdf5",
                time=np.arange(2),
                coords={"x": np.arange(3), "y": np.arange(3)},
                t0_fields={"p": rng.normal(size=(1, 2, 3, 3))},
            )
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_same_seed_gives_bit_identical_dataset_and_other_seed_differs(tmp_path: Path) -> None:
    kwargs = {"resolution": 16, "n_steps": 3, "record_dt": 0.2, "trajectories_per_file": 1}
    first = make_navier_stokes_dataset(tmp_path / "a", 2, 1, 1, seed=7, **kwargs)
    second = make_navier_stokes_dataset(tmp_path / "b", 2, 1, 1, seed=7, **kwargs)
    other = make_navier_stokes_dataset(tmp_path / "c", 2, 1, 1, seed=8, **kwargs)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 6  # 2 train + 1 valid + 1 test files, stats.yaml, SHA256SUMS
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    assert (first / files[0]).read_bytes() != (other / files[0]).read_bytes()
    stats = yaml.safe_load((first / "stats.yaml").read_text())
    assert set(stats) == {"mean", "std", "rms", "mean_delta", "std_delta", "rms_delta"}
    assert set(stats["mean"]) == {"vorticity"}
