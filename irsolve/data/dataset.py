"""A torch ``Dataset`` over HDF5 files in The Well's layout, ours or The Well's own.

Items are windows of consecutive frames: ``n_steps_input`` frames in,
the next ``n_steps_output`` frames out, channels first and time-major
(``(T F)`` order: all channels of frame 0, then of frame 1, ...). Channels
follow The Well's flattening (t0 fields, then each t1 field's components,
then each t2 field's components row-major: ``D_xx, D_xy, D_yx, D_yy``).

Static datasets (one frame per trajectory, e.g. Darcy ``a -> u``) give one
item per trajectory: the input fields in, the output fields out.

Reads are lazy: files are opened on first use in each process (so a
``DataLoader`` with workers opens its own handles after the fork) and only
the frames of one window are read per item.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import yaml
from torch import Tensor
from torch.utils.data import Dataset

from irsolve.data.atomic_folder import is_work_folder
from irsolve.data.checksums import CHECKSUM_FILE, check_read_files
from irsolve.data.well_format import SPLITS, FieldSpec, field_specs

__all__ = ["HDF5Dataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FileInfo:
    """What the dataset needs to know about one file, read once at construction."""

    path: Path
    n_traj: int
    n_steps: int
    spatial_shape: tuple[int, ...]


class HDF5Dataset(Dataset):
    """Windows ``(x, y)`` of HDF5 files in The Well's layout.

    Parameters
    ----------
    root
        A dataset folder (``data/<split>/*.hdf5`` and ``stats.yaml``) or a
        single ``.hdf5`` file. For a single file, normalisation looks for
        ``stats.yaml`` three levels up (``<name>/data/<split>/file.hdf5``).
    split
        ``"train"``, ``"valid"`` or ``"test"`` (ignored for a single file).
    n_steps_input, n_steps_output
        Frames per input and per target window (time-dependent data).
    stride
        Step between the first frames of consecutive windows of a trajectory.
    normalize
        Z-score every channel with the ``mean`` and ``std`` of ``stats.yaml``
        (training statistics), whatever the split.
    input_fields, output_fields
        Field names for ``x`` and ``y``. Default: every field stored per
        trajectory and per frame (The Well's constant fields, with
        ``sample_varying`` or ``time_varying`` false, are left out); for a
        static file, the lists in its ``input_fields`` / ``output_fields``
        attributes.

    Attributes
    ----------
    input_channels, output_channels
        Channel names of one frame of ``x`` and of ``y``.
    x_mean, x_std, y_mean, y_std
        Normalisation per channel of ``x`` and ``y``, shaped ``(C, 1, ..., 1)``
        to broadcast against an item (zeros and ones when ``normalize=False``).

    Raises
    ------
    FileNotFoundError
        For a missing root, split folder (or an empty one) or ``stats.yaml``.
    ValueError
        For a truncated or corrupt file, a missing field, files that disagree,
        or a window longer than a trajectory; the message names the file. For
        a root that is the hidden work folder of an unfinished write.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        n_steps_input: int = 4,
        n_steps_output: int = 1,
        stride: int = 1,
        normalize: bool = True,
        *,
        input_fields: Sequence[str] | None = None,
        output_fields: Sequence[str] | None = None,
    ) -> None:
        if n_steps_input < 1 or n_steps_output < 1 or stride < 1:
            raise ValueError(
                "expected n_steps_input, n_steps_output, stride >= 1, got "
                f"{n_steps_input}, {n_steps_output}, {stride}"
            )
        self.root = Path(root)
        self.split = split
        self.n_steps_input = n_steps_input
        self.n_steps_output = n_steps_output
        self.stride = stride
        self.normalize = normalize
        paths = _split_files(self.root, split)
        _check_integrity(self.root, paths)
        self._infos: list[_FileInfo] = []
        self._input_specs, self._output_specs = self._read_layout(
            paths[0], input_fields, output_fields
        )
        for path in paths:
            self._infos.append(self._check_file(path))
        first = self._infos[0]
        self.static = first.n_steps == 1
        window = 1 if self.static else n_steps_input + n_steps_output
        self._window = window
        self._starts_per_traj = []
        for info in self._infos:
            if info.n_steps < window:
                raise ValueError(
                    f"{info.path}: window of {n_steps_input} input + {n_steps_output} output "
                    f"frames is longer than the trajectories ({info.n_steps} frames)"
                )
            self._starts_per_traj.append((info.n_steps - window) // stride + 1)
        self._cumulative = np.cumsum(
            [0] + [i.n_traj * s for i, s in zip(self._infos, self._starts_per_traj, strict=True)]
        ).tolist()
        self.input_channels = [c for s in self._input_specs for c in s.channels]
        self.output_channels = [c for s in self._output_specs for c in s.channels]
        n_in, n_out = (1, 1) if self.static else (n_steps_input, n_steps_output)
        stats = _load_stats(self.root, self._infos[0].path) if normalize else None
        ones = (1,) * len(first.spatial_shape)
        self.x_mean, self.x_std = _channel_stats(stats, self._input_specs, n_in, ones)
        self.y_mean, self.y_std = _channel_stats(stats, self._output_specs, n_out, ones)
        self._handles: dict[Path, h5py.File] = {}
        self._pid = os.getpid()

    # -- construction helpers -------------------------------------------------

    def _read_layout(
        self,
        path: Path,
        input_fields: Sequence[str] | None,
        output_fields: Sequence[str] | None,
    ) -> tuple[list[FieldSpec], list[FieldSpec]]:
        """Input and output fields, from the arguments or the first file's attributes."""
        with _open(path) as f:
            n_steps = f["dimensions"]["time"].shape[0] if "time" in f["dimensions"] else 0
            if n_steps == 1:
                input_fields = input_fields or _str_list(f.attrs.get("input_fields"))
                output_fields = output_fields or _str_list(f.attrs.get("output_fields"))
                if not input_fields or not output_fields:
                    raise ValueError(
                        f"{path}: a static file (one frame per trajectory) needs input_fields "
                        "and output_fields, as arguments or file attributes; got "
                        f"input_fields={input_fields}, output_fields={output_fields}"
                    )
            else:
                varying = [s.name for s in field_specs(f) if _varies(f[s.group][s.name])]
                input_fields = input_fields or varying
                output_fields = output_fields or varying
            return field_specs(f, input_fields), field_specs(f, output_fields)

    def _check_file(self, path: Path) -> _FileInfo:
        """Shapes of one file, checked against its attributes and the first file's fields."""
        with _open(path) as f:
            specs = field_specs(f)
            wanted = {s.name for s in self._input_specs + self._output_specs}
            names = {s.name for s in specs}
            if not wanted <= names:
                raise ValueError(
                    f"{path}: expected field(s) {sorted(wanted - names)}, "
                    f"the file has {sorted(names)}"
                )
            shapes = {s.name: f[s.group][s.name].shape for s in specs if s.name in wanted}
            first = next(iter(shapes.values()))
            n_traj, n_steps = first[:2]
            spatial = first[2 : 2 + int(f.attrs.get("n_spatial_dims", len(first) - 2))]
            declared = int(f.attrs.get("n_trajectories", n_traj))
            for name, shape in shapes.items():
                if shape[:2] != (n_traj, n_steps) or shape[2 : 2 + len(spatial)] != spatial:
                    raise ValueError(
                        f"{path}: field {name!r} has shape {shape}, expected it to start with "
                        f"({n_traj}, {n_steps}, {', '.join(map(str, spatial))})"
                    )
            if declared != n_traj:
                raise ValueError(
                    f"{path}: @n_trajectories says {declared}, the fields hold {n_traj}"
                )
        if self._infos and spatial != self._infos[0].spatial_shape:
            raise ValueError(
                f"{path}: grid {spatial} differs from {self._infos[0].spatial_shape} "
                f"of {self._infos[0].path}"
            )
        return _FileInfo(path, n_traj, n_steps, tuple(spatial))

    # -- Dataset protocol -----------------------------------------------------

    def __len__(self) -> int:
        return self._cumulative[-1]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        index %= len(self)
        file_index = bisect.bisect_right(self._cumulative, index) - 1
        local = index - self._cumulative[file_index]
        info = self._infos[file_index]
        traj, window = divmod(local, self._starts_per_traj[file_index])
        start = window * self.stride
        f = self._handle(info.path)
        if self.static:
            x = self._read(f, info, self._input_specs, traj, 0, 1)
            y = self._read(f, info, self._output_specs, traj, 0, 1)
        else:
            n_in = self.n_steps_input
            x = self._read(f, info, self._input_specs, traj, start, start + n_in)
            y = self._read(f, info, self._output_specs, traj, start + n_in, start + self._window)
        x = (x - self.x_mean) / self.x_std
        y = (y - self.y_mean) / self.y_std
        return x, y

    def _read(
        self, f: h5py.File, info: _FileInfo, specs: list[FieldSpec], traj: int, t0: int, t1: int
    ) -> Tensor:
        """Frames ``t0:t1`` of ``specs`` for one trajectory, as ``((t1-t0) * F, *space)``."""
        d = len(info.spatial_shape)
        parts = []
        for spec in specs:
            try:
                block = f[spec.group][spec.name][traj, t0:t1]
            except (OSError, KeyError) as err:
                raise ValueError(
                    f"{info.path}: cannot read {spec.group}/{spec.name}[{traj}, {t0}:{t1}] "
                    f"(truncated or corrupt file?): {err}"
                ) from err
            block = block.reshape(t1 - t0, *info.spatial_shape, len(spec.channels))
            parts.append(np.moveaxis(block, -1, 1))
        frames = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
        tensor = torch.from_numpy(np.ascontiguousarray(frames))
        return tensor.reshape(-1, *tensor.shape[2 : 2 + d])

    def _handle(self, path: Path) -> h5py.File:
        """An open handle for ``path`` in this process (re-opened after a fork)."""
        if self._pid != os.getpid():
            self._handles = {}
            self._pid = os.getpid()
        if path not in self._handles:
            self._handles[path] = _open(path)
        return self._handles[path]

    def close(self) -> None:
        """Close the file handles this process opened."""
        if self._pid == os.getpid():
            for handle in self._handles.values():
                handle.close()
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __repr__(self) -> str:
        kind = "static" if self.static else f"{self.n_steps_input}->{self.n_steps_output}"
        return (
            f"HDF5Dataset({str(self.root)!r}, split={self.split!r}, {kind}, "
            f"items={len(self)}, x_channels={len(self.x_mean)}, y_channels={len(self.y_mean)})"
        )


def _check_integrity(root: Path, paths: list[Path]) -> None:
    """Check the files about to be read against their dataset's ``SHA256SUMS``: ``root``
    itself, or for a single file the dataset three levels up
    (``<name>/data/<split>/file.hdf5``). A dataset folder without one is read with a
    warning that its files cannot be checked."""
    folder = root if root.is_dir() else root.parents[2] if len(root.parents) > 2 else None
    if folder is None or not (folder / "data").is_dir():
        return  # a lone file: no dataset, no checksum to check against
    stats = folder / "stats.yaml"
    if check_read_files(folder, [*paths, *([stats] if stats.is_file() else [])]):
        logger.info("%d file(s) of %s match its %s", len(paths), folder, CHECKSUM_FILE)
    else:
        logger.warning(
            "%s has no %s: its files' integrity cannot be checked (irsolve data generate "
            "writes one)",
            folder,
            CHECKSUM_FILE,
        )


def _split_files(root: Path, split: str) -> list[Path]:
    """The ``.hdf5`` files of ``split`` under a dataset folder, or ``[root]`` for a file."""
    if root.is_file():
        return [root]
    if not root.exists():
        raise FileNotFoundError(f"no dataset folder or file at {root}")
    if is_work_folder(root.name):
        raise ValueError(
            f"{root} is the work folder of an unfinished irsolve data generate (running or "
            "killed), not a dataset"
        )
    if split not in SPLITS:
        raise ValueError(f"expected a split in {SPLITS}, got {split!r}")
    folder = root / "data" / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{root}: expected split folder {folder}, it does not exist")
    files = sorted([*folder.glob("*.hdf5"), *folder.glob("*.h5")])
    if not files:
        raise FileNotFoundError(f"{folder}: expected .hdf5 files in split {split!r}, found none")
    return files


def _open(path: Path) -> h5py.File:
    """Open ``path`` read-only, turning HDF5's errors into one that names the file."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(
            f"{path}: cannot open as HDF5 (truncated or corrupt file?): {err}"
        ) from err
    if "dimensions" not in f:
        f.close()
        raise ValueError(f"{path}: expected The Well's layout with a 'dimensions' group, got none")
    return f


def _varies(ds: h5py.Dataset) -> bool:
    """Whether a field is stored per trajectory and per frame (The Well's default)."""
    return bool(ds.attrs.get("sample_varying", True)) and bool(ds.attrs.get("time_varying", True))


def _str_list(value: object) -> list[str] | None:
    """A string-list attribute as a Python list (``None`` when absent)."""
    if value is None:
        return None
    items = [value] if isinstance(value, (str, bytes)) else list(value)
    return [i.decode() if isinstance(i, bytes) else str(i) for i in items]


def _load_stats(root: Path, first_file: Path) -> tuple[Path, dict[str, Any]]:
    """``stats.yaml`` of a dataset folder, or of the dataset a single file lies in."""
    path = root / "stats.yaml" if root.is_dir() else first_file.parents[2] / "stats.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"normalize=True needs {path} (The Well's per-field mean and std); it does not "
            "exist. Pass normalize=False to read raw values."
        )
    with open(path) as f:
        stats = yaml.safe_load(f)
    for key in ("mean", "std"):
        if not isinstance(stats, dict) or not isinstance(stats.get(key), dict):
            raise ValueError(f"{path}: expected a mapping {key!r}: {{field: value}}, got none")
    return path, stats


def _channel_stats(
    stats: tuple[Path, dict[str, Any]] | None,
    specs: list[FieldSpec],
    n_frames: int,
    ones: tuple[int, ...],
) -> tuple[Tensor, Tensor]:
    """Per-channel ``(mean, std)`` for ``n_frames`` frames of ``specs``, shaped ``(C, *ones)``."""
    n_channels = sum(len(s.channels) for s in specs)
    if stats is None:
        return torch.zeros(n_channels * n_frames, *ones), torch.ones(n_channels * n_frames, *ones)
    path, table = stats
    values = {}
    for key in ("mean", "std"):
        flat = []
        for spec in specs:
            if spec.name not in table[key]:
                raise ValueError(f"{path}: expected {key} of field {spec.name!r}, got none")
            entry = np.asarray(table[key][spec.name], dtype=np.float64).reshape(-1)
            if entry.size != len(spec.channels):
                raise ValueError(
                    f"{path}: expected {len(spec.channels)} {key} value(s) for {spec.name!r}, "
                    f"got {entry.size}"
                )
            flat.extend(entry.tolist())
        values[key] = torch.tensor(flat * n_frames, dtype=torch.float32).reshape(-1, *ones)
    if (values["std"] <= 0).any():
        raise ValueError(f"{path}: expected positive std for every channel, got {values['std']}")
    return values["mean"], values["std"]
