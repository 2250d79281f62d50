"""irsolve.learned.settings: a field's range, declared once, is checked on construction."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from irsolve.learned.settings import SettingKind, check_settings, setting, setting_kind


@dataclasses.dataclass
class Example:
    count: int = setting(2, "an int >= 1", minimum=1)
    rate: float = setting(0.5, "a real in (0, 1]", minimum=0.0, maximum=1.0, open_min=True)
    mode: Literal["a", "b"] = setting("a", "a choice")
    limit: int | None = setting(None, "an optional int >= 0", minimum=0)
    switch: bool = setting(True, "a bool", flag="--toggle")
    plain: float = -1.0  # not a setting(): not checked

    def __post_init__(self) -> None:
        check_settings(self)


def test_defaults_pass_and_integral_floats_become_ints():
    example = Example(count=3.0)
    assert example.count == 3 and isinstance(example.count, int)
    assert Example(limit=0).limit == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"count": 0}, ValueError, "Example: expected count to be an int >= 1, got 0"),
        ({"count": 1.5}, ValueError, "expected count to be an int >= 1, got 1.5"),
        ({"count": "2"}, TypeError, "expected count to be an int >= 1, got '2' (str)"),
        ({"rate": 0.0}, ValueError, "expected rate to be a finite real > 0 and <= 1, got 0.0"),
        ({"rate": float("nan")}, ValueError, "expected rate to be a finite real > 0"),
        ({"mode": "c"}, ValueError, "expected mode to be one of 'a', 'b', got 'c'"),
        ({"limit": -1}, ValueError, "expected limit to be an int >= 0, got -1"),
        ({"switch": 1}, TypeError, "expected switch to be a bool, got 1 (int)"),
    ],
)
def test_an_out_of_range_value_names_the_class_and_the_field(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        Example(**kwargs)


def test_a_field_without_setting_is_left_alone():
    assert Example(plain=float("inf")).plain == float("inf")


def test_setting_kind_reads_optional_and_literal_annotations():
    assert setting_kind(Example, "limit") == SettingKind(int, None, True)
    assert setting_kind(Example, "mode").choices == ("a", "b")
    assert setting_kind(Example, "switch").base is bool
    assert Example.__dataclass_fields__["switch"].metadata["flag"] == "--toggle"


def test_an_annotation_it_cannot_check_is_a_type_error():
    @dataclasses.dataclass
    class Bad:
        pair: tuple = setting((1, 2), "a pair")

    with pytest.raises(TypeError, match="Bad.pair: expected int, float, bool, str or a Literal"):
        check_settings(Bad())
