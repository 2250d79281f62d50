"""Checkpoint sets: a kill at any write leaves one consistent set; damage is one clear error."""

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from torch.utils.data import TensorDataset

from irsolve.cli import main
from irsolve.learned.checkpoint import (
    MANIFEST,
    CheckpointError,
    commit_checkpoints,
    load_checkpoint,
    load_summary,
    read_manifest,
    recover_checkpoints,
    save_checkpoint,
)
from irsolve.learned.nets import base_operator
from irsolve.learned.training import TrainConfig, train_base


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pairs() -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 8, 8, generator=gen)
    return TensorDataset(x, 0.5 * (x + torch.roll(x, 1, -1)))


def _fno() -> torch.nn.Module:
    torch.manual_seed(0)
    return base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)


CONFIG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, progress=False)


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler of the library runs."""


def _kill_at_replace(monkeypatch, n: int) -> None:
    """Make the ``n``-th ``os.replace`` (0-based) of the run raise :class:`Killed` instead."""
    calls = iter(range(10**6))
    real = os.replace

    def replace(src, dst):
        if next(calls) == n:
            raise Killed
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def _train(folder, **kwargs):
    return train_base(_fno(), _pairs(), _pairs(), CONFIG, checkpoint_dir=folder, **kwargs)


def test_a_kill_at_any_write_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    full = _train(tmp_path / "full")
    assert full.best_epoch == 2  # every epoch improves, so each commit rewrites best.pt too
    reference = load_checkpoint(tmp_path / "full" / "best.pt")
    # One improving epoch is 9 renames: 4 staged files, the manifest, the 4 files into place.
    # Kill at each one of epoch 2 (calls 9..17), then resume.
    for n in range(9, 18):
        folder = tmp_path / f"kill{n}"
        with monkeypatch.context() as patch:
            _kill_at_replace(patch, n)
            with pytest.raises(Killed):
                _train(folder)
        manifest = read_manifest(folder)
        assert manifest["epoch"] == (1 if n <= 13 else 2)  # call 13 renames the manifest
        resumed = _train(folder, resume=True)
        assert resumed.best_epoch == full.best_epoch
        assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
        best = load_checkpoint(folder / "best.pt")
        assert best["epoch"] == resumed.best_epoch
        for key, value in reference["model"].items():
            assert torch.equal(best["model"][key], value), (n, key)
        summary = json.loads((folder / "best.json").read_text())
        assert summary["epoch"] == best["epoch"]
        left = sorted(p.name for p in folder.iterdir())
        assert left == ["best.json", "best.pt", "last.json", "last.pt", MANIFEST], n


def test_a_stale_best_file_is_detected_not_read(tmp_path):
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-2, progress=False)
    train_base(_fno(), _pairs(), _pairs(), config, checkpoint_dir=tmp_path / "run")
    shutil.copy(tmp_path / "run" / "best.pt", tmp_path / "best_epoch1.pt")
    # epoch 2's best differs from epoch 1's (same weights would serialise to the same bytes)
    state = {**load_checkpoint(tmp_path / "run" / "last.pt"), "epoch": 2}
    commit_checkpoints(tmp_path / "run", 2, {"best": (state, {"epoch": 2})})
    shutil.copy(tmp_path / "best_epoch1.pt", tmp_path / "run" / "best.pt")  # what a torn run left
    message = "best.pt does not belong to the set of epoch 2 that .*manifest.json lists"
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "run" / "best.pt")
    with pytest.raises(CheckpointError, match=message):
        recover_checkpoints(tmp_path / "run")


def test_a_summary_one_epoch_behind_is_detected(tmp_path):
    commit_checkpoints(tmp_path, 1, {"last": ({"epoch": 1}, {"epoch": 1})})
    old = (tmp_path / "last.json").read_bytes()
    commit_checkpoints(tmp_path, 2, {"last": ({"epoch": 2}, {"epoch": 2})})
    assert load_summary(tmp_path / "last.json") == {"epoch": 2}
    (tmp_path / "last.json").write_bytes(old)
    for read in (load_summary, lambda p: recover_checkpoints(p.parent)):
        with pytest.raises(CheckpointError, match=r"last.json does not belong .* epoch 2"):
            read(tmp_path / "last.json")


def test_a_truncated_file_in_a_run_names_its_size_against_the_manifest(tmp_path):
    commit_checkpoints(tmp_path, 1, {"last": ({"w": torch.ones(100)}, {"epoch": 1})})
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    match = rf"has {len(data) // 2} bytes, the manifest {len(data)}"
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "last.pt")


def _slice_payload(path):
    torch.save({"s": slice(1, 2)}, path)  # a Python object weights-only loading refuses


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (lambda p, d: p.write_bytes(d[: len(d) // 2]), "truncated torch file"),
        (lambda p, d: p.write_bytes(b""), "empty file"),
        (lambda p, d: p.write_bytes(random.Random(0).randbytes(64)), "not a torch file"),
        (lambda p, d: p.write_bytes(b"hello\n"), "not a torch file"),
        (
            lambda p, d: _slice_payload(p),
            "holds objects that weights-only loading refuses; it was not written by irsolve",
        ),
    ],
)
def test_a_damaged_file_is_one_line_saying_what_it_is_and_what_to_do(tmp_path, damage, what):
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"w": torch.ones(100)}, {})
    damage(path, path.read_bytes())
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == (
        f"checkpoint {path} is damaged ({what}); delete the folder or resume from an older run"
    )


def test_a_damaged_manifest_is_an_error(tmp_path):
    commit_checkpoints(tmp_path, 1, {"last": ({"epoch": 1}, {"epoch": 1})})
    (tmp_path / MANIFEST).write_text('{"format": 1, "files": {"last.pt": {}}}')
    with pytest.raises(CheckpointError, match="manifest .* is damaged"):
        load_checkpoint(tmp_path / "last.pt")


def test_a_run_into_a_used_folder_without_resume_is_refused(tmp_path):
    config = TrainConfig(epochs=1, batch_size=4, progress=False)
    train_base(_fno(), _pairs(), None, config, checkpoint_dir=tmp_path)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a run; resume it"):
        train_base(_fno(), _pairs(), None, config, checkpoint_dir=tmp_path)
    assert (tmp_path / "last.pt").read_bytes() == before


def test_resuming_with_other_settings_names_them(tmp_path):
    config = TrainConfig(epochs=1, batch_size=4, progress=False)
    train_base(_fno(), _pairs(), None, config, checkpoint_dir=tmp_path)
    other = TrainConfig(epochs=2, batch_size=4, lr=1e-3, progress=True)
    with pytest.raises(CheckpointError, match=r"train.epochs \(saved 1, now 2\); train.lr"):
        train_base(_fno(), _pairs(), None, other, checkpoint_dir=tmp_path, resume=True)


ONE_EPOCH = TrainConfig(epochs=1, batch_size=4, progress=False)


@pytest.mark.parametrize(
    ("older", "message"),
    [
        ("payload", r"cannot resume .*last.pt: it lacks steps \(written by another irsolve"),
        ("config", r"other settings than its run's: train.clip \(saved None, now 1.0\);"),
        ("manifest", r"cannot resume .*last.pt: its folder has no manifest.json"),
    ],
)
def test_a_checkpoint_of_another_version_is_refused_in_one_line(tmp_path, older, message):
    train_base(_fno(), _pairs(), None, ONE_EPOCH, checkpoint_dir=tmp_path)
    state = load_checkpoint(tmp_path / "last.pt")
    if older == "payload":
        del state["steps"]  # a part of the payload this version writes
    if older == "config":
        del state["config"]["train"]["clip"]  # a setting this version has
    commit_checkpoints(tmp_path, 1, {"last": (state, {"config": state["config"]})})
    if older == "manifest":
        (tmp_path / MANIFEST).unlink()
    with pytest.raises(CheckpointError, match=message) as info:
        train_base(_fno(), _pairs(), None, ONE_EPOCH, checkpoint_dir=tmp_path, resume=True)
    assert "\n" not in str(info.value)


def test_overwrite_keeps_the_old_run_until_the_new_one_commits_then_replaces_it(
    tmp_path, monkeypatch
):
    _train(tmp_path)  # two epochs, best.pt from epoch 2
    old = (tmp_path / "best.pt").read_bytes()
    one = TrainConfig(epochs=1, batch_size=4, lr=1e-2, progress=False)
    with monkeypatch.context() as patch:
        _kill_at_replace(patch, 3)  # the new run dies before its manifest
        with pytest.raises(Killed):
            train_base(_fno(), _pairs(), None, one, checkpoint_dir=tmp_path, overwrite=True)
    assert recover_checkpoints(tmp_path)["epoch"] == 2
    assert (tmp_path / "best.pt").read_bytes() == old
    train_base(_fno(), _pairs(), None, one, checkpoint_dir=tmp_path, overwrite=True)
    manifest = read_manifest(tmp_path)
    assert manifest["epoch"] == 1 and {e["epoch"] for e in manifest["files"].values()} == {1}
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    with pytest.raises(ValueError, match="at most one of resume and overwrite"):
        train_base(
            _fno(), _pairs(), None, one, checkpoint_dir=tmp_path, resume=True, overwrite=True
        )


_KILLED_CHILD = """
import os, signal, sys
from irsolve.cli import main
real, calls = os.replace, iter(range(10**6))
def replace(src, dst):
    if next(calls) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
main(sys.argv[2:])
"""


@pytest.mark.slow  # ~12 s on 2 CPU cores, most of it the child's imports
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_sigkilled_cli_run_resumes_to_the_uninterrupted_one(tmp_path):
    x, y = _pairs().tensors
    torch.save({"x": x, "y": y}, tmp_path / "pairs.pt")
    argv = ["train-base", "--data", str(tmp_path / "pairs.pt"), "--modes", "2", "--hidden", "4"]
    argv += ["--layers", "1", "--epochs", "3", "--batch-size", "4", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    # Killed by the OS in epoch 2 with best.pt.next's temporary file written but not renamed.
    child = [sys.executable, "-c", _KILLED_CHILD, "11", *argv, "--out", str(tmp_path / "run")]
    done = subprocess.run(child, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert done.returncode == -signal.SIGKILL
    assert list(tmp_path.glob("run/.best.pt.next.*.tmp"))  # what the kill left behind
    assert main([*argv, "--out", str(tmp_path / "run"), "--resume"]) == 0
    for name in ("last.pt", "best.pt"):
        full, resumed = (load_checkpoint(tmp_path / r / name) for r in ("full", "run"))
        assert full["epoch"] == resumed["epoch"]
        assert all(torch.equal(full["model"][k], resumed["model"][k]) for k in full["model"])
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == ["best.json", "best.pt", "last.json", "last.pt", MANIFEST]


def _crafted_folders(tmp_path):
    """A committed run whose manifest names files outside it: relative, absolute, symlinked.

    ``staged``: the staged copy ``last.pt.next`` is a link to the outside file and the
    manifest lists that file's true hash, so recovering the set would hash it and
    rename the link into place.
    """
    outside = tmp_path / "precious.txt"
    outside.write_text("a user's file")
    digest = {"sha256": "0" * 64, "bytes": outside.stat().st_size, "epoch": 1}
    true_digest = {**digest, "sha256": hashlib.sha256(outside.read_bytes()).hexdigest()}
    for kind, name in (
        ("relative", "../precious.txt"),
        ("absolute", str(outside)),
        ("nested", "sub/last.pt"),
        ("dot", ".hidden.pt"),
        ("symlink", "best.pt"),
        ("staged", "last.pt"),
    ):
        folder = tmp_path / kind
        _train(folder)
        manifest = json.loads((folder / MANIFEST).read_text())
        if kind == "symlink":
            (folder / "best.pt").unlink()
            (folder / "best.pt").symlink_to(outside)
        if kind == "staged":
            (folder / "last.pt.next").symlink_to(outside)
        manifest["files"][name] = true_digest if kind == "staged" else digest
        (folder / MANIFEST).write_text(json.dumps(manifest))
        yield kind, folder, outside


_MANIFEST_READERS = {
    "read_manifest": read_manifest,
    "recover_checkpoints": recover_checkpoints,
    "load_checkpoint": lambda folder: load_checkpoint(folder / "last.pt"),
    "load_summary": lambda folder: load_summary(folder / "last.json"),
    "commit_checkpoints": lambda folder: commit_checkpoints(
        folder, 3, {"last": ({"epoch": 3}, {"epoch": 3})}, fresh=True
    ),
    "overwrite": lambda folder: _train(folder, overwrite=True),
    "resume": lambda folder: _train(folder, resume=True),
}


@pytest.mark.parametrize("reader", sorted(_MANIFEST_READERS))
def test_a_manifest_naming_files_outside_its_folder_is_refused_before_any_io(tmp_path, reader):
    """Every reader of a manifest refuses it; nothing outside the folder is read or deleted."""
    for kind, folder, outside in _crafted_folders(tmp_path):
        with pytest.raises(CheckpointError, match="refusing to read, replace or delete"):
            _MANIFEST_READERS[reader](folder)
        assert outside.read_text() == "a user's file", kind
        assert (folder / "last.pt").is_file() and not (folder / "last.pt").is_symlink(), kind


def test_the_cli_overwrite_and_resume_refuse_a_crafted_manifest_in_one_line(tmp_path, capsys):
    """train-base and train-corrector --overwrite / --resume: exit 2, one line, the file kept."""
    x, y = _pairs().tensors
    torch.save({"x": x[:, 0], "y": y[:, 0]}, tmp_path / "pairs.pt")
    base = ["train-base", "--data", str(tmp_path / "pairs.pt"), "--epochs", "1"]
    base += ["--modes", "2", "--hidden", "4", "--layers", "1", "--no-progress"]
    corrector = ["train-corrector", "darcy", "--resolution", "16", "--train-samples", "4"]
    corrector += ["--val-samples", "2", "--batch-size", "4", "--epochs", "1"]
    corrector += ["--modes", "2", "--hidden", "4", "--layers", "1", "--no-progress"]
    for kind, folder, outside in _crafted_folders(tmp_path):
        if kind not in ("relative", "absolute", "symlink", "staged"):
            continue
        for command in (base, corrector):
            for mode in ("--overwrite", "--resume"):
                capsys.readouterr()
                assert main([*command, "--out", str(folder), mode]) == 2, (kind, mode)
                err = capsys.readouterr().err.strip()
                assert "refusing to read, replace or delete" in err and "\n" not in err, err
                assert outside.read_text() == "a user's file", (kind, command[0], mode)


def test_disk_full_names_the_file_and_keeps_the_committed_checkpoint(tmp_path, monkeypatch):
    import errno
    import os

    from irsolve.learned import checkpoint as module

    target = tmp_path / "last.pt"
    module.save_checkpoint(target, {"w": torch.ones(2)}, {"epoch": 1})
    before = target.read_bytes()

    def full(fd, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(module.os, "fsync", full)
    with pytest.raises(OSError, match=r"cannot write .*last\.pt.*: No space left") as err:
        module.save_checkpoint(target, {"w": torch.zeros(2)}, {"epoch": 2})
    assert err.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_bit_flipped_weight_is_refused_without_a_manifest(tmp_path):
    """The checksum stored in the checkpoint itself finds damage no manifest would see."""
    weight = torch.full((64,), 1.2345, dtype=torch.float64)
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"model": {"weight": weight}, "config": {"kind": "test"}}, {})
    assert torch.equal(load_checkpoint(path)["model"]["weight"], weight)
    data = bytearray(path.read_bytes())
    at = bytes(data).index(weight.numpy().tobytes())  # stored uncompressed in the zip
    data[at + 100] ^= 0x01  # one bit of the 13th value
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="differs from the checksum stored in it"):
        load_checkpoint(path)


def test_a_model_checkpoint_without_a_checksum_is_refused_in_one_line(tmp_path):
    path = tmp_path / "hand.pt"
    torch.save({"model": {"weight": torch.ones(2)}, "config": {}}, path)
    with pytest.raises(CheckpointError, match="hand.pt carries no checksum"):
        load_checkpoint(path)
    torch.save({"x": torch.ones(2)}, tmp_path / "data.pt")  # not a model: left to the caller
    assert set(load_checkpoint(tmp_path / "data.pt")) == {"x"}
