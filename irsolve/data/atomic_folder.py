"""Build a folder under a hidden name and swap it in, so a kill never leaves half of one.

A dataset ``<root>/<name>`` is built in a hidden work folder beside it,
``<root>/.<name>.irsolve-<host>-<pid>-<token>.tmp``, and published by renames
on the same file system (:func:`publish`):

1. ``<name>`` -> ``.<name>.irsolve-<host>-<pid>-<token>.trash`` (only when
   replacing an existing dataset),
2. the ``.tmp`` folder -> ``<name>``,
3. the ``.trash`` folder is deleted.

Each rename is atomic (POSIX ``rename(2)``), so after a kill ``<name>`` holds
either the complete old or the complete new dataset, except between steps 1
and 2, where it is absent and both complete datasets sit under their hidden
names. :func:`clean_interrupted`, which every writer runs first, puts such an
old dataset back, then deletes the work folders of processes that are gone.

The files are flushed to disk (``fsync``) before the renames and the parent
folder after them, so the order also holds across a power cut. Every write,
rename and delete goes through :func:`check_direct_child`: the
path must be a direct child of the resolved parent folder, so no name, ``..``
or symbolic link can make it act outside that folder.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

__all__ = [
    "check_direct_child",
    "check_folder_name",
    "check_replaceable",
    "clean_interrupted",
    "is_work_folder",
    "new_work_folder",
    "prepare_parent",
    "publish",
    "remove_work_folder",
]

logger = logging.getLogger(__name__)

#: Work folder names: ``.<name>.irsolve-<host>-<pid>-<token>.<tmp|trash>``.
_WORK_NAME = re.compile(
    r"\.(?P<name>.+)\.irsolve-(?P<host>[A-Za-z0-9]*)-(?P<pid>[0-9]+)-(?P<token>[0-9a-f]{8})"
    r"\.(?P<kind>tmp|trash)"
)

#: Temporary folders of irsolve before work folders carried their owner
#: (``tempfile.mkdtemp(prefix=".<name>.", suffix=".tmp")``): reported, never deleted.
_LEGACY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


#: Files of a dataset folder, relative: anything else in it is a user's and is never deleted.
_DATASET_FILE = re.compile(r"stats\.yaml|SHA256SUMS|data/(train|valid|test)/[^/]+\.hdf5")


#: Longest dataset name: its work folder name must stay within NAME_MAX = 255 bytes.
_MAX_NAME_BYTES = 200


def _host() -> str:
    """This machine's name reduced to ``[A-Za-z0-9]`` (work folders record their owner's host)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def check_folder_name(name: object, argument: str = "name") -> str:
    """Return ``name`` if it is one plain, visible path component, else raise.

    Parameters
    ----------
    name
        Candidate folder name.
    argument
        What to call ``name`` in the error message (e.g. ``"--name"``).

    Raises
    ------
    ValueError
        If ``name`` is not a string, is empty, ``.`` or ``..``, contains a path
        separator or a NUL byte, or starts with ``.`` (hidden names are kept
        for work folders), e.g. ``expected name to be a single folder name
        without '/' (not '.', '..' or hidden), got '../x'``; or if it is
        longer than 200 bytes.
    """
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or name.startswith(".")
        or "\0" in name
        or any(s in name for s in separators)
    ):
        raise ValueError(
            f"expected {argument} to be a single folder name without '/' "
            f"(not '.', '..' or hidden), got {name!r}"
        )
    if len(os.fsencode(name)) > _MAX_NAME_BYTES:
        raise ValueError(
            f"expected {argument} of at most {_MAX_NAME_BYTES} bytes (work folders add "
            f"about 40 to it, file systems allow 255), got {len(os.fsencode(name))}"
        )
    return name


def prepare_parent(root: str | os.PathLike[str], argument: str = "root") -> Path:
    """Create ``root`` if missing and return its resolved path (symbolic links followed).

    Raises
    ------
    NotADirectoryError
        If ``root`` (or a folder above it) exists and is not a directory.
    OSError
        If ``root`` cannot be created (e.g. ``PermissionError``).
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(
            f"expected {argument} to be a directory or a path to create, got existing file {root}"
        )
    root.mkdir(parents=True, exist_ok=True)
    return Path(os.path.realpath(root))


def check_direct_child(root: Path, path: Path) -> Path:
    """Return ``path`` if it is a direct child of the resolved folder ``root``, else raise.

    The parent of ``path`` is resolved again (symbolic links followed) on
    every call, so a folder swapped for a link since :func:`prepare_parent`
    is caught; the last component is not followed, so a link named like a
    dataset is renamed or unlinked, never its target.

    Raises
    ------
    RuntimeError
        If ``path`` would lie outside ``root``.
    """
    if path.name in ("", ".", "..") or Path(os.path.realpath(path.parent)) != root:
        raise RuntimeError(f"refusing to write or delete {path}: it is not directly inside {root}")
    return path


def is_work_folder(name: str) -> bool:
    """Whether ``name`` is a work folder of :func:`new_work_folder` (or of older irsolve)."""
    return bool(_WORK_NAME.fullmatch(name) or _LEGACY_NAME.fullmatch(name))


def new_work_folder(root: Path, name: str) -> Path:
    """Create and return the hidden folder ``<root>/.<name>.irsolve-<host>-<pid>-<token>.tmp``.

    ``root`` must come from :func:`prepare_parent` and ``name`` pass
    :func:`check_folder_name`. The folder gets the usual permissions
    (``0o777`` less the umask), as the dataset it becomes should.
    """
    check_folder_name(name)
    work = root / f".{name}.irsolve-{_host()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    os.mkdir(check_direct_child(root, work))
    return work


def _foreign_files(destination: Path) -> list[str]:
    """Files under ``destination`` that a dataset does not hold (see :data:`_DATASET_FILE`)."""
    found = []
    for parent, folders, files in os.walk(destination):  # links to folders are not entered
        here = Path(parent).relative_to(destination)
        links = [f for f in folders if os.path.islink(os.path.join(parent, f))]
        found += [
            (here / name).as_posix()
            for name in sorted(files + links)
            if not _DATASET_FILE.fullmatch((here / name).as_posix())
        ]
    return sorted(found)


def check_replaceable(destination: Path) -> None:
    """Raise unless ``destination`` is something an overwrite may delete.

    That is: a real directory (not a symbolic link) that is empty, or holds a
    ``data/`` folder and no file but what a dataset holds
    (``data/<split>/*.hdf5``, ``stats.yaml``, ``SHA256SUMS``). An unrelated
    folder, a file that happens to carry the dataset's name, and a dataset
    with a user's own files inside (notes, plots) are kept.

    Raises
    ------
    FileExistsError
        Naming ``destination`` and why it is kept (the first foreign files).
    """
    if destination.is_symlink() or not destination.is_dir():
        raise FileExistsError(
            f"{destination} exists and is not a dataset folder (a file or a link); not replacing it"
        )
    if not (destination / "data").is_dir() and any(destination.iterdir()):
        raise FileExistsError(
            f"{destination} exists and is not a dataset folder (no data/ inside); not replacing it"
        )
    foreign = _foreign_files(destination)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        shown = ", ".join(foreign[:5]) + more
        raise FileExistsError(
            f"{destination} holds files a dataset does not ({shown}); not replacing it: move "
            "them out first"
        )


def publish(work: Path, root: Path, name: str, *, overwrite: bool) -> Path:
    """Move the finished work folder to ``<root>/<name>``, replacing an old one atomically.

    Parameters
    ----------
    work
        A folder from :func:`new_work_folder`, complete.
    root, name
        Parent folder (from :func:`prepare_parent`) and final name.
    overwrite
        Replace an existing ``<root>/<name>`` (which must pass
        :func:`check_replaceable`): rename it to the ``.trash`` twin of
        ``work``, rename ``work`` to ``name``, then delete the trash.

    Returns
    -------
    Path
        ``<root>/<name>``.

    Raises
    ------
    FileExistsError
        If ``<root>/<name>`` exists and ``overwrite`` is false or it is not
        replaceable.
    """
    destination = check_direct_child(root, root / check_folder_name(name))
    check_direct_child(root, work)
    _sync(work)
    if not os.path.lexists(destination):
        os.rename(work, destination)
        _sync_folder(root)
        return destination
    if not overwrite:
        raise FileExistsError(f"{destination} exists; pass overwrite=True to replace it")
    check_replaceable(destination)
    trash = check_direct_child(root, work.with_name(work.name.removesuffix(".tmp") + ".trash"))
    os.rename(destination, trash)
    try:
        os.rename(work, destination)
    except BaseException:
        os.rename(trash, destination)
        raise
    _sync_folder(root)
    remove_work_folder(root, trash)
    return destination


def _sync(folder: Path) -> None:
    """``fsync`` every file and folder under ``folder``, so its data reach the disk first.

    Without it a power cut soon after :func:`publish` could leave the renames
    on disk but the files' data not (POSIX; a no-op elsewhere).
    """
    if os.name != "posix":
        return
    for parent, _, files in os.walk(folder, topdown=False):
        for file in files:
            fd = os.open(os.path.join(parent, file), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _sync_folder(Path(parent))


def _sync_folder(folder: Path) -> None:
    """``fsync`` one folder's entries (POSIX only: Windows cannot open a folder)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_work_folder(root: Path, work: Path) -> None:
    """Delete a work folder of ``root`` (a direct child with a work-folder name)."""
    check_direct_child(root, work)
    if not _WORK_NAME.fullmatch(work.name):
        raise RuntimeError(f"refusing to delete {work}: not a work folder name")
    shutil.rmtree(work, ignore_errors=True)
    if os.path.lexists(work):
        logger.warning("could not delete all of %s; delete it by hand", work)


def _owner_is_gone(host: str, pid: int) -> bool:
    """Whether process ``pid`` of ``host`` has ended (``False`` when that cannot be told).

    Only processes of this host are checked, with ``kill(pid, 0)``, which
    sends no signal; on other hosts (a shared file system) and on Windows,
    where ``os.kill`` would terminate the process, the owner counts as alive.
    A reused pid keeps a stale folder alive, which errs on the safe side.
    """
    if os.name != "posix" or host != _host() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def clean_interrupted(root: Path) -> list[Path]:
    """Finish what killed writers left in ``root``; return the folders removed or restored.

    For every work folder whose owner process is gone (see
    :func:`_owner_is_gone`), in this order:

    - a ``.trash`` folder whose ``.tmp`` twin still exists was renamed in
      step 1 of :func:`publish` and not yet replaced: it is the complete old
      dataset and is renamed back to ``<name>`` when that name is free;
    - any other ``.trash`` folder and every ``.tmp`` folder are deleted.

    Folders of live processes, of other hosts, and temporary folders of
    older irsolve versions (``.<name>.XXXXXXXX.tmp``, whose owner is not
    recorded) are left alone; the last are logged as a warning.
    """
    touched: list[Path] = []
    stale = []
    for entry in sorted(root.iterdir()):
        match = _WORK_NAME.fullmatch(entry.name)
        if match is None:
            if _LEGACY_NAME.fullmatch(entry.name) and entry.is_dir():
                logger.warning(
                    "left %s alone: a temporary folder of an older irsolve with no owner recorded; "
                    "delete it by hand if no run is writing it",
                    entry,
                )
            continue
        if entry.is_dir() and not entry.is_symlink():
            if _owner_is_gone(match["host"], int(match["pid"])):
                stale.append((match, entry))
    for match, entry in sorted(stale, key=lambda item: item[0]["kind"] != "trash"):
        destination = root / match["name"]
        twin = entry.with_name(entry.name.removesuffix(".trash") + ".tmp")
        if match["kind"] == "trash" and twin.is_dir() and not os.path.lexists(destination):
            try:
                os.rename(check_direct_child(root, entry), check_direct_child(root, destination))
            except FileNotFoundError:  # another run restored it first
                continue
            logger.warning(
                "restored %s from %s (a run was killed while replacing it)", destination, entry
            )
        else:
            remove_work_folder(root, entry)
            logger.warning("removed %s (left by a killed run)", entry)
        touched.append(entry)
    return touched
