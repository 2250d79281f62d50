"""SHA-256 checksums of a generated dataset: recorded when written, verified on request.

``irsolve data generate`` writes ``<dataset>/SHA256SUMS`` (the format of GNU
``sha256sum``, so ``cd <dataset> && sha256sum -c SHA256SUMS`` checks it too)
over every ``.hdf5`` file and ``stats.yaml``; ``irsolve data info --verify``
recomputes them (:func:`verify_checksums`) and every load checks the files it
reads (:func:`check_read_files`). HDF5 files carry no checksum of their data,
so a flipped byte in a field would otherwise load silently.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = [
    "CHECKSUM_FILE",
    "check_read_files",
    "read_checksums",
    "verify_checksums",
    "write_checksums",
]

#: Name of the checksum file inside a dataset folder.
CHECKSUM_FILE = "SHA256SUMS"

_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _covered(folder: Path) -> list[str]:
    """The files a checksum covers: ``data/*/*.hdf5`` and ``stats.yaml``, relative, sorted."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.glob("data/*/*.hdf5"))
    return files + (["stats.yaml"] if (folder / "stats.yaml").is_file() else [])


def write_checksums(folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/SHA256SUMS`` over the dataset's files; return its path."""
    folder = Path(folder)
    lines = [f"{_sha256(folder / name)}  {name}\n" for name in _covered(folder)]
    path = folder / CHECKSUM_FILE
    path.write_text("".join(lines))
    return path


def read_checksums(folder: str | os.PathLike[str]) -> dict[str, str] | None:
    """``{relative path: sha256}`` of ``folder/SHA256SUMS``, or ``None`` when it has none.

    Raises
    ------
    ValueError
        If a line is not ``<64 hex digits>  <relative path>`` or names a path outside
        the folder.
    """
    listing = Path(folder) / CHECKSUM_FILE
    if not listing.is_file():
        return None
    expected = {}
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        parts = Path(name).parts
        if len(digest) != 64 or not name or Path(name).is_absolute() or ".." in parts:
            raise ValueError(
                f"{listing}:{number}: expected '<sha256>  <relative path>', got {line[:80]!r}"
            )
        expected[name] = digest.lower()
    return expected


def verify_checksums(folder: str | os.PathLike[str]) -> list[str]:
    """Check a dataset folder against its ``SHA256SUMS``; return one line per problem.

    A problem is a listed file that is missing or whose SHA-256 differs, or a
    data file that is not listed. An empty list means every file matches.

    Raises
    ------
    FileNotFoundError
        If ``folder`` has no ``SHA256SUMS`` (datasets written before irsolve
        recorded checksums, or not by irsolve).
    ValueError
        As :func:`read_checksums`.
    """
    folder = Path(folder)
    expected = read_checksums(folder)
    if expected is None:
        raise FileNotFoundError(
            f"{folder} has no {CHECKSUM_FILE}: nothing to verify against (datasets written by "
            "irsolve data generate record one)"
        )
    problems = []
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(path) != digest:
            problems.append(f"{name}: SHA-256 differs from {CHECKSUM_FILE} (modified or damaged)")
    unlisted = sorted(set(_covered(folder)) - expected.keys())
    problems += [f"{name}: not in {CHECKSUM_FILE}" for name in unlisted]
    return problems


def check_read_files(folder: str | os.PathLike[str], paths: list[Path]) -> bool:
    """Check the files about to be read (``paths``, inside ``folder``) against
    ``folder/SHA256SUMS``; ``False`` when the folder has none (nothing to check).

    Raises
    ------
    ValueError
        When a file's SHA-256 differs from the listed one, or it is not listed.
    """
    folder = Path(folder)
    expected = read_checksums(folder)
    if expected is None:
        return False
    for path in paths:
        name = Path(path).resolve().relative_to(folder.resolve()).as_posix()
        if name not in expected:
            raise ValueError(f"{path}: not in {folder / CHECKSUM_FILE}; regenerate the dataset")
        if _sha256(Path(path)) != expected[name]:
            raise ValueError(
                f"{path}: its SHA-256 differs from {folder / CHECKSUM_FILE} (modified or "
                "damaged since it was written); regenerate the dataset"
            )
    return True
