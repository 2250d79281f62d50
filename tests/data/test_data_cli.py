"""``irsolve data generate`` / ``irsolve data info`` through their argparse subcommands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest

from irsolve.cli.data import add_subcommands, split_counts
from irsolve.data.dataset import HDF5Dataset


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="irsolve")
    add_subcommands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


def test_split_counts_round_to_the_fractions_and_sum_to_n() -> None:
    assert split_counts(100, (0.8, 0.1, 0.1)) == (80, 10, 10)
    assert split_counts(7, (0.8, 0.1, 0.1)) == (5, 1, 1)
    with pytest.raises(ValueError, match="no training sample"):
        split_counts(2, (0.0, 0.5, 0.5))
    # Fractions near the float maximum: n * f would overflow, f / sum does not.
    assert split_counts(10, (1e308, 0.5e308, 0.0)) == (7, 3, 0)
    for bad in ((math.nan, 1, 1), (math.inf, 1, 1), (1e308, 1e308, 0), (0, 0, 0), (-1, 1, 1)):
        with pytest.raises(ValueError, match="finite non-negative fractions"):
            split_counts(10, bad)


def test_generate_then_info_describes_the_written_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["data", "generate", "poisson", "--samples", "10", "--resolution", "7", "--out"]
    assert run([*argv, str(tmp_path)]) == 0
    assert len(HDF5Dataset(tmp_path / "poisson", "test")) == 1
    with pytest.raises(SystemExit, match="2"):  # exists, no --overwrite
        run([*argv, str(tmp_path)])
    assert "--overwrite" in capsys.readouterr().err
    assert run(["data", "info", str(tmp_path / "poisson")]) == 0
    out = capsys.readouterr().out
    assert "train: 1 file(s), 8 trajectories" in out
    assert "t0_fields/u: shape (8, 1, 7, 7) float64" in out
    # three split files and stats.yaml
    assert "SHA256SUMS: 4 files, checked when read (all now: --verify)" in out
    (tmp_path / "poisson" / "SHA256SUMS").unlink()
    assert run(["data", "info", str(tmp_path / "poisson")]) == 0
    assert "SHA256SUMS: missing (damaged files cannot be detected)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="2"):
        run(["data", "info", str(tmp_path / "missing")])
