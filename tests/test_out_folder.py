"""One writer per output folder; a killed writer's lock is taken over; nothing replaced unasked."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from irsolve.cli import main
from irsolve.out_folder import LOCK_NAME, FolderInUseError, check_replaceable_outputs, locked

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")


def test_a_second_writer_refuses_in_one_line_naming_the_owner(tmp_path: Path) -> None:
    with locked(tmp_path / "out") as lock:
        assert lock.read_text().split()[1] == str(os.getpid())
        with pytest.raises(FolderInUseError, match=rf"in use by process {os.getpid()} on "):
            with locked(tmp_path / "out"):
                pass
    assert not lock.exists()  # released and removed
    assert not (tmp_path / "out").exists()  # created by the lock, empty: removed again


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path, caplog) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # A child takes the lock and is SIGKILLed while holding it: the file stays, the flock goes.
    code = (
        "import os, signal, sys\n"
        "from irsolve.out_folder import locked\n"
        "with locked(sys.argv[1]):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", code, str(out)], check=False)
    assert child.returncode == -9
    dead_pid = (out / LOCK_NAME).read_text().split()[1]
    with caplog.at_level(logging.WARNING, logger="irsolve.out_folder"), locked(out) as lock:
        assert lock.read_text().split()[1] == str(os.getpid())
    assert f"took over the stale lock {out / LOCK_NAME} of process {dead_pid}" in caplog.text
    assert out.is_dir()  # it existed before: kept


def test_a_command_refuses_an_out_folder_another_run_holds(tmp_path: Path, capsys) -> None:
    out = tmp_path / "runs"
    with locked(out):
        code = main(["train-corrector", "darcy", "--out", str(out), "--train-samples", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    prefix = f"irsolve train-corrector darcy: error: --out {out} is in use by process"
    assert err[0].startswith(prefix)


def test_a_lock_file_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_NAME).symlink_to(target)
    with pytest.raises(OSError), locked(tmp_path / "out"):
        pass
    assert target.read_text() == "keep"


def test_existing_outputs_are_replaced_only_with_overwrite(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("old")
    with pytest.raises(FileExistsError, match=r"holds report.md from an earlier run; pass --ov"):
        check_replaceable_outputs(tmp_path, ("report.json", "report.md"), overwrite=False)
    check_replaceable_outputs(tmp_path, ("report.json", "report.md"), overwrite=True)
    check_replaceable_outputs(tmp_path, ("report.json",), overwrite=False)


def test_a_folder_that_cannot_be_made_is_left_to_the_command_to_report(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    for folder in (tmp_path / "file", tmp_path / "file" / "sub", None):
        with locked(folder) as lock:
            assert lock is None
    assert (tmp_path / "file").read_text() == "not a folder"
