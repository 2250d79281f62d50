"""irsolve.cli.flags: flags generated from settings dataclasses agree with the dataclass."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from irsolve.cli.flags import (
    VOCABULARY,
    add_flags,
    add_settings_arguments,
    require,
    settings_from_args,
)
from irsolve.learned.training import RefinerConfig, TrainConfig


class _Raising(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(message)


def _parser(settings, **kwargs) -> argparse.ArgumentParser:
    parser = _Raising()
    add_settings_arguments(parser, settings, **kwargs)
    return parser


@pytest.mark.parametrize("settings", [TrainConfig, RefinerConfig])
def test_no_flags_give_the_dataclass_defaults(settings):
    args = _parser(settings).parse_args([])
    assert settings_from_args(settings, args) == settings()


@pytest.mark.parametrize("settings", [TrainConfig, RefinerConfig])
def test_every_field_has_a_flag_with_the_field_s_help(settings):
    parser = _parser(settings)
    by_dest = {a.dest: a for a in parser._actions}
    for field in dataclasses.fields(settings):
        assert field.name in by_dest, field.name
        assert field.metadata["help"].lower() in by_dest[field.name].help.lower()


def test_flags_convert_like_the_dataclass_and_bool_fields_become_switches():
    argv = ["--K", "1e1", "--alpha", "0.5", "--fp-warmup", "2", "--unroll-max", "12"]
    argv += ["--jac-method", "power", "--no-calibrate-scale", "--stop-threshold", "1e-3"]
    config = settings_from_args(RefinerConfig, _parser(RefinerConfig).parse_args(argv))
    assert config == RefinerConfig(
        K=10,
        alpha=0.5,
        fp_warmup_epochs=2.0,
        unroll_max=12,
        jac_method="power",
        calibrate_scale=False,
        stop_threshold=1e-3,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--K", "0"], "argument --K: expected an int >= 1, got '0'"),
        (["--alpha", "0"], "argument --alpha: expected a finite real > 0, got '0'"),
        (["--start-mix", "2"], "argument --start-mix: expected a finite real >= 0 and <= 1"),
        (["--jac-method", "exact"], "argument --jac-method: invalid choice: 'exact'"),
    ],
)
def test_the_field_s_range_is_the_flag_s(argv, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _parser(RefinerConfig).parse_args(argv)


def test_a_cross_field_rule_is_checked_when_the_settings_are_built():
    args = _parser(RefinerConfig).parse_args(["--K", "6", "--unroll-max", "3"])
    with pytest.raises(ValueError, match="expected unroll_max to be an int >= 6, got 3"):
        settings_from_args(RefinerConfig, args)


def test_only_exclude_and_per_command_defaults():
    parser = _parser(TrainConfig, only=("lr", "device"), defaults={"lr": 1e-3})
    dests = {a.dest for a in parser._actions} - {"help"}
    assert dests == {"lr", "device"}
    assert parser.parse_args([]).lr == 1e-3
    override = _parser(RefinerConfig, only=("alpha_decay",), defaults={"alpha_decay": None})
    assert override.parse_args([]).alpha_decay is None
    assert "as trained" in override._actions[-1].help


def test_add_flags_uses_the_vocabulary_and_only_help_required_default_may_differ():
    parser = _Raising()
    add_flags(parser, "--samples", "--split", samples={"default": 3})
    args = parser.parse_args([])
    assert args.samples == 3 and args.split == VOCABULARY["--split"]["default"]
    with pytest.raises(ValueError, match="expected overrides of --split among"):
        add_flags(_Raising(), "--split", split={"choices": ("a",)})
    with pytest.raises(ValueError, match="expected a flag of VOCABULARY, got '--nope'"):
        add_flags(_Raising(), "--nope")


def test_require_names_every_missing_flag():
    with pytest.raises(ValueError, match="expected --data, --out as flags, got none"):
        require(argparse.Namespace(data=None, out=None, base="b"), "data", "out", "base")
    require(argparse.Namespace(data="d"), "data")
