"""Writing datasets in The Well's HDF5 layout.

The Well (Ohana et al., 2024, "The Well: a Large-Scale Collection of Diverse
Physics Simulations for Machine Learning", NeurIPS Datasets and Benchmarks)
stores each file as::

    /  @dataset_name @grid_type @n_spatial_dims @n_trajectories
       @simulation_parameters (names) + one attribute per parameter value
    dimensions/   @spatial_dims; time (T), x, y  (@sample_varying, @time_varying)
    boundary_conditions/<dim>_<type>/  @associated_dims @associated_fields @bc_type
                                       @sample_varying @time_varying; mask, values
    scalars/      @field_names; one float32 dataset per constant parameter
    t0_fields/    @field_names; <name> float32 (n_traj, T, *space)
    t1_fields/    @field_names; <name> float32 (n_traj, T, *space, D)
    t2_fields/    @field_names; <name> float32 (n_traj, T, *space, D, D)
                  each field: @dim_varying @sample_varying @time_varying
                  (t2 also @symmetric @antisymmetric)

and a dataset folder as ``<root>/<name>/data/{train,valid,test}/*.hdf5`` with
``<root>/<name>/stats.yaml`` holding, per field, ``mean``, ``std``, ``rms``
and the same of one-step differences (``*_delta``) over the training split;
tensor fields get one value per component (a list for t1, a nested list for
t2).

Writes are atomic: a file is written under a temporary name and renamed, and
:class:`WellDatasetWriter` builds a whole folder under a hidden name and
swaps it in by renames when complete (:mod:`irsolve.data.atomic_folder`), so
an interrupted or killed run leaves nothing that looks finished and never
loses the dataset it was replacing. Files carry no timestamps
(``track_times=False``) and no randomness, so the same data give
bit-identical files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
import yaml

from irsolve.data.atomic_folder import (
    check_folder_name,
    check_replaceable,
    clean_interrupted,
    new_work_folder,
    prepare_parent,
    publish,
    remove_work_folder,
)
from irsolve.data.checksums import write_checksums

__all__ = [
    "SPLITS",
    "FieldSpec",
    "WellDatasetWriter",
    "compute_stats",
    "field_specs",
    "write_well_file",
]

logger = logging.getLogger(__name__)

#: The split folders of a Well dataset, in order.
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: Statistics written to ``stats.yaml`` (those of deltas need two frames or more).
_STAT_NAMES: tuple[str, ...] = ("mean", "std", "rms")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a Well file and the channels it flattens to.

    Attributes
    ----------
    group
        ``"t0_fields"``, ``"t1_fields"`` or ``"t2_fields"``.
    name
        Dataset name inside the group.
    order
        Tensor order: 0, 1 or 2.
    channels
        Channel names in The Well's flattening order: ``name`` for t0,
        ``name_x, name_y`` for t1, ``name_xx, name_xy, name_yx, name_yy`` for t2
        (components row-major, letters from ``dimensions/@spatial_dims``).
    """

    group: str
    name: str
    order: int
    channels: tuple[str, ...]


def field_specs(f: h5py.File, names: Sequence[str] | None = None) -> list[FieldSpec]:
    """The fields of an open Well file in The Well's order (t0, then t1, then t2).

    Within a group, fields follow the group's ``field_names`` attribute.

    Parameters
    ----------
    f
        An open file in The Well's layout.
    names
        Keep only these fields (by name), still in The Well's order; every
        name must exist.

    Raises
    ------
    ValueError
        If the file has no field at all, a listed field has no dataset, or a
        requested name is missing (naming the file and the fields it has).
    """
    n_dims = int(f.attrs.get("n_spatial_dims", 2))
    default_dims = ["x", "y", "z"][:n_dims]
    spatial = [_as_str(d) for d in f["dimensions"].attrs.get("spatial_dims", default_dims)]
    specs = []
    for order in range(3):
        group = f"t{order}_fields"
        if group not in f:
            continue
        for name in (_as_str(n) for n in f[group].attrs.get("field_names", [])):
            if name not in f[group]:
                raise ValueError(
                    f"{f.filename}: {group}/@field_names lists {name!r} but {group} has no "
                    f"such dataset (it has {sorted(f[group].keys())})"
                )
            suffixes = _component_suffixes(spatial, order)
            channels = tuple(f"{name}_{s}" if s else name for s in suffixes)
            specs.append(FieldSpec(group, name, order, channels))
    if not specs:
        raise ValueError(f"{f.filename}: no field found in t0_fields, t1_fields or t2_fields")
    if names is None:
        return specs
    known = {s.name for s in specs}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(
            f"{f.filename}: expected field(s) {missing}, the file has {[s.name for s in specs]}"
        )
    return [s for s in specs if s.name in names]


def _component_suffixes(spatial: Sequence[str], order: int) -> list[str]:
    """``['']`` for scalars, ``['x', 'y']`` for vectors, ``['xx', 'xy', 'yx', 'yy']`` for t2."""
    if order == 0:
        return [""]
    if order == 1:
        return list(spatial)
    return [a + b for a in spatial for b in spatial]


def _as_str(value: object) -> str:
    """HDF5 attributes come back as ``str`` or ``bytes`` depending on how they were written."""
    return value.decode() if isinstance(value, bytes) else str(value)


def write_well_file(
    path: str | os.PathLike[str],
    *,
    dataset_name: str,
    time: np.ndarray,
    coords: Mapping[str, np.ndarray],
    t0_fields: Mapping[str, np.ndarray],
    t1_fields: Mapping[str, np.ndarray] | None = None,
    t2_fields: Mapping[str, np.ndarray] | None = None,
    parameters: Mapping[str, float] | None = None,
    boundary: Mapping[str, str] | None = None,
    extra_attrs: Mapping[str, str | Sequence[str]] | None = None,
    dtype: type[np.floating] = np.float32,
) -> Path:
    """Write one HDF5 file in The Well's layout, atomically.

    Parameters
    ----------
    path
        Destination; written as ``<path>.tmp`` then renamed.
    dataset_name
        Root attribute ``dataset_name``.
    time
        Snapshot times, shape ``(T,)``.
    coords
        Grid coordinates per spatial dimension, in axis order (e.g.
        ``{"x": x, "y": y}``); their order gives ``dimensions/@spatial_dims``.
    t0_fields, t1_fields, t2_fields
        Scalar fields ``(n_traj, T, *space)``, vector fields
        ``(n_traj, T, *space, D)`` and tensor fields ``(n_traj, T, *space, D, D)``;
        stored as ``dtype``, sample- and time-varying.
    parameters
        Simulation parameters: listed in ``@simulation_parameters``, stored as
        root attributes and as constant ``scalars/``.
    boundary
        Boundary type per spatial dimension: ``"periodic"``, ``"wall"`` or
        ``"open"`` (periodic where not given).
    extra_attrs
        Further root attributes (strings or lists of strings).
    dtype
        Floating type of the fields: The Well's float32 by default; float64
        where the data must keep more digits (a discrete PDE solution whose
        residual is checked to 1e-10).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        If shapes disagree with ``time``, ``coords`` or each other, or a
        boundary type is unknown.
    """
    path = Path(path)
    spatial = list(coords)
    shape = tuple(len(coords[d]) for d in spatial)
    groups = {"t0_fields": dict(t0_fields), "t1_fields": dict(t1_fields or {})}
    groups["t2_fields"] = dict(t2_fields or {})
    n_traj = _check_field_shapes(groups, len(time), shape, path)
    boundary = {**dict.fromkeys(spatial, "periodic"), **(boundary or {})}
    for dim, kind in boundary.items():
        if dim not in spatial or kind not in ("periodic", "wall", "open"):
            raise ValueError(
                f"{path}: expected boundary types periodic/wall/open on dimensions {spatial}, "
                f"got {dim!r}: {kind!r}"
            )
    parameters = dict(parameters or {})
    tmp = path.with_name(path.name + ".tmp")
    try:
        _write_layout(
            tmp,
            dataset_name,
            time,
            coords,
            groups,
            parameters,
            boundary,
            extra_attrs,
            n_traj,
            dtype,
        )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def _write_layout(
    tmp: Path,
    dataset_name: str,
    time: np.ndarray,
    coords: Mapping[str, np.ndarray],
    groups: Mapping[str, Mapping[str, np.ndarray]],
    parameters: Mapping[str, float],
    boundary: Mapping[str, str],
    extra_attrs: Mapping[str, str | Sequence[str]] | None,
    n_traj: int,
    dtype: type[np.floating],
) -> None:
    """The body of :func:`write_well_file`, arguments already checked."""
    spatial = list(coords)
    shape = tuple(len(coords[d]) for d in spatial)
    with h5py.File(tmp, "w", libver="earliest") as f:
        f.attrs["dataset_name"] = dataset_name
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = len(spatial)
        f.attrs["n_trajectories"] = n_traj
        f.attrs["simulation_parameters"] = _str_array(parameters)
        for key, value in parameters.items():
            f.attrs[key] = value
        for key, value in (extra_attrs or {}).items():
            f.attrs[key] = value if isinstance(value, str) else _str_array(value)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = _str_array(spatial)
        _dataset(dims, "time", np.asarray(time), sample_varying=False)
        for dim in spatial:
            _dataset(dims, dim, np.asarray(coords[dim]), sample_varying=False, time_varying=False)
        bcs = f.create_group("boundary_conditions")
        for axis, dim in enumerate(spatial):
            bc = bcs.create_group(f"{dim}_{boundary[dim]}")
            bc.attrs["associated_dims"] = _str_array([dim])
            bc.attrs["associated_fields"] = _str_array([])
            bc.attrs["bc_type"] = boundary[dim].upper()
            bc.attrs["sample_varying"] = False
            bc.attrs["time_varying"] = False
            mask = np.zeros(shape[axis], dtype=bool)
            mask[[0, -1]] = True
            bc.create_dataset("mask", data=mask, track_times=False)
            bc.create_dataset("values", data=np.zeros(2, np.float32), track_times=False)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = _str_array(parameters)
        for key, value in parameters.items():
            _dataset(scalars, key, np.asarray([value]), sample_varying=False, time_varying=False)
        for group_name, fields in groups.items():
            group = f.create_group(group_name)
            group.attrs["field_names"] = _str_array(fields)
            for name, data in fields.items():
                ds = _dataset(group, name, np.asarray(data), dtype=dtype)
                ds.attrs["dim_varying"] = np.ones(len(spatial), dtype=bool)
                if group_name == "t2_fields":
                    ds.attrs["symmetric"] = bool(np.array_equal(data, np.swapaxes(data, -1, -2)))
                    ds.attrs["antisymmetric"] = bool(
                        np.array_equal(data, -np.swapaxes(data, -1, -2))
                    )


def _check_field_shapes(
    groups: Mapping[str, Mapping[str, np.ndarray]], n_time: int, shape: tuple[int, ...], path: Path
) -> int:
    """Check every field against ``(n_traj, T, *space, D^order)``; return ``n_traj``."""
    n_traj = None
    d = len(shape)
    for order, fields in enumerate(groups.values()):
        for name, data in fields.items():
            expected_tail = (n_time, *shape) + (d,) * order
            got = tuple(np.shape(data))
            if got[1:] != expected_tail or (n_traj is not None and got[0] != n_traj):
                lead = "n_traj" if n_traj is None else str(n_traj)
                raise ValueError(
                    f"{path}: expected t{order} field {name!r} of shape ({lead}, "
                    f"{', '.join(map(str, expected_tail))}), got {got}"
                )
            n_traj = got[0]
    if n_traj is None:
        raise ValueError(f"{path}: expected at least one field, got none")
    return n_traj


def _str_array(items: Sequence[str] | Mapping[str, object]) -> np.ndarray:
    """A list of names as an HDF5 variable-length string array attribute."""
    return np.array([str(i) for i in items], dtype=h5py.string_dtype())


def _dataset(
    group: h5py.Group,
    name: str,
    data: np.ndarray,
    *,
    sample_varying: bool = True,
    time_varying: bool = True,
    dtype: type[np.floating] = np.float32,
) -> h5py.Dataset:
    """A dataset of ``dtype`` without timestamps, with the Well's variation attributes."""
    ds = group.create_dataset(name, data=data.astype(dtype), track_times=False)
    ds.attrs["sample_varying"] = sample_varying
    ds.attrs["time_varying"] = time_varying
    return ds


def compute_stats(files: Sequence[str | os.PathLike[str]]) -> dict[str, dict[str, object]]:
    """Per-field statistics of a split, in ``stats.yaml``'s shape.

    For each field and each component, over all trajectories, frames and grid
    points of ``files``: ``mean``, ``std`` (population), ``rms = sqrt(mean x^2)``;
    and, when trajectories have two frames or more, the same of the one-step
    differences ``x[t+1] - x[t]`` (``mean_delta``, ``std_delta``, ``rms_delta``).
    Moments are accumulated in float64 trajectory by trajectory with Chan et
    al.'s pairwise update (1979), so no file is read whole.

    Returns
    -------
    dict
        ``{stat: {field: value}}`` with ``value`` a float (t0), a list (t1) or
        a nested list (t2).
    """
    moments: dict[str, dict[str, _Moments]] = {"": {}, "_delta": {}}
    orders: dict[str, int] = {}
    for file in files:
        with h5py.File(file, "r") as f:
            for spec in field_specs(f):
                orders[spec.name] = spec.order
                ds = f[spec.group][spec.name]
                width = len(spec.channels)
                for traj in range(ds.shape[0]):
                    x = ds[traj].astype(np.float64).reshape(ds.shape[1], -1, width)
                    moments[""].setdefault(spec.name, _Moments(width)).add(x)
                    if x.shape[0] > 1:
                        delta = np.diff(x, axis=0)
                        moments["_delta"].setdefault(spec.name, _Moments(width)).add(delta)
    stats: dict[str, dict[str, object]] = {}
    for suffix, per_field in moments.items():
        for stat in _STAT_NAMES:
            if per_field:
                stats[stat + suffix] = {
                    name: _nest(getattr(m, stat)(), orders[name]) for name, m in per_field.items()
                }
    return stats


def _nest(values: np.ndarray, order: int) -> object:
    """A float for t0, a list for t1, a row-major nested list for t2."""
    values = [float(v) for v in values]
    if order == 0:
        return values[0]
    if order == 1:
        return values
    d = int(round(len(values) ** 0.5))
    return [values[i * d : (i + 1) * d] for i in range(d)]


class _Moments:
    """Running count, mean and centred second moment per component (Chan et al., 1979)."""

    def __init__(self, width: int) -> None:
        self.count = 0
        self.mu = np.zeros(width)
        self.m2 = np.zeros(width)

    def add(self, x: np.ndarray) -> None:
        """Merge a block ``x`` of shape ``(..., width)``."""
        x = x.reshape(-1, x.shape[-1])
        n = x.shape[0]
        mu = x.mean(axis=0)
        m2 = ((x - mu) ** 2).sum(axis=0)
        total = self.count + n
        delta = mu - self.mu
        self.mu = self.mu + delta * n / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * n / total
        self.count = total

    def mean(self) -> np.ndarray:
        return self.mu

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count)

    def rms(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count + self.mu**2)


class WellDatasetWriter:
    """Build ``<root>/<name>/`` (``data/<split>/*.hdf5``, stats, checksums) atomically.

    On entry, work folders left in ``root`` by killed runs are cleaned up
    (:func:`~irsolve.data.atomic_folder.clean_interrupted`) and files go to a
    new hidden work folder beside the destination. On a clean exit
    ``stats.yaml`` is computed from the training split, the files' SHA-256
    recorded (:mod:`irsolve.data.checksums`) and the folder is
    swapped in by renames (:func:`~irsolve.data.atomic_folder.publish`), so
    ``<root>/<name>`` never holds a half-written or half-deleted dataset. On
    an exception the work folder is removed and the destination is untouched.
    Nothing outside ``root`` is written or deleted.

    Parameters
    ----------
    root
        Parent folder (created if missing; an existing file is an error).
    name
        Dataset name: one plain, visible folder name (no ``/``, not ``.`` or
        ``..``, no leading ``.``), also each file's ``@dataset_name``.
    overwrite
        Replace an existing ``<root>/<name>`` (a dataset folder holding only
        files a dataset has, or an empty folder; anything else, a user's
        notes in the dataset included, is kept and is an error); otherwise an
        existing one is an error.

    Raises
    ------
    ValueError
        For a bad ``name`` (at construction).
    NotADirectoryError
        On entering, if ``root`` is an existing file.
    FileExistsError
        On entering (and again on publishing), if ``<root>/<name>`` exists and
        may not be replaced.

    Examples
    --------
    >>> with WellDatasetWriter(tmp_path, "toy") as writer:  # doctest: +SKIP
    ...     writer.write("train", "toy_train_000.hdf5", time=t, coords=c, t0_fields=f)
    """

    def __init__(self, root: str | os.PathLike[str], name: str, *, overwrite: bool = False):
        self.root = Path(root)
        self.name = check_folder_name(name)
        self.destination = self.root / name
        self.overwrite = overwrite
        self._parent: Path | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> WellDatasetWriter:
        parent = prepare_parent(self.root)
        clean_interrupted(parent)
        destination = parent / self.name
        if os.path.lexists(destination):
            if not self.overwrite:
                raise FileExistsError(
                    f"{self.destination} exists; pass overwrite=True to replace it"
                )
            check_replaceable(destination)
        tmp = new_work_folder(parent, self.name)
        try:
            for split in SPLITS:
                (tmp / "data" / split).mkdir(parents=True)
        except BaseException:
            remove_work_folder(parent, tmp)
            raise
        self._parent, self._tmp = parent, tmp
        return self

    def write(self, split: str, filename: str, **content: object) -> Path:
        """Write one file of ``split``; ``content`` as for :func:`write_well_file`."""
        if self._tmp is None:
            raise RuntimeError("WellDatasetWriter.write called outside its `with` block")
        if split not in SPLITS:
            raise ValueError(f"expected a split in {SPLITS}, got {split!r}")
        path = self._tmp / "data" / split / check_folder_name(filename, "filename")
        return write_well_file(path, dataset_name=self.name, **content)

    def files(self, split: str) -> Iterator[Path]:
        """The files written so far to ``split``, sorted by name."""
        if self._tmp is None:
            return iter(())
        return iter(sorted((self._tmp / "data" / split).glob("*.hdf5")))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tmp, self._tmp = self._tmp, None
        parent = self._parent
        if tmp is None or parent is None:
            return
        if exc_type is not None:
            remove_work_folder(parent, tmp)
            return
        try:
            train = sorted((tmp / "data" / "train").glob("*.hdf5"))
            if not train:
                raise ValueError(f"{self.destination}: no training file written, no stats")
            stats = compute_stats(train)
            with open(tmp / "stats.yaml", "w") as out:
                yaml.safe_dump(stats, out, sort_keys=True)
            write_checksums(tmp)
            publish(tmp, parent, self.name, overwrite=self.overwrite)
        except BaseException:
            remove_work_folder(parent, tmp)
            raise
        logger.info("wrote %s", self.destination)
