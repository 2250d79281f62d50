"""``irsolve data generate`` / ``data info``: bad input is one error line, nothing is lost.

Bad inputs must end in ``argparse``'s error (exit status 2, one ``error:``
line naming the flag) and leave every file, inside ``--out`` and beside it,
as it was. Kill tests run the command in a child process that SIGKILLs itself
at a chosen point (after the first file is written, between the two renames
of the swap, half-way through deleting the replaced dataset); the child
patches the library call at that point, so the library carries no test hook.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from irsolve.cli.data import add_subcommands

#: SIGKILL and the owner check of killed runs' folders (``kill(pid, 0)``) are POSIX.
POSIX = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")

#: A Darcy dataset small enough to write in well under a second: 2 training samples on 3x3.
BASE = ["data", "generate", "darcy", "--samples", "2", "--resolution", "3", "--threads", "1"]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="irsolve")
    add_subcommands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones too) with the bytes of files, ``None`` for folders."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def old_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``darcy`` written with seed 0, copied into each test's tree."""
    out = tmp_path_factory.mktemp("old")
    assert run([*BASE, "--out", str(out)]) == 0
    return out / "darcy"


@pytest.fixture
def tree(tmp_path: Path, old_dataset: Path) -> Path:
    """``tmp_path`` with sentinels beside ``out`` and the dataset ``out/darcy`` inside it."""
    (tmp_path / "sentinel.txt").write_text("keep me")
    (tmp_path / "sentinel_dir" / "sub").mkdir(parents=True)
    (tmp_path / "sentinel_dir" / "sub" / "file.txt").write_text("keep me too")
    shutil.copytree(old_dataset, tmp_path / "out" / "darcy")
    (tmp_path / "out" / "notes").mkdir()
    (tmp_path / "out" / "notes" / "thesis.tex").write_text("not a dataset")
    (tmp_path / "out" / "plain_file").write_text("not a dataset either")
    return tmp_path


# (case id, extra argv appended to BASE --out <tree>/out (later flags win), flag named)
BAD_GENERATE = [
    ("name-dotdot", ["--name", "..", "--overwrite"], "--name"),
    ("name-dot", ["--name", ".", "--overwrite"], "--name"),
    ("name-empty", ["--name", ""], "--name"),
    ("name-separator", ["--name", "a/b"], "--name"),
    ("name-escapes", ["--name", "../sentinel_dir", "--overwrite"], "--name"),
    ("name-absolute", ["--name", "/tmp", "--overwrite"], "--name"),
    ("name-work-folder", ["--name", ".darcy.irsolve-h-1-0123abcd.tmp"], "--name"),
    ("name-too-long", ["--name", "d" * 201], "--name"),
    ("name-exists", [], "--name"),
    ("name-not-a-dataset", ["--name", "notes", "--overwrite"], "--name"),
    ("name-is-a-file", ["--name", "plain_file", "--overwrite"], "--name"),
    ("n-zero", ["--samples", "0"], "--samples"),
    ("n-fraction", ["--samples", "1.5"], "--samples"),
    ("n-text", ["--samples", "two"], "--samples"),
    ("resolution-zero", ["--resolution", "0"], "--resolution"),
    ("resolution-negative", ["--resolution", "-3"], "--resolution"),
    ("resolution-fraction", ["--resolution", "2.5"], "--resolution"),
    ("seed-negative", ["--seed", "-1"], "--seed"),
    ("split-nan", ["--fractions", "nan", "1", "1"], "--fractions"),
    ("split-inf", ["--fractions", "inf", "1", "1"], "--fractions"),
    ("split-negative", ["--fractions", "-1", "1", "1"], "--fractions"),
    ("split-all-zero", ["--fractions", "0", "0", "0"], "--fractions"),
    ("split-no-train", ["--fractions", "0", "1", "1"], "--fractions"),
    ("split-sum-overflows", ["--fractions", "1e308", "1e308", "0"], "--fractions"),
    ("threads-zero", ["--threads", "0"], "--threads"),
    ("steps-not-ns", ["--frames", "3"], "--frames"),
    ("record-dt-not-ns", ["--record-dt", "0.5"], "--record-dt"),
    ("viscosity-not-ns", ["--viscosity", "1e-4"], "--viscosity"),
    ("burn-in-not-ns", ["--burn-in", "1"], "--burn-in"),
    ("velocity-not-ns", ["--velocity"], "--velocity"),
    ("out-is-a-file", ["--out", "{tree}/sentinel.txt"], "--out"),
    ("out-below-a-file", ["--out", "{tree}/sentinel.txt/sub"], "--out"),
    ("out-empty", ["--out", ""], "--out"),
    ("resolution-beyond-memory", ["--resolution", "1000000"], "--resolution"),
]
NS = ["--name", "ns"]  # navier_stokes runs get a free name: only the flag under test is bad
BAD_NAVIER_STOKES = [
    ("ns-resolution-odd", [*NS, "--resolution", "7"], "--resolution"),
    ("ns-resolution-two", [*NS, "--resolution", "2"], "--resolution"),
    ("ns-steps-zero", [*NS, "--frames", "0"], "--frames"),
    ("ns-record-dt-zero", [*NS, "--record-dt", "0"], "--record-dt"),
    ("ns-record-dt-nan", [*NS, "--record-dt", "nan"], "--record-dt"),
    ("ns-viscosity-negative", [*NS, "--viscosity", "-1e-3"], "--viscosity"),
    ("ns-viscosity-inf", [*NS, "--viscosity", "inf"], "--viscosity"),
    ("ns-burn-in-negative", [*NS, "--burn-in", "-1"], "--burn-in"),
    ("ns-record-dt-days", [*NS, "--record-dt", "1e6", "--resolution", "8"], "--record-dt"),
    ("ns-burn-in-days", [*NS, "--burn-in", "1e6", "--resolution", "8"], "--burn-in"),
    ("ns-resolution-beyond-memory", [*NS, "--resolution", "1000000"], "--resolution"),
]


def assert_one_error_line(err: str, command: str, flag: str) -> None:
    """argparse's format: usage, then one last line ``<command>: error: argument <flag>: ...``."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    assert errors[0] == err.splitlines()[-1]
    assert errors[0].startswith(f"{command}: error: argument {flag}: "), errors[0]


@pytest.mark.parametrize(
    ("problem", "extra", "flag"),
    [pytest.param("darcy", e, f, id=i) for i, e, f in BAD_GENERATE]
    + [pytest.param("navier_stokes", e, f, id=i) for i, e, f in BAD_NAVIER_STOKES],
)
def test_bad_generate_input_is_one_error_line_and_changes_nothing(
    tree: Path, capsys: pytest.CaptureFixture[str], problem: str, extra: list[str], flag: str
) -> None:
    before = snapshot(tree)
    argv = [*BASE, "--out", str(tree / "out"), *(a.format(tree=tree) for a in extra)]
    argv[2] = problem
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 2
    assert_one_error_line(capsys.readouterr().err, "irsolve data generate", flag)
    assert snapshot(tree) == before


def test_overwrite_keeps_a_dataset_holding_a_users_own_files(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "out" / "darcy" / "my_notes.txt").write_text("a week of lab notes")
    (tree / "out" / "darcy" / "data" / "train" / "plot.png").write_bytes(b"png")
    before = snapshot(tree)
    with pytest.raises(SystemExit) as exit_info:
        run([*BASE, "--out", str(tree / "out"), "--overwrite"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert_one_error_line(err, "irsolve data generate", "--name")
    assert "holds files a dataset does not (data/train/plot.png, my_notes.txt)" in err
    assert snapshot(tree) == before


def test_info_verify_checks_the_recorded_sha256_of_every_file(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tree / "out" / "darcy"
    assert run(["data", "info", str(dataset), "--verify"]) == 0
    assert "verified 1 dataset(s): every file matches its SHA256SUMS" in capsys.readouterr().out
    train = next((dataset / "data" / "train").glob("*.hdf5"))
    data = bytearray(train.read_bytes())
    data[-100] ^= 0x01  # one flipped bit inside the stored fields
    train.write_bytes(bytes(data))
    (dataset / "stats.yaml").unlink()
    for path in (dataset, tree / "out"):  # the dataset, and the folder of datasets
        with pytest.raises(SystemExit) as exit_info:
            run(["data", "info", str(path), "--verify"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert_one_error_line(err, "irsolve data info", "--verify")
        assert f"darcy/data/train/{train.name}: SHA-256 differs from SHA256SUMS" in err
        assert "darcy/stats.yaml: missing" in err
    (dataset / "SHA256SUMS").unlink()
    with pytest.raises(SystemExit):
        run(["data", "info", str(dataset), "--verify"])
    assert "has no SHA256SUMS: nothing to verify against" in capsys.readouterr().err


def test_bad_info_input_is_one_error_line(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "corrupt.hdf5").write_bytes(b"not hdf5")
    work = tree / "out" / ".darcy.irsolve-h-1-0123abcd.tmp"
    shutil.copytree(tree / "out" / "darcy", work)
    for path in (tree / "missing", tree / "corrupt.hdf5", work, tree / "sentinel_dir", ""):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            run(["data", "info", str(path)])
        assert exit_info.value.code == 2
        assert_one_error_line(capsys.readouterr().err, "irsolve data info", "path")


def test_info_of_a_folder_lists_complete_datasets_and_skips_work_folders(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tree / "out" / ".darcy.irsolve-h-1-0123abcd.tmp"
    shutil.copytree(tree / "out" / "darcy", work)
    capsys.readouterr()
    assert run(["data", "info", str(tree / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"1 dataset(s) in {tree / 'out'}\ndataset darcy")
    assert "train: 1 file(s), 2 trajectories" in out
    assert f"skipped 1 unfinished work folder(s): {work.name}" in out


# The child: patch one library call to SIGKILL the process at the chosen point, then run the CLI.
CHILD = """
import argparse, os, shutil, signal, sys
from pathlib import Path
from irsolve.data import well_format
from irsolve.cli.data import add_subcommands

def die():
    os.kill(os.getpid(), signal.SIGKILL)

point, argv = sys.argv[1], sys.argv[2:]
if point == "writing":  # after the first file of the new dataset is written
    write = well_format.write_well_file
    well_format.write_well_file = lambda *a, **k: (write(*a, **k), die())
elif point == "swap":  # after old -> trash, before new -> final name
    rename = os.rename
    os.rename = lambda src, dst: (rename(src, dst), str(dst).endswith(".trash") and die())
elif point == "delete":  # half-way through deleting the trash (the old dataset)
    rmtree = shutil.rmtree
    def half_rmtree(path, *args, **kwargs):
        if str(path).endswith(".trash"):
            (Path(path) / "stats.yaml").unlink()
            next(Path(path).rglob("*.hdf5")).unlink()
            die()
        rmtree(path, *args, **kwargs)
    shutil.rmtree = half_rmtree
parser = argparse.ArgumentParser(prog="irsolve")
add_subcommands(parser.add_subparsers())
args = parser.parse_args(argv)
sys.exit(args.handler(args))
"""


def child_command(point: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The child's command line and environment (one OpenMP thread)."""
    return [sys.executable, "-c", CHILD, point, *argv], {**os.environ, "OMP_NUM_THREADS": "1"}


def kill_at(point: str, argv: list[str]) -> None:
    """Run ``irsolve <argv>`` in a child that SIGKILLs itself at ``point``; check it died there."""
    command, env = child_command(point, argv)
    child = subprocess.run(command, capture_output=True, text=True, env=env)
    assert child.returncode == -signal.SIGKILL, child.stderr


def work_folders(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def info_lists(out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The dataset names ``data info <out>`` lists (none: it exits with status 2)."""
    capsys.readouterr()
    try:
        run(["data", "info", str(out)])
    except SystemExit as exit_info:
        assert exit_info.code == 2
        return []
    lines = capsys.readouterr().out.splitlines()
    return [line.split()[1] for line in lines if line.startswith("dataset ")]


@pytest.fixture(scope="module")
def new_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``darcy`` with seed 1: what the killed overwrite was writing (files are bit-identical)."""
    out = tmp_path_factory.mktemp("new")
    assert run([*BASE, "--seed", "1", "--out", str(out)]) == 0
    return out / "darcy"


@POSIX
@pytest.mark.parametrize(
    ("point", "left", "survivor"),
    [
        ("writing", [".tmp"], "old"),  # the half-written new one is hidden
        ("swap", [".tmp", ".trash"], None),  # both complete, under hidden names
        ("delete", [".trash"], "new"),  # the half-deleted old one is hidden
    ],
)
def test_killed_overwrite_keeps_a_complete_dataset_and_the_next_run_cleans_up(
    tree: Path,
    old_dataset: Path,
    new_dataset: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    point: str,
    left: list[str],
    survivor: str | None,
) -> None:
    out = tree / "out"
    old, new = snapshot(old_dataset), snapshot(new_dataset)
    assert old != new
    beside = {k: v for k, v in snapshot(tree).items() if not k.startswith("out")}
    kill_at(point, [*BASE, "--seed", "1", "--out", str(out), "--overwrite"])

    hidden = work_folders(out)
    assert [Path(name).suffix for name in hidden] == left
    if survivor is None:  # killed between the two renames: nothing under the final name
        assert not (out / "darcy").exists()
        assert (out / hidden[1]).exists() and snapshot(out / hidden[1]) == old
        assert info_lists(out, capsys) == []
        with pytest.raises(SystemExit):
            run(["data", "info", str(out / "darcy")])
        assert f"left {hidden[0]}, {hidden[1]}; the next" in capsys.readouterr().err
    else:
        assert snapshot(out / "darcy") == {"old": old, "new": new}[survivor]
        assert info_lists(out, capsys) == ["darcy"]
    for name in hidden:  # complete or not, a work folder is never read as a dataset
        with pytest.raises(SystemExit):
            run(["data", "info", str(out / name)])

    with caplog.at_level(logging.WARNING, logger="irsolve.data.atomic_folder"):
        assert run([*BASE, "--out", str(out), "--name", "other"]) == 0
    assert work_folders(out) == []
    assert all(name in caplog.text for name in hidden)
    assert snapshot(out / "darcy") == {"old": old, "new": new, None: old}[survivor]
    assert info_lists(out, capsys) == ["darcy", "other"]
    assert {k: v for k, v in snapshot(tree).items() if not k.startswith("out")} == beside


def test_overwrite_replaces_the_dataset_with_the_new_files(tree: Path, new_dataset: Path) -> None:
    assert run([*BASE, "--seed", "1", "--out", str(tree / "out"), "--overwrite"]) == 0
    assert snapshot(tree / "out" / "darcy") == snapshot(new_dataset)
    assert work_folders(tree / "out") == []
    with h5py.File(next((tree / "out" / "darcy").rglob("*.hdf5"))) as f:
        assert f.attrs["dataset_name"] == "darcy"


@POSIX
@pytest.mark.slow
def test_overwrite_killed_at_random_times_always_leaves_a_complete_dataset(
    tree: Path, old_dataset: Path, new_dataset: Path
) -> None:
    """Unpatched runs SIGKILLed at random times: the final name never holds a partial dataset.

    Kill times are spread over 0.5 to 1.1 times one full run, so most land
    in the import and the writing, some after the end; which step each hits
    varies with the machine's load, the property checked does not.
    """
    out = tree / "out"
    complete = [snapshot(old_dataset), snapshot(new_dataset)]
    argv = [*BASE, "--out", str(out), "--overwrite"]
    command, env = child_command("none", [*argv, "--seed", "1"])
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    full = time.perf_counter() - start
    rng = random.Random(0)
    for seed in (0, 1) * 4:
        command, env = child_command("none", [*argv, "--seed", str(seed)])
        child = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.5, 1.1) * full)
        child.kill()
        child.wait()
        if (out / "darcy").exists():
            assert snapshot(out / "darcy") in complete
        else:  # killed between the swap's two renames: the next run restores the old one
            assert sorted(Path(p).suffix for p in work_folders(out)) == [".tmp", ".trash"]
    assert run([*BASE, "--out", str(out), "--name", "other"]) == 0
    assert work_folders(out) == [] and snapshot(out / "darcy") in complete
