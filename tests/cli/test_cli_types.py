"""argparse types: parsed values, the ranges they enforce, and config-file values through them."""

import argparse

import pytest

from irsolve.cli.types import config_value, existing_path, integer, new_file, path, real


@pytest.mark.parametrize(("text", "value"), [("3", 3), ("1e3", 1000), ("4.0", 4)])
def test_integer_accepts_integral_spellings(text, value):
    parsed = integer(1)(text)
    assert parsed == value and isinstance(parsed, int)


@pytest.mark.parametrize("text", ["0", "1.5", "inf", "nan", "two", ""])
def test_integer_rejects_what_is_not_an_int_at_least_the_minimum(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        integer(1)(text)


@pytest.mark.parametrize(
    ("parse", "text", "accepted"),
    [
        (real(0.0, open_min=True), "1e-3", True),
        (real(0.0, open_min=True), "0", False),  # open at the minimum
        (real(0.0), "0", True),  # closed at the minimum
        (real(0.0, 1.0), "1", True),
        (real(0.0, 1.0), "1.0000001", False),
        (real(), "-inf", False),  # never infinite
        (real(), "nan", False),  # never NaN
    ],
)
def test_real_enforces_finiteness_and_the_range(parse, text, accepted):
    if accepted:
        assert parse(text) == float(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="expected a finite real"):
            parse(text)


def _actions() -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=real(0.0, open_min=True), default=1e-3)
    parser.add_argument("--steps", type=integer(0), default=None)
    parser.add_argument("--norm", choices=("batch", "layer"), default="batch")
    parser.add_argument("--resume", action="store_true")
    return {a.dest: a for a in parser._actions}


@pytest.mark.parametrize(
    ("dest", "value", "expected"),
    [
        ("lr", "1e-3", 1e-3),  # YAML 1.1 reads 1e-3 as a string
        ("lr", 2, 2.0),
        ("steps", None, None),  # null where the default is None
        ("steps", 8, 8),
        ("norm", "layer", "layer"),
        ("resume", True, True),
    ],
)
def test_config_values_are_converted_like_the_flag(dest, value, expected):
    assert config_value(_actions()[dest], value) == expected


@pytest.mark.parametrize(
    ("dest", "value", "message"),
    [
        ("lr", None, "expected a value, got null"),
        ("lr", True, "expected a single value, got True"),
        ("lr", [1e-3], "expected a single value"),
        ("lr", "inf", "expected a finite real > 0"),
        ("steps", 2.5, "expected an int >= 0, got '2.5'"),
        ("norm", "group", "expected one of 'batch', 'layer', got 'group'"),
        ("resume", "yes", "expected true or false, got 'yes'"),
    ],
)
def test_bad_config_values_raise_saying_what_was_expected(dest, value, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        config_value(_actions()[dest], value)


@pytest.mark.parametrize("parse", [path, new_file])
def test_a_quoted_tilde_means_the_home_folder_not_a_folder_named_tilde(
    parse, tmp_path, monkeypatch
):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse("~/x.json") == tmp_path / "x.json"
    assert existing_path("~") == tmp_path
