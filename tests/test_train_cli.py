"""The train-base / train / evaluate subcommands end to end on a tiny .pt dataset."""

import argparse
import json

import pytest
import torch

from irsolve.train_cli import add_subcommands, load_pairs


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="irsolve")
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_train_base_then_refiner_then_evaluate(tmp_path, capsys):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 8, 8, generator=gen)
    data = tmp_path / "pairs.pt"
    torch.save({"x": x, "y": torch.roll(x, 1, -1)}, data)
    config = tmp_path / "refiner.toml"
    config.write_text(
        "K = 2\nalpha-decay = 0.5\nstep-weights = 'linear'\nwidth = 4\ndepth = 2\nnorm = 'group'\n"
    )
    common = ["--data", str(data), "--batch-size", "4", "--no-validation", "--no-progress"]

    fno = ["--modes", "4", "--hidden", "4", "--layers", "1", "--epochs", "1"]
    assert _run(["train-base", *common, "--out", str(tmp_path / "base"), *fno]) == 0
    refiner = ["--config", str(config), "--epochs", "1", "--base", str(tmp_path / "base/last.pt")]
    assert _run(["train", *common, "--out", str(tmp_path / "ref"), *refiner]) == 0
    levers = "stability levers on: {'alpha_decay': 0.5, 'step_weights': 'linear'}"
    assert levers in capsys.readouterr().out
    saved = json.loads((tmp_path / "ref/last.json").read_text())["config"]
    assert saved["refiner"]["K"] == 2 and saved["model"]["depth"] == 2
    assert saved["refiner"]["step_weights"] == "linear"

    report = tmp_path / "report.json"
    checkpoints = {"--base": tmp_path / "base/last.pt", "--refiner": tmp_path / "ref/last.pt"}
    evaluation = [str(a) for pair in checkpoints.items() for a in pair]
    assert _run(["evaluate", "--data", str(data), *evaluation, "--json", str(report)]) == 0
    assert json.loads(report.read_text())["steps"] == [0, 1, 2, 3, 4]


def test_unknown_option_in_a_config_file_is_an_error(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("epochs: 1\nlearning_rate: 0.1\n")
    with pytest.raises(SystemExit):
        _run(["train-base", "--data", "d.pt", "--out", "o", "--config", str(config)])


def test_load_pairs_reads_a_well_dataset_folder(tmp_path):
    from irsolve.data import make_navier_stokes_dataset

    root = make_navier_stokes_dataset(tmp_path, 1, 1, 1, resolution=16, n_steps=3, record_dt=0.1)
    pairs = load_pairs(root, "valid", n_steps_input=1)
    assert len(pairs) == 2  # one trajectory of 3 frames: windows (0 -> 1) and (1 -> 2)
    x, y = pairs[1]
    assert x.shape == y.shape == (1, 16, 16)
    torch.testing.assert_close(x, pairs[0][1])  # frame 1 is the target of window 0
