"""Hidden work folders, the rename swap and the clean-up of killed runs' folders."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from irsolve.data.atomic_folder import (
    _host,
    check_direct_child,
    check_folder_name,
    clean_interrupted,
    is_work_folder,
    new_work_folder,
    prepare_parent,
    publish,
)
from irsolve.data.well_format import WellDatasetWriter

#: The owner check of killed runs' folders (``kill(pid, 0)``) is POSIX only.
POSIX = pytest.mark.skipif(os.name != "posix", reason="owner check needs POSIX kill(pid, 0)")


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped (so ``kill(pid, 0)`` fails)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _work_folder(root: Path, name: str, pid: int, kind: str = "tmp") -> Path:
    """A work folder named as :func:`new_work_folder` names them, owned by ``pid``."""
    folder = root / f".{name}.irsolve-{_host()}-{pid}-0123abcd.{kind}"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "marker").write_text(kind)
    return folder


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "/abs", ".hidden", "a\0b", 3, None])
def test_check_folder_name_rejects_everything_but_one_plain_visible_component(
    name: object,
) -> None:
    with pytest.raises(ValueError, match="expected name to be a single folder name"):
        check_folder_name(name)


def test_check_folder_name_keeps_work_folder_names_within_name_max() -> None:
    assert check_folder_name("a" * 200) == "a" * 200
    with pytest.raises(ValueError, match="at most 200 bytes"):
        check_folder_name("é" * 101)  # 202 bytes in UTF-8


def test_check_folder_name_accepts_plain_names_with_dots_and_dashes() -> None:
    for name in ("darcy", "ns-64.v2", "a..b", "x_1"):
        assert check_folder_name(name) == name


def test_prepare_parent_rejects_an_existing_file_and_resolves_links(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="got existing file"):
        prepare_parent(tmp_path / "file")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert prepare_parent(tmp_path / "link") == Path(os.path.realpath(tmp_path / "real"))


def test_check_direct_child_refuses_paths_that_leave_the_folder(tmp_path: Path) -> None:
    root = prepare_parent(tmp_path / "out")
    assert check_direct_child(root, root / "darcy") == root / "darcy"
    for bad in (root / "..", root / "a" / "b", tmp_path / "elsewhere", root / "."):
        with pytest.raises(RuntimeError, match="not directly inside"):
            check_direct_child(root, bad)
    # A parent swapped for a link after resolution is caught at use.
    (tmp_path / "other").mkdir()
    os.rename(root, tmp_path / "moved")
    (tmp_path / "out").symlink_to(tmp_path / "other")
    with pytest.raises(RuntimeError, match="not directly inside"):
        check_direct_child(root, root / "darcy")


def test_new_work_folder_is_hidden_recognised_and_not_owner_only(tmp_path: Path) -> None:
    root = prepare_parent(tmp_path)
    work = new_work_folder(root, "darcy")
    assert work.parent == root and work.name.startswith(".darcy.irsolve-")
    assert is_work_folder(work.name) and not is_work_folder("darcy")
    umask = os.umask(0)
    os.umask(umask)
    assert work.stat().st_mode & 0o777 == 0o777 & ~umask


def test_publish_replaces_a_dataset_and_leaves_no_work_folder(tmp_path: Path) -> None:
    root = prepare_parent(tmp_path)
    (root / "darcy" / "data").mkdir(parents=True)
    (root / "darcy" / "stats.yaml").write_text("old")
    work = new_work_folder(root, "darcy")
    (work / "data").mkdir()
    (work / "new").write_text("new")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        publish(work, root, "darcy", overwrite=False)
    assert publish(work, root, "darcy", overwrite=True) == root / "darcy"
    assert sorted(p.name for p in (root / "darcy").iterdir()) == ["data", "new"]
    assert [p.name for p in root.iterdir()] == ["darcy"]


@pytest.mark.parametrize("kind", ["file", "folder", "link"])
def test_publish_keeps_a_non_dataset_that_carries_the_name(tmp_path: Path, kind: str) -> None:
    root = prepare_parent(tmp_path / "out")
    target = root / "notes"
    if kind == "file":
        target.write_text("keep")
    elif kind == "folder":
        target.mkdir()
        (target / "thesis.tex").write_text("keep")
    else:
        (tmp_path / "elsewhere" / "data").mkdir(parents=True)
        target.symlink_to(tmp_path / "elsewhere")
    work = new_work_folder(root, "notes")
    with pytest.raises(FileExistsError, match="not a dataset folder"):
        publish(work, root, "notes", overwrite=True)
    assert os.path.lexists(target) and (tmp_path / "out" / work.name).is_dir()
    if kind == "link":
        assert (tmp_path / "elsewhere" / "data").is_dir()


def test_writer_refuses_names_outside_root_before_touching_the_disk(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "sentinel").write_text("keep")
    for name in ("..", ".", "../sentinel", ""):
        with pytest.raises(ValueError, match="single folder name"):
            WellDatasetWriter(tmp_path / "out", name, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "sentinel"]
    assert not any((tmp_path / "out").iterdir())


def test_writer_overwrite_gives_the_new_dataset_with_open_permissions(tmp_path: Path) -> None:
    content = {
        "time": np.arange(1),
        "coords": {"x": np.arange(3), "y": np.arange(3)},
        "t0_fields": {"p": np.zeros((1, 1, 3, 3))},
    }
    for value in (1.0, 2.0):
        content["t0_fields"] = {"p": np.full((1, 1, 3, 3), value)}
        with WellDatasetWriter(tmp_path, "toy", overwrite=True) as writer:
            writer.write("train", "toy_train_000.hdf5", **content)
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]
    stats = (tmp_path / "toy" / "stats.yaml").read_text()
    assert "p: 2.0" in stats  # mean of the second write (exact: all values 2.0)
    assert (tmp_path / "toy").stat().st_mode & 0o077  # not mkdtemp's owner-only 0o700


@POSIX
def test_clean_interrupted_removes_dead_owners_folders_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead, alive = _dead_pid(), os.getppid()
    stale_tmp = _work_folder(tmp_path, "a", dead, "tmp")
    stale_trash = _work_folder(tmp_path, "b", dead, "trash")  # its dataset b was replaced
    (tmp_path / "b" / "data").mkdir(parents=True)
    live = _work_folder(tmp_path, "c", alive, "tmp")
    own = _work_folder(tmp_path, "d", os.getpid(), "tmp")
    other_host = tmp_path / f".e.irsolve-otherhost-{dead}-0123abcd.tmp"
    other_host.mkdir()
    legacy = tmp_path / ".f.ab12cd_9.tmp"
    legacy.mkdir()
    unrelated = tmp_path / ".git"
    unrelated.mkdir()
    with caplog.at_level(logging.WARNING, logger="irsolve.data.atomic_folder"):
        touched = clean_interrupted(tmp_path)
    assert sorted(touched) == sorted([stale_tmp, stale_trash])
    assert not stale_tmp.exists() and not stale_trash.exists()
    for kept in (live, own, other_host, legacy, unrelated, tmp_path / "b"):
        assert kept.is_dir(), kept
    assert f"removed {stale_tmp}" in caplog.text and f"left {legacy} alone" in caplog.text


@POSIX
def test_clean_interrupted_restores_the_old_dataset_of_a_swap_killed_between_renames(
    tmp_path: Path,
) -> None:
    dead = _dead_pid()
    trash = _work_folder(tmp_path, "darcy", dead, "trash")
    tmp = _work_folder(tmp_path, "darcy", dead, "tmp")
    clean_interrupted(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["darcy"]
    assert (tmp_path / "darcy" / "data" / "marker").read_text() == "trash"  # the old one
    assert not trash.exists() and not tmp.exists()
