"""Checkpoints: state dicts plus a JSON config, committed as a set, loaded with ``weights_only``.

A checkpoint file ``name.pt`` holds plain containers of tensors and numbers
(model, optimiser and scheduler state dicts, epoch, RNG states, history and
the JSON-able config); ``name.json`` beside it repeats the config and the
epoch summary for people and tools.

A training run writes several such files per epoch (``last`` and, when the
epoch improved, ``best``). :func:`commit_checkpoints` makes them one
consistent set, in three steps:

1. each file is written in full under a staged name (``last.pt.next``),
   through a temporary file that is flushed and renamed;
2. ``manifest.json`` is replaced atomically: it names every file of the set
   with its size, SHA-256 and epoch, the entries of files not rewritten this
   epoch carried over. This rename is the commit point;
3. the staged files are renamed over the old ones.

A kill before step 2 leaves the previous set and its manifest intact (the
staged files are discarded by :func:`recover_checkpoints`); a kill during
step 3 leaves staged files that match the manifest, which
:func:`recover_checkpoints` renames into place. :func:`load_checkpoint` and
:func:`load_summary` check a file against the manifest of its folder, so a
stale ``best.pt`` or a summary one epoch behind is an error, never read
silently.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "DIGEST",
    "MANIFEST",
    "CheckpointError",
    "commit_checkpoints",
    "load_checkpoint",
    "load_model_state",
    "load_summary",
    "model_state",
    "payload_digest",
    "read_manifest",
    "recover_checkpoints",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

#: Name of the file that lists the consistent set of a checkpoint folder.
MANIFEST = "manifest.json"
_STAGED = ".next"
_TEMP = ".tmp"
_FORMAT = 1
_LISTED = 8
_CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.(pt|json)")


class CheckpointError(ValueError):
    """A checkpoint file or folder that is damaged, inconsistent or of another kind."""


def model_state(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict restricted to tensors (drops e.g. neuraloperator's ``_metadata``)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if isinstance(v, Tensor)}


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown + (f", ... ({len(keys) - _LISTED} more)" if len(keys) > _LISTED else "")


def load_model_state(
    model: nn.Module, state: dict[str, Tensor], source: str = "checkpoint"
) -> None:
    """Load ``state`` into ``model``, or raise naming the mismatched keys.

    Raises
    ------
    ValueError
        When keys are missing, unexpected, or have other shapes (a checkpoint
        of another architecture): the message gives the count of each kind
        and lists the first eight of each, sorted.
    """
    own = model_state(model)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or reshaped:
        parts = [
            f"{label} ({len(keys)}): {_listing(keys)}"
            for label, keys in (
                ("missing in the checkpoint", missing),
                ("unexpected in the checkpoint", unexpected),
                ("shape checkpoint vs model", reshaped),
            )
            if keys
        ]
        raise ValueError(
            f"{source} does not match {type(model).__name__}'s architecture; " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=False)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, rename it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:  # disk full, no permission: name the file being written
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: The payload key of a checkpoint's own checksum (see :func:`payload_digest`).
DIGEST = "sha256"


def payload_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 over a payload's content, its :data:`DIGEST` key left out: keys in sorted
    order, each tensor's dtype, shape and bytes, every other value's ``repr``. Stored in
    the checkpoint itself, so a file damaged after writing is found even with no
    manifest beside it (a flipped bit in a weight changes the digest)."""
    hasher = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            hasher.update(f"T{value.dtype}{tuple(value.shape)}".encode())
            hasher.update(flat.view(torch.uint8).numpy().tobytes())
        elif isinstance(value, Mapping):
            hasher.update(b"{")
            for key in sorted(value, key=str):
                if value is not payload or key != DIGEST:
                    hasher.update(repr(key).encode())
                    feed(value[key])
            hasher.update(b"}")
        elif isinstance(value, (list, tuple)):
            hasher.update(b"[")
            for item in value:
                feed(item)
            hasher.update(b"]")
        else:
            hasher.update(repr(value).encode())

    feed(payload)
    return hasher.hexdigest()


def _torch_bytes(payload: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save({**payload, DIGEST: payload_digest(payload)}, buffer)
    return buffer.getvalue()


def _check_digest(path: Path, state: dict[str, Any]) -> None:
    """Refuse a checkpoint whose content differs from its stored :func:`payload_digest`,
    and a model checkpoint without one (not written by this irsolve)."""
    stored = state.get(DIGEST)
    if stored is None:
        if "model" in state:
            raise CheckpointError(
                f"checkpoint {path} carries no checksum (written by another irsolve version "
                "or by hand); retrain it or resume from an older run"
            )
        return
    if stored != payload_digest(state):
        raise CheckpointError(
            f"checkpoint {path} is damaged (its content differs from the checksum stored in "
            "it: changed after it was written); delete it or resume from an older run"
        )


def _json_bytes(summary: Mapping[str, Any]) -> bytes:
    return (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()


def save_checkpoint(path: str | Path, payload: dict[str, Any], summary: dict[str, Any]) -> None:
    """Write one checkpoint: ``payload`` to ``path`` (``torch.save``), ``summary`` to ``path.json``.

    Each file is written atomically, but the two are not a set: a training
    run uses :func:`commit_checkpoints`. ``payload`` must hold only tensors,
    numbers, strings, ``None`` and lists/dicts of them, so that
    :func:`load_checkpoint` can read it with ``weights_only=True``;
    ``summary`` must be JSON-serialisable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, _torch_bytes(payload))
    _atomic_write(path.with_suffix(".json"), _json_bytes(summary))
    logger.debug("wrote checkpoint %s", path)


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    """The manifest of a checkpoint folder, or ``None`` when it has none.

    Raises
    ------
    CheckpointError
        When the manifest is not the JSON :func:`commit_checkpoints` writes.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        ok = manifest["format"] == _FORMAT and all(
            {"sha256", "bytes", "epoch"} <= entry.keys() for entry in files.values()
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise CheckpointError(
            f"checkpoint manifest {path} is damaged (expected the JSON file list irsolve "
            f"writes); delete the folder or resume from an older run"
        )
    for filename in files:
        _check_listed_name(path, filename)
    return manifest


def _check_listed_name(manifest: Path, filename: str) -> None:
    """Refuse a manifest entry that could reach outside its folder.

    A checkpoint folder may come from anyone (a shared drive, a download), and
    the names it lists are later read, renamed and deleted. Only the plain
    names :func:`commit_checkpoints` writes (``NAME.pt``, ``NAME.json``, no
    folder part, no leading dot) are accepted, and neither the file nor its
    staged copy (``NAME.pt.next``, which :func:`recover_checkpoints` hashes
    and renames into place) may be a symbolic link.
    """
    plain = (
        isinstance(filename, str)
        and _CHECKPOINT_NAME.fullmatch(filename) is not None
        and filename != MANIFEST
    )
    link = plain and (manifest.parent / filename).is_symlink()
    staged_link = plain and (manifest.parent / (filename + _STAGED)).is_symlink()
    if not plain or link or staged_link:
        if not plain:
            what = "not a plain checkpoint file name"
        elif link:
            what = "a symbolic link"
        else:
            what = f"whose staged copy {filename + _STAGED} is a symbolic link"
        raise CheckpointError(
            f"checkpoint manifest {manifest} lists {filename!r}, {what} (expected names "
            f"such as 'last.pt' inside {manifest.parent}); refusing to read, replace or "
            f"delete anything it names: delete the folder or train into another one"
        )


def commit_checkpoints(
    directory: str | Path,
    epoch: int,
    checkpoints: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]],
    *,
    fresh: bool = False,
) -> dict[str, Any]:
    """Write ``name.pt`` and ``name.json`` for each ``name -> (payload, summary)`` as one set.

    Files of the folder's previous set that are not rewritten (``best.pt`` in
    an epoch that did not improve) stay in the new manifest with their own
    epoch. See the module docstring for the order of writes that makes an
    interruption at any point leave one consistent set.

    Parameters
    ----------
    directory
        The checkpoint folder (created).
    epoch
        The epoch the written files hold (1-based), recorded per file.
    checkpoints
        ``{"last": (payload, summary), ...}``: payloads for ``torch.save``
        (tensors and plain containers only), JSON-serialisable summaries.
    fresh
        Start a new set: the previous set's files are not carried over, and
        those not rewritten are deleted once the new set is committed (the
        first epoch of a run that overwrites an old one).

    Returns
    -------
    dict
        The manifest written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(directory)
    files = dict(previous["files"]) if previous and not fresh else {}
    staged = []
    serialised: dict[int, bytes] = {}  # last and best of an improving epoch share one payload
    for name, (payload, summary) in checkpoints.items():
        if id(payload) not in serialised:
            serialised[id(payload)] = _torch_bytes(payload)
        for filename, data in (
            (f"{name}.pt", serialised[id(payload)]),
            (f"{name}.json", _json_bytes(summary)),
        ):
            _atomic_write(directory / (filename + _STAGED), data)
            files[filename] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "epoch": int(epoch),
            }
            staged.append(filename)
    manifest = {"format": _FORMAT, "epoch": int(epoch), "files": files}
    _atomic_write(directory / MANIFEST, _json_bytes(manifest))
    for filename in staged:
        os.replace(directory / (filename + _STAGED), directory / filename)
    for filename in set(previous["files"] if previous else ()) - set(files):
        (directory / filename).unlink(missing_ok=True)
        logger.info("deleted %s of the run this one replaces", directory / filename)
    logger.debug("committed checkpoints %s of epoch %d in %s", sorted(staged), epoch, directory)
    return manifest


def _matches(path: Path, entry: Mapping[str, Any]) -> bytes | None:
    """The bytes of ``path`` when its size and SHA-256 are those of ``entry``, else ``None``."""
    if not path.is_file() or path.stat().st_size != entry["bytes"]:
        return None
    data = path.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == entry["sha256"] else None


def _mismatch(path: Path, entry: Mapping[str, Any]) -> CheckpointError:
    if not path.is_file():
        found = "it is missing"
    elif path.stat().st_size != entry["bytes"]:
        found = f"it has {path.stat().st_size} bytes, the manifest {entry['bytes']}"
    else:
        found = "its SHA-256 differs from the manifest's: written by another epoch or changed"
    return CheckpointError(
        f"checkpoint {path} does not belong to the set of epoch {entry['epoch']} that "
        f"{path.parent / MANIFEST} lists ({found}); resume the run to rewrite it, or delete "
        f"the folder"
    )


def recover_checkpoints(directory: str | Path) -> dict[str, Any] | None:
    """Bring a checkpoint folder back to its last committed set; return its manifest.

    Staged files that the manifest lists (a run stopped after the commit
    point) are renamed into place; staged files it does not list (a run
    stopped before it) and half-written temporary files of this module are
    deleted. Every listed file is then checked.

    Raises
    ------
    CheckpointError
        When a listed file matches neither the manifest nor a staged copy.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    listed = manifest["files"] if manifest else {}
    for filename, entry in listed.items():
        path, staged = directory / filename, directory / (filename + _STAGED)
        if _matches(path, entry) is None:
            if _matches(staged, entry) is None:
                raise _mismatch(path, entry)
            os.replace(staged, path)
            logger.info("completed the interrupted commit of %s (epoch %d)", path, entry["epoch"])
    strays = [*directory.glob(f"*.pt{_STAGED}"), *directory.glob(f"*.json{_STAGED}")]
    strays += directory.glob(f".*{_STAGED}.*{_TEMP}")
    strays += [p for name in (*listed, MANIFEST) for p in directory.glob(f".{name}.*{_TEMP}")]
    for stray in strays:
        stray.unlink(missing_ok=True)
        logger.info("discarded %s, written by an epoch that was never committed", stray)
    return manifest


def _damage(path: Path, data: bytes, err: Exception) -> CheckpointError:
    if not data:
        what = "empty file"
    elif not data.startswith(b"PK\x03\x04"):
        what = "not a torch file"
    elif not zipfile.is_zipfile(io.BytesIO(data)):
        what = "truncated torch file"
    elif isinstance(err, pickle.UnpicklingError):
        what = "holds objects that weights-only loading refuses; it was not written by irsolve"
    else:
        what = f"unreadable torch file, {type(err).__name__}"
    return CheckpointError(
        f"checkpoint {path} is damaged ({what}); delete the folder or resume from an older run"
    )


def _verified_bytes(path: Path) -> bytes:
    """The bytes of ``path``, checked against its folder's manifest when that lists it."""
    if not path.is_file():
        raise FileNotFoundError(f"expected a checkpoint file at {path}, found none")
    manifest = read_manifest(path.parent)
    entry = manifest["files"].get(path.name) if manifest else None
    if entry is None:
        return path.read_bytes()
    data = _matches(path, entry)
    if data is None:
        data = _matches(path.with_name(path.name + _STAGED), entry)
    if data is None:
        raise _mismatch(path, entry)
    return data


def load_summary(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint's JSON summary (``last.json``), checked against its manifest.

    Raises
    ------
    FileNotFoundError, CheckpointError
        As :func:`load_checkpoint`; a summary of another epoch than its set's
        is a :class:`CheckpointError`.
    """
    path = Path(path)
    try:
        summary = json.loads(_verified_bytes(path))
    except ValueError as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(
            f"checkpoint summary {path} is damaged (not JSON); delete the folder or resume "
            "from an older run"
        ) from None
    return summary


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint file with ``torch.load(weights_only=True)``, checked against its manifest.

    When the file's folder has a ``manifest.json`` listing it, the file must
    have the size and SHA-256 recorded there (or a staged copy must, when a
    commit was interrupted after its commit point).

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file.
    CheckpointError
        When the file is damaged (empty, truncated, not a torch file, holds
        objects other than tensors and plain containers, its content differs
        from the checksum stored in it, a model without one) or is not the
        one its manifest lists (a stale ``best.pt``).
    """
    path = Path(path)
    data = _verified_bytes(path)
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling arbitrary bytes can raise nearly any error
        raise _damage(path, data, err) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {path} is damaged (expected a dict of states, got "
            f"{type(state).__name__}); delete the folder or resume from an older run"
        )
    _check_digest(path, state)
    state.pop(DIGEST, None)
    return state
