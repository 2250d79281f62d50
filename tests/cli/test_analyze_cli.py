"""End-to-end test of ``irsolve analyze`` on checkpoints written by irsolve's own training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from irsolve.cli.analyze import add_subcommands
from irsolve.data.dataset import HDF5Dataset
from irsolve.data.generate import make_poisson_dataset
from irsolve.learned.checkpoint import model_state, save_checkpoint
from irsolve.learned.nets import RefinementUNet
from irsolve.learned.nets.factory import net_config
from irsolve.learned.nets.fno import base_operator
from irsolve.learned.trained import load_refiner
from irsolve.learned.training import RefinerConfig, TrainConfig, train_base, train_refiner


@pytest.mark.slow
def test_analyze_command_reads_training_checkpoints_and_writes_report(tmp_path: Path) -> None:
    root = make_poisson_dataset(tmp_path / "data", 4, 2, 3, resolution=16)
    train = HDF5Dataset(root, "train")
    valid = HDF5Dataset(root, "valid")
    config = TrainConfig(epochs=1, batch_size=2, progress=False)
    base = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=1)
    train_base(base, train, valid, config, checkpoint_dir=tmp_path / "base")
    net = RefinementUNet(2, 1, base_channels=4, depth=2)
    train_refiner(
        base, net, train, valid, config, RefinerConfig(K=2), checkpoint_dir=tmp_path / "refiner"
    )

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers())
    out = tmp_path / "report"
    args = parser.parse_args(
        [
            "analyze",
            "--refiner",
            str(tmp_path / "refiner" / "last.pt"),
            "--base",
            str(tmp_path / "base" / "last.pt"),
            "--data",
            str(root),
            "--out",
            str(out),
            "--n-probe",
            "1",
        ]
    )
    assert args.handler(args) == 0
    report = json.loads((out / "report.json").read_text())
    # Every test sample analysed, for 2 x the trained K = 2 steps.
    assert report["samples"] == 3 and report["steps"] == 4 and report["K"] == 2
    assert len(report["certificate"]["per_sample"]["q"]) == 3
    assert (out / "report.md").is_file() and (out / "certificate.pdf").is_file()


def test_analyze_rejects_a_base_checkpoint_given_as_refiner(tmp_path: Path) -> None:

    base = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=1)
    payload = {
        "model": model_state(base),
        "config": {"objective": "base", "model": net_config(base)},
    }
    save_checkpoint(tmp_path / "base.pt", payload, {"config": payload["config"]})
    with pytest.raises(ValueError, match="expected --refiner to be a refiner checkpoint"):
        load_refiner(tmp_path / "base.pt", flag="--refiner")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_probe": 0}, "expected n_probe to be an int >= 1, got 0"),
        ({"steps": 0}, "expected steps to be an int >= 1, got 0"),
        ({"K": 0}, "expected K to be an int >= 1, got 0"),
        ({"iters": 0}, "expected iters to be an int >= 1, got 0"),
        ({"bands": 0}, "expected bands to be an int >= 1, got 0"),
    ],
)
def test_analyze_rejects_out_of_range_settings_before_running(tmp_path: Path, kwargs, message):
    from irsolve.analysis.report import analyze
    from irsolve.solvers.refiner import Refiner

    y = torch.zeros(1, 1, 8, 8)
    refiner = Refiner(RefinementUNet(2, 1, base_channels=2, depth=1), 0.5)
    with pytest.raises(ValueError, match=rf"analyze: {message}"):
        analyze(None, refiner, y, y, tmp_path / "report", **kwargs)
    assert not (tmp_path / "report").exists()  # nothing written before the check
