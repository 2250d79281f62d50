"""One entry point for the field's data files: :func:`load_dataset`.

Accepted layouts (``format`` names in brackets), detected from the file's
suffix and keys (:func:`detect_format`):

- ``well``: The Well's HDF5 layout, a dataset folder (``data/<split>/``) or
  one ``.hdf5`` file, read by :class:`~irsolve.data.dataset.HDF5Dataset`.
- ``pt``: neuraloperator's ``.pt`` dicts ``{"x": a, "y": u}`` (e.g.
  ``darcy_train_16.pt``), tensors shaped ``(N, H, W)`` or ``(N, C, H, W)``.
- ``pdebench``: PDEBench's 2D Darcy HDF5 (``2D_DarcyFlow_beta*.hdf5``):
  coefficient ``nu`` ``(N, H, W)``, solution ``tensor`` ``(N, 1, H, W)``
  (a time axis of one frame; the last frame is used), cell-centre
  coordinates ``x-coordinate`` ``(H,)`` and ``y-coordinate`` ``(W,)``. The
  file is read lazily, one sample per item.
- ``npz``: a NumPy ``.npz`` with arrays ``x`` and ``y``, shaped as for ``pt``.
- ``npy``: a pair of NumPy files ``NAME_x.npy`` and ``NAME_y.npy`` (either
  may be named).

Any real or boolean dtype is accepted and cast once to float32, the training
dtype. An unknown layout is one ``ValueError`` line naming the keys and shapes
found and the layouts accepted.

Splits. A Well dataset folder has its own ``train``/``valid``/``test``
folders. A single file is one pool of samples: with ``val_fraction`` a seeded
permutation holds out that fraction as ``valid`` (disjoint from ``train``,
the same for the same ``seed``; a time-dependent Well file is split by
trajectory, so no trajectory's windows are on both sides); without it the
``train`` and ``test`` splits are the whole file and asking for ``valid`` is an
error, never a silent copy of the training samples.

>>> train = load_dataset("darcy_train_16.pt", split="train", val_fraction=0.1)  # doctest: +SKIP
>>> x, y = train[0]  # (1, 16, 16) float32 each                                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset

from irsolve.data.dataset import HDF5Dataset

__all__ = [
    "ACCEPTED_LAYOUTS",
    "FORMATS",
    "PDEBenchDarcy",
    "detect_format",
    "load_dataset",
    "split_indices",
]

logger = logging.getLogger(__name__)

#: Format names accepted by ``format=`` and ``--format``.
FORMATS = ("well", "pt", "pdebench", "npz", "npy")

#: The layouts named in every unknown-layout error.
ACCEPTED_LAYOUTS = (
    "accepted: The Well (dataset folder, or .hdf5 with a 'dimensions' group); "
    "neuraloperator .pt {'x', 'y'} of shape (N, H, W) or (N, C, H, W); "
    "PDEBench 2D Darcy .hdf5 {'nu' (N, H, W), 'tensor' (N, 1, H, W), 'x-coordinate', "
    "'y-coordinate'}; .npz {'x', 'y'}; NAME_x.npy + NAME_y.npy"
)

_HDF5_SUFFIXES = (".hdf5", ".h5")
_PDEBENCH_KEYS = ("nu", "tensor", "x-coordinate", "y-coordinate")


def detect_format(path: str | os.PathLike[str]) -> str:
    """The layout of ``path``, one of :data:`FORMATS`, from its suffix and keys.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For a suffix or an HDF5 file of no accepted layout, naming what was
        found (keys and shapes) and :data:`ACCEPTED_LAYOUTS`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data file or dataset folder at {path}")
    if path.is_dir():
        return "well"
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return "pt"
    if suffix in (".npz", ".npy"):
        return suffix[1:]
    if suffix in _HDF5_SUFFIXES:
        with _open_hdf5(path) as f:
            if "dimensions" in f:
                return "well"
            if {"nu", "tensor"} <= f.keys():
                return "pdebench"
            raise ValueError(
                f"{path}: unknown layout, found {_describe_hdf5(f)}; {ACCEPTED_LAYOUTS}"
            )
    raise ValueError(
        f"{path}: unknown layout, found suffix {path.suffix!r} (expected .hdf5, .h5, .pt, .pth, "
        f".npz or .npy, or --format); {ACCEPTED_LAYOUTS}"
    )


def load_dataset(
    path: str | os.PathLike[str],
    *,
    split: str | None = "train",
    format: str | None = None,
    n_steps_input: int = 1,
    val_fraction: float | None = None,
    seed: int = 0,
) -> Dataset:
    """``(x, y)`` pairs of a data file or a Well dataset folder, in float32.

    Parameters
    ----------
    path
        A Well dataset folder, or one file of a layout in :data:`FORMATS`.
    split
        ``"train"``, ``"valid"`` or ``"test"``; ``None``: the whole file (single
        files only). For a single file: ``train`` is the whole file, or what
        ``val_fraction`` leaves; ``valid`` needs ``val_fraction``; ``test`` is
        the whole file (without ``val_fraction``).
    format
        One of :data:`FORMATS`; ``None`` detects it (:func:`detect_format`).
    n_steps_input
        Input frames of time-dependent Well data (one target frame).
    val_fraction
        Fraction of a single file's samples (of its trajectories, for a
        time-dependent Well file) held out as ``valid``, in ``(0, 1)``.
    seed
        Seed of the permutation that draws the ``valid`` samples.

    Returns
    -------
    Dataset
        Items ``(x, y)`` of shapes ``(C_x, H, W)`` and ``(C_y, H, W)``.

    Raises
    ------
    TypeError
        If ``path`` is not a path (``None``).
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For an unknown layout or format, arrays of other shapes or dtypes, no
        samples, a split the data cannot give, or a fraction that leaves
        either side empty. Each is one line naming the file.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"load_dataset: expected path to be a str or os.PathLike, got {type(path).__name__}"
        )
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data file or dataset folder at {path}")
    fmt = detect_format(path) if format is None else format
    if fmt not in FORMATS:
        raise ValueError(f"expected format to be one of {', '.join(FORMATS)}, got {fmt!r}")
    if split not in ("train", "valid", "test", None):
        raise ValueError(f"expected split to be 'train', 'valid', 'test' or None, got {split!r}")
    if val_fraction is not None and not (
        isinstance(val_fraction, float | int) and 0.0 < val_fraction < 1.0
    ):
        raise ValueError(f"expected val_fraction in (0, 1), got {val_fraction!r}")
    if path.is_dir():
        if fmt != "well":
            raise ValueError(f"{path} is a folder; format {fmt!r} reads a single file")
        if val_fraction is not None:
            raise ValueError(
                f"{path} is a Well dataset folder with its own train/valid/test splits; "
                "val_fraction (--val-fraction) splits a single file"
            )
        if split is None:
            raise ValueError(f"{path} is a dataset folder: expected split train, valid or test")
        return HDF5Dataset(path, split=split, n_steps_input=n_steps_input, n_steps_output=1)
    whole = _read_file(path, fmt, n_steps_input)
    if val_fraction is None:
        if split == "valid":
            raise ValueError(
                f"{path} is a single file with no validation split: hold out part of it with "
                "--val-fraction F, or name a validation file with --val-data"
            )
        if split == "test":
            logger.info("%s is a single file: its %d samples are the test split", path, len(whole))
        return whole
    if split is None:
        return whole
    if split == "test":
        raise ValueError(
            f"--val-fraction splits {path} into train and valid only; name a test file with "
            "--test-data"
        )
    train, valid = split_indices(_item_groups(whole), val_fraction, seed)
    logger.info(
        "%s: %d training and %d validation samples (val_fraction %g, seed %d)",
        path,
        len(train),
        len(valid),
        val_fraction,
        seed,
    )
    return Subset(whole, train if split == "train" else valid)


def split_indices(
    groups: np.ndarray, val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Item indices ``(train, valid)``: ``round(val_fraction * G)`` of the ``G`` groups held out.

    ``groups[i]`` is the group (sample or trajectory) of item ``i``; whole
    groups go to one side. The held-out groups are the first of a permutation
    drawn by ``torch.Generator().manual_seed(seed)``, so the split depends on
    ``seed`` and the number of groups only.

    Raises
    ------
    ValueError
        If either side would be empty.
    """
    labels, inverse = np.unique(groups, return_inverse=True)
    n_valid = round(val_fraction * len(labels))
    if not 0 < n_valid < len(labels):
        raise ValueError(
            f"expected --val-fraction to leave samples on both sides, got {val_fraction} of "
            f"{len(labels)} samples: {n_valid} for validation"
        )
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).numpy()
    held_out = np.zeros(len(labels), dtype=bool)
    held_out[order[:n_valid]] = True
    valid = held_out[inverse]
    return np.flatnonzero(~valid).tolist(), np.flatnonzero(valid).tolist()


def _item_groups(data: Dataset) -> np.ndarray:
    """Group label of each item: its trajectory for a time-dependent Well file, else itself."""
    n = len(data)
    if isinstance(data, HDF5Dataset) and not data.static:
        return np.arange(n) // data._starts_per_traj[0]
    return np.arange(n)


def _read_file(path: Path, fmt: str, n_steps_input: int) -> Dataset:
    """All samples of one file of layout ``fmt``."""
    if fmt == "well":
        return HDF5Dataset(path, n_steps_input=n_steps_input, n_steps_output=1)
    if fmt == "pdebench":
        return PDEBenchDarcy(path)
    if fmt == "pt":
        return _pairs(path, *_load_pt(path))
    if fmt == "npz":
        return _pairs(path, *_load_npz(path))
    return _pairs(path, *_load_npy_pair(path))


def _load_pt(path: Path) -> tuple[dict[str, Any], str]:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling arbitrary bytes can raise nearly any error
        raise ValueError(
            f"expected {path} to be a torch file of tensors 'x' and 'y', cannot read it "
            f"({type(err).__name__}); {ACCEPTED_LAYOUTS}"
        ) from None
    if not isinstance(content, dict):
        raise ValueError(
            f"{path}: unknown layout, found a {type(content).__name__}; {ACCEPTED_LAYOUTS}"
        )
    return content, "pt"


def _load_npz(path: Path) -> tuple[dict[str, Any], str]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}, "npz"
    except Exception as err:  # zipfile, pickle refusal, truncated members
        raise ValueError(
            f"{path}: cannot read as a NumPy .npz of arrays ({type(err).__name__}: {err})"
        ) from None


def _load_npy_pair(path: Path) -> tuple[dict[str, Any], str]:
    match = re.fullmatch(r"(?P<stem>.+)_(?P<side>[xy])\.npy", path.name)
    if match is None:
        raise ValueError(
            f"{path}: a .npy file holds one array; expected a pair NAME_x.npy + NAME_y.npy, "
            f"got the name {path.name!r}"
        )
    arrays = {}
    for side in ("x", "y"):
        member = path.with_name(f"{match['stem']}_{side}.npy")
        if not member.is_file():
            raise ValueError(f"{path}: expected its partner {member}, it does not exist")
        try:
            arrays[side] = np.load(member, allow_pickle=False)
        except Exception as err:  # bad header, pickle refusal, truncated data
            raise ValueError(
                f"{member}: cannot read as a NumPy .npy array ({type(err).__name__}: {err})"
            ) from None
    return arrays, "npy"


def _pairs(path: Path, content: dict[str, Any], kind: str) -> TensorDataset:
    """A ``TensorDataset`` of ``content["x"], content["y"]`` as ``(N, C, H, W)`` float32."""
    if not {"x", "y"} <= content.keys():
        raise ValueError(f"{path}: unknown layout, found {_describe(content)}; {ACCEPTED_LAYOUTS}")
    x, y = (_as_float32(path, name, content[name]) for name in ("x", "y"))
    if len(x) == 0:
        raise ValueError(f"{path}: expected at least one sample, got x of shape {tuple(x.shape)}")
    if len(x) != len(y) or x.shape[2:] != y.shape[2:]:
        raise ValueError(
            f"{path}: expected x (N, C_x, H, W) and y (N, C_y, H, W) with the same N and grid, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    logger.info("%s (%s): %d samples, x %s, y %s", path, kind, len(x), x.shape[1:], y.shape[1:])
    return TensorDataset(x, y)


def _as_float32(path: Path, name: str, value: object) -> Tensor:
    """One array of a file as an ``(N, C, H, W)`` float32 tensor (NaNs are left to training)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(
                f"{path}: expected {name!r} of a real or bool dtype, got {value.dtype}"
            )
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, Tensor):
        raise ValueError(f"{path}: expected {name!r} to be an array, got {type(value).__name__}")
    if value.is_complex():
        raise ValueError(f"{path}: expected {name!r} of a real or bool dtype, got {value.dtype}")
    if value.dim() not in (3, 4):
        raise ValueError(
            f"{path}: expected {name!r} of shape (N, H, W) or (N, C, H, W), "
            f"got {tuple(value.shape)}"
        )
    value = value.to(torch.float32)
    return value.unsqueeze(1) if value.dim() == 3 else value


def _describe(content: dict[str, Any]) -> str:
    """``key (shape), ...`` of a loaded mapping, for error messages."""
    if not content:
        return "no keys"
    parts = []
    for key, value in content.items():
        shape = getattr(value, "shape", None)
        parts.append(
            f"{key!r} {tuple(shape)}" if shape is not None else f"{key!r} ({type(value).__name__})"
        )
    return "keys " + ", ".join(parts)


def _describe_hdf5(f: h5py.File) -> str:
    """``key (shape), ...`` of an HDF5 file's top level (groups marked), for error messages."""
    if not f.keys():
        return "no keys"
    return "keys " + ", ".join(
        f"{key!r} {f[key].shape}" if isinstance(f[key], h5py.Dataset) else f"{key!r} (group)"
        for key in f
    )


def _open_hdf5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(
            f"{path}: cannot open as HDF5 (truncated or corrupt file?): {err}"
        ) from None


def _beta_from_name(path: Path) -> float | None:
    """PDEBench's forcing ``beta`` from a name such as ``2D_DarcyFlow_beta0.1_Train.hdf5``.

    ``None`` when no part of the name (between ``_``) starts with ``beta``;
    a ``beta`` part that is not a finite number (``beta1.0.0``, ``betanan``,
    ``betaX``, a bare ``beta``) is an error naming the file, not the default
    forcing 1.
    """
    found = re.search(r"(?:^|_)beta(.*?)(?:_|\.hdf5$|\.h5$)", path.name)
    if found is None:
        return None
    try:
        beta = float(found[1])
    except ValueError:
        beta = math.nan
    if not math.isfinite(beta):
        raise ValueError(
            f"{path}: expected PDEBench's forcing as a finite number after 'beta' in the file "
            f"name (2D_DarcyFlow_beta1.0_Train.hdf5), got {found[1]!r}; rename the file"
        )
    return beta


class PDEBenchDarcy(Dataset):
    """Pairs ``(nu, u)`` of a PDEBench 2D Darcy file, read lazily: one sample per item.

    PDEBench (Takamoto et al., NeurIPS 2022 Datasets and Benchmarks) stores
    ``-div(nu grad u) = beta`` on the unit square, ``u = 0`` on the boundary,
    with ``beta`` in the file name (``2D_DarcyFlow_beta1.0_Train.hdf5``), as
    ``nu`` ``(N, H, W)``, ``tensor`` ``(N, T, H, W)`` (``T = 1``: the steady
    state), and cell-centre coordinates ``x-coordinate`` ``(H,)`` (axis 1)
    and ``y-coordinate`` ``(W,)`` (axis 2).

    Attributes
    ----------
    coordinates
        ``(x, y)`` float64 arrays of the file.
    beta
        The forcing read from the file name (``None`` if it names none).

    Raises
    ------
    ValueError
        For missing keys, shapes that disagree, or a non-real dtype.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with _open_hdf5(self.path) as f:
            missing = [key for key in _PDEBENCH_KEYS if key not in f]
            if missing:
                raise ValueError(
                    f"{self.path}: unknown layout, missing {missing} of PDEBench's Darcy keys; "
                    f"found {_describe_hdf5(f)}; {ACCEPTED_LAYOUTS}"
                )
            nu, u = f["nu"], f["tensor"]
            xc, yc = (
                np.asarray(f["x-coordinate"], np.float64),
                np.asarray(f["y-coordinate"], np.float64),
            )
            if (
                len(nu.shape) != 3
                or len(u.shape) != 4
                or u.shape[0] != nu.shape[0]
                or u.shape[2:] != nu.shape[1:]
                or xc.shape != nu.shape[1:2]
                or yc.shape != nu.shape[2:3]
            ):
                raise ValueError(
                    f"{self.path}: expected PDEBench's nu (N, H, W), tensor (N, T, H, W), "
                    f"x-coordinate (H,), y-coordinate (W,), got {_describe_hdf5(f)}"
                )
            for key in ("nu", "tensor"):
                if f[key].dtype.kind not in "biuf":
                    raise ValueError(
                        f"{self.path}: expected {key!r} of a real dtype, got {f[key].dtype}"
                    )
            self._n = nu.shape[0]
        self.coordinates = (xc, yc)
        self.beta = _beta_from_name(self.path)
        self._handle: h5py.File | None = None
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not -self._n <= index < self._n:
            raise IndexError(f"index {index} out of range for a dataset of {self._n} items")
        f = self._file()
        x = torch.from_numpy(np.asarray(f["nu"][index], dtype=np.float32))[None]
        y = torch.from_numpy(np.asarray(f["tensor"][index, -1], dtype=np.float32))[None]
        return x, y

    def _file(self) -> h5py.File:
        """This process's read handle (opened again after a fork, for DataLoader workers)."""
        if self._handle is None or self._pid != os.getpid():
            self._handle = _open_hdf5(self.path)
            self._pid = os.getpid()
        return self._handle

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        return state

    def __repr__(self) -> str:
        return f"PDEBenchDarcy({str(self.path)!r}, items={self._n}, beta={self.beta})"
