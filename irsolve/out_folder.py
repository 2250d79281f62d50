"""The folder a command writes (``--out``): one writer at a time, nothing replaced unasked.

:func:`locked` holds ``<folder>/.irsolve-lock`` for the duration of a
command. The lock is an advisory ``flock`` on that file, which records the
owner's host and pid for the message a second writer gets; the kernel drops
the ``flock`` when its process ends, however it ends, so the lock of a
killed run is stale at once and the next run takes it over (and logs so).
:func:`irsolve.cli.main` takes it for every command that has ``--out``, in
that one place.

:func:`check_replaceable_outputs` is the rule of the training commands
(``--resume`` or ``--overwrite`` before anything is replaced) for commands
that write named files, such as ``irsolve analyze``'s report.

POSIX only (``fcntl``); elsewhere :func:`locked` does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None

__all__ = ["LOCK_NAME", "FolderInUseError", "check_replaceable_outputs", "locked"]

logger = logging.getLogger(__name__)

#: Name of the lock file inside the locked folder.
LOCK_NAME = ".irsolve-lock"


class FolderInUseError(OSError):
    """Another live process holds the lock of the folder."""


def _owner(lock: Path) -> str:
    """``process PID on HOST`` as the lock records it (``an unknown process`` if unreadable)."""
    try:
        host, pid = lock.read_text().split()
        return f"process {int(pid)} on {host}"
    except (OSError, ValueError):
        return "an unknown process"


def _acquire(lock: Path, flag: str) -> int:
    """Open ``lock``, ``flock`` it and write this process's host and pid; return the descriptor.

    After the ``flock`` the descriptor is checked to still be the file named
    ``lock`` (a releasing owner unlinks it), else the attempt is repeated.
    """
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUseError(
                f"{flag} {lock.parent} is in use by {_owner(lock)} (lock {lock}); wait for that "
                "run to end or choose another folder"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _owner(lock) if os.fstat(fd).st_size else None
    if previous is not None:
        logger.warning("took over the stale lock %s of %s, which has ended", lock, previous)
    os.ftruncate(fd, 0)
    os.write(fd, f"{socket.gethostname() or 'unknown'} {os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def locked(folder: str | os.PathLike[str] | None, flag: str = "--out") -> Iterator[Path | None]:
    """Hold the lock of ``folder`` inside the ``with`` block; yield the lock file's path.

    ``folder`` is created if missing (and removed again afterwards if it is
    then empty, so a refused command leaves nothing behind). Nothing is
    locked, and ``None`` yielded, for ``folder=None``, for an existing
    non-folder or one that cannot be created (the command itself reports
    those, naming its flag), and where ``fcntl`` is missing.

    Parameters
    ----------
    folder
        The output folder.
    flag
        What to call it in the error (``--out``).

    Raises
    ------
    FolderInUseError
        If a live process holds the lock: one line naming the folder, that
        process and the lock file.
    """
    if folder is None or fcntl is None or (os.path.lexists(folder) and not Path(folder).is_dir()):
        yield None
        return
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # below a file, no permission: the command names the flag
        yield None
        return
    lock = folder / LOCK_NAME
    try:
        fd = _acquire(lock, flag)
    except BaseException:
        _remove_if_empty(folder, created)
        raise
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)  # while still held: see _acquire
        os.close(fd)
        _remove_if_empty(folder, created)


def check_is_folder(folder: str | os.PathLike[str] | None, flag: str = "--out") -> None:
    """Refuse an output ``folder`` that exists as something else than a folder.

    Raises
    ------
    ValueError
        One line: ``expected --out to be a folder, got the file X``.
    """
    if folder is not None and os.path.lexists(folder) and not Path(folder).is_dir():
        raise ValueError(f"expected {flag} to be a folder, got the file {folder}")


def _remove_if_empty(folder: Path, created: bool) -> None:
    """Remove ``folder`` if this process created it and it is empty."""
    if created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def check_replaceable_outputs(
    folder: str | os.PathLike[str], names: Iterable[str], *, overwrite: bool
) -> None:
    """Raise unless none of the files ``names`` exists in ``folder``, or ``overwrite`` is set.

    Raises
    ------
    FileExistsError
        ``--out runs/a holds report.md, report.json from an earlier run; pass --overwrite to
        replace them, or choose another folder``.
    """
    found = [name for name in names if os.path.lexists(Path(folder) / name)]
    if found and not overwrite:
        raise FileExistsError(
            f"--out {folder} holds {', '.join(found)} from an earlier run; pass --overwrite to "
            "replace them, or choose another folder"
        )
