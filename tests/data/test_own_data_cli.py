"""Bring your own data: each layout trains one tiny epoch and evaluates (``irsolve.cli.main``).

The refiner is trained once (on the ``.pt`` file) and evaluated with each
format's own base; every model is tiny (FNO 2 modes, width 4; U-Net width 4,
depth 1) on 12 samples of 8 x 8, so each test runs in about a second.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from own_files import arrays, write_every_format

from irsolve.cli import main

FNO = ["--modes", "2", "--hidden", "4", "--layers", "1"]
QUICK = ["--epochs", "1", "--batch-size", "4", "--no-progress"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    x, _ = arrays()
    y = np.cumsum(x, axis=-1).astype(np.float64)  # a target the nets can fit a little
    return write_every_format(folder, x, y)


@pytest.fixture(scope="module")
def refiner(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("refiner")
    data = ["--data", str(files["pt"]), "--val-fraction", "0.25", *QUICK]
    assert main(["train-base", *data, *FNO, "--out", str(out / "base")]) == 0
    net = ["--K", "2", "--width", "4", "--depth", "1", "--norm", "group"]
    base = ["--base", str(out / "base" / "last.pt")]
    assert main(["train", *data, *base, *net, "--out", str(out / "ref")]) == 0
    return out / "ref" / "last.pt"


def _rfne_at_zero(output: str) -> float:
    """The base's RFNE (relative L2 error), row ``k = 0`` of ``irsolve evaluate``'s table."""
    row = re.search(r"^\s+0\s+(\S+)\s+(\S+)", output, re.MULTILINE)
    assert row is not None, output
    return float(row[2])


@pytest.mark.parametrize("fmt", ["pt", "npz", "npy", "pdebench"])
def test_each_format_trains_one_epoch_and_evaluates(files, refiner, tmp_path, capsys, fmt):
    path = str(files[fmt])
    base = tmp_path / "base"
    train = ["train-base", "--data", path, "--val-fraction", "0.25", *QUICK, *FNO]
    assert main([*train, "--out", str(base)]) == 0
    assert "val_vrmse" in capsys.readouterr().out  # validation ran on the held-out quarter
    checkpoints = ["--base", str(base / "last.pt"), "--refiner", str(refiner)]
    assert main(["evaluate", "--data", path, *checkpoints]) == 0
    rfne = _rfne_at_zero(capsys.readouterr().out)
    assert np.isfinite(rfne) and rfne > 0


def test_separate_validation_and_test_files(files, refiner, tmp_path, capsys):
    base = tmp_path / "base"
    data = ["--data", str(files["pt"]), "--val-data", str(files["npz"])]
    assert main(["train-base", *data, *QUICK, *FNO, "--out", str(base)]) == 0
    assert "val_vrmse" in capsys.readouterr().out
    checkpoints = ["--base", str(base / "last.pt"), "--refiner", str(refiner)]
    test = ["--data", str(files["pt"]), "--test-data", str(files["npy"])]
    assert main(["evaluate", *test, *checkpoints]) == 0
    assert np.isfinite(_rfne_at_zero(capsys.readouterr().out))


def test_training_on_one_file_without_validation_says_so(files, tmp_path, capsys, caplog):
    argv = ["train-base", "--data", str(files["pt"]), *QUICK, *FNO, "--out", str(tmp_path / "b")]
    with caplog.at_level(logging.WARNING, logger="irsolve.cli.data_flags"):
        assert main(argv) == 0
    assert "no validation data" in caplog.text and "without validation" in caplog.text
    assert "val_vrmse" not in capsys.readouterr().out


def _cli_error(argv: list[str], capsys) -> str:
    """Exit status 2 and one line on stderr."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_wrong_layout_is_one_line_naming_what_was_found(tmp_path, capsys):
    path = tmp_path / "odd.npz"
    np.savez(path, a=np.zeros((3, 8, 8)), u=np.zeros((3, 8, 8)))
    line = _cli_error(["train-base", "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert "'a' (3, 8, 8)" in line and "accepted:" in line


def test_validation_split_of_a_single_file_without_a_source_is_an_error(files, refiner, capsys):
    argv = ["evaluate", "--data", str(files["pt"]), "--split", "valid"]
    line = _cli_error([*argv, "--base", str(refiner), "--refiner", str(refiner)], capsys)
    assert "--val-fraction" in line and "--val-data" in line


def test_val_fraction_and_val_data_together_are_an_error(files, tmp_path, capsys):
    argv = ["train-base", "--data", str(files["pt"]), "--out", str(tmp_path / "o")]
    both = ["--val-fraction", "0.2", "--val-data", str(files["npz"])]
    assert "got both" in _cli_error([*argv, *both], capsys)


@pytest.mark.parametrize("value", ["0", "1", "1.5", "nan", "x"])
def test_val_fraction_outside_zero_one_is_a_usage_error(files, tmp_path, capsys, value):
    argv = ["train-base", "--data", str(files["pt"]), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--val-fraction", value])
    assert info.value.code == 2
    assert "expected a number in (0, 1)" in capsys.readouterr().err


@pytest.mark.slow  # figures and certificates: 10-12 s on the shared 2-core machine
def test_analyze_reads_a_pdebench_file(files, refiner, tmp_path, capsys):
    base = refiner.parent.parent / "base" / "last.pt"
    argv = ["analyze", "--data", str(files["pdebench"]), "--samples", "2", "--steps", "2"]
    checkpoints = ["--refiner", str(refiner), "--base", str(base)]
    assert main([*argv, *checkpoints, "--n-probe", "1", "--out", str(tmp_path / "report")]) == 0
    assert "RFNE (median) base" in capsys.readouterr().out
    assert (tmp_path / "report" / "report.json").is_file()


def test_analyze_takes_the_data_flags(files, refiner, tmp_path, capsys):
    base = refiner.parent.parent / "base" / "last.pt"
    argv = ["analyze", "--data", str(files["npz"]), "--split", "valid"]
    checkpoints = ["--refiner", str(refiner), "--base", str(base)]
    line = _cli_error([*argv, *checkpoints, "--out", str(tmp_path / "report")], capsys)
    assert "--val-fraction" in line  # a single file has no validation split of its own


@pytest.mark.parametrize("fmt", ["pt", "pdebench"])
def test_data_info_describes_a_file_of_pairs(files, capsys, fmt):
    assert main(["data", "info", str(files[fmt])]) == 0
    assert f"layout {fmt}: 12 samples, x (1, 8, 8), y (1, 8, 8)" in capsys.readouterr().out
