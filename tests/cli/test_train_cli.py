"""The train-base / train / evaluate subcommands end to end on a tiny .pt dataset."""

import argparse
import json
import os

import pytest
import torch

from irsolve.cli import main
from irsolve.cli.train import add_subcommands
from irsolve.learned.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


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


def _tiny_pairs(path, nan: bool = False):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 8, 8, generator=gen)
    y = torch.roll(x, 1, -1)
    if nan:
        x[5, 0, 3, 3] = float("nan")  # one pixel of one sample
    torch.save({"x": x, "y": y}, path)
    return str(path)


def _train_base_argv(data, out, *extra):
    return [
        "train-base", "--data", data, "--out", str(out), "--modes", "2", "--hidden", "4",
        "--layers", "1", "--epochs", "2", "--batch-size", "4", "--no-progress", *extra,
    ]  # fmt: skip


def _weights(path):
    return load_checkpoint(path)["model"]


def test_the_same_seed_gives_identical_weights_another_seed_others(tmp_path):
    data = _tiny_pairs(tmp_path / "pairs.pt")
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        torch.manual_seed(int(name, 16))  # the global RNG before the run must not matter
        assert main(_train_base_argv(data, tmp_path / name, "--seed", seed)) == 0
    a, b, c = (_weights(tmp_path / n / "last.pt") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    # The refiner too: U-Net initial weights, shuffling and sampled unroll lengths.
    refiner = ["train", "--data", data, "--base", str(tmp_path / "a" / "last.pt"), "--K", "2"]
    refiner += ["--unroll-max", "3", "--width", "2", "--depth", "1", "--epochs", "2"]
    refiner += ["--batch-size", "4", "--no-progress", "--seed", "3"]
    for name in ("ra", "rb"):
        torch.manual_seed(len(name) + ord(name[1]))
        assert main([*refiner, "--out", str(tmp_path / name)]) == 0
    a, b = (_weights(tmp_path / n / "last.pt") for n in ("ra", "rb"))
    assert all(torch.equal(a[k], b[k]) for k in a)


class Killed(BaseException):
    """Stands for SIGKILL: no handler of the CLI or the library runs."""


def test_a_run_killed_in_epoch_2_and_resumed_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    data = _tiny_pairs(tmp_path / "pairs.pt")
    assert main(_train_base_argv(data, tmp_path / "full")) == 0
    calls = iter(range(10**6))
    real = os.replace

    def replace(src, dst):  # epoch 1 commits with 9 renames; die at the 3rd of epoch 2
        if next(calls) == 11:
            raise Killed
        real(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        with pytest.raises(Killed):
            main(_train_base_argv(data, tmp_path / "killed"))
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 1
    assert main([*_train_base_argv(data, tmp_path / "killed"), "--resume"]) == 0
    for name in ("last.pt", "best.pt"):
        full, resumed = _weights(tmp_path / "full" / name), _weights(tmp_path / "killed" / name)
        assert all(torch.equal(full[k], resumed[k]) for k in full), name


def test_a_config_file_may_give_every_option_the_required_ones_too(tmp_path):
    data = _tiny_pairs(tmp_path / "pairs.pt")
    config = tmp_path / "run.toml"
    config.write_text(
        f"data = '{data}'\nout = '{tmp_path / 'out'}'\nmodes = 2\nhidden = 4\nlayers = 1\n"
        "epochs = 1\nno-progress = true\n"
    )
    assert main(["train-base", "--config", str(config)]) == 0
    assert load_checkpoint(tmp_path / "out" / "last.pt")["epoch"] == 1


def test_a_yaml_number_read_as_a_string_is_converted(tmp_path):
    data = _tiny_pairs(tmp_path / "pairs.pt")
    config = tmp_path / "run.yaml"
    config.write_text("lr: 1e-3\nepochs: 1\nno-validation: true\n")  # YAML reads 1e-3 as a str
    assert main(_train_base_argv(data, tmp_path / "out", "--config", str(config))) == 0
    saved = json.loads((tmp_path / "out" / "last.json").read_text())["config"]["train"]
    assert saved["lr"] == 1e-3 and saved["epochs"] == 1


def test_nan_training_data_fails_with_exit_1_naming_the_data(tmp_path, capsys):
    data = _tiny_pairs(tmp_path / "pairs.pt", nan=True)
    argv = _train_base_argv(data, tmp_path / "out", "--batch-size", "8", "--no-validation")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("irsolve train-base: error: epoch 1: 1 of 1 batches")
    assert "the training data holds NaN or infinite values" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fp-warmup: 2\n", {"fp_warmup_epochs": 2.0}),  # the flag's name
        ("fp_warmup_epochs: 3\n", {"fp_warmup_epochs": 3.0}),  # the field's name
        ("no-progress: true\n", {"progress": False}),
        ("progress: false\n", {"progress": False}),
        ("no-calibrate-scale: false\n", {"calibrate_scale": True}),
    ],
)
def test_a_config_key_may_be_the_flag_s_name_or_the_setting_s(tmp_path, text, expected):
    from irsolve.cli import build_parser

    config = tmp_path / "run.yaml"
    config.write_text(text)
    args = build_parser().parse_args(["train", "--config", str(config)])
    assert {k: getattr(args, k) for k in expected} == expected
