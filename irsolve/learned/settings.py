"""Settings dataclasses whose fields carry their range and help: one source for checks and flags.

A field declared with :func:`setting` keeps its help text, its range and,
where it differs from the field name, its command-line flag in the field's
metadata. The dataclass's ``__post_init__`` calls :func:`check_settings`,
which checks every field against its annotation (``int``, ``float``,
``bool``, a ``Literal`` of strings, each optionally ``| None``) and that
range; :func:`irsolve.cli.flags.add_settings_arguments` turns the same
fields into ``argparse`` flags with the same range, so a setting's name,
type, default, range and help are written once.

>>> @dataclasses.dataclass
... class Example:
...     lr: float = setting(3e-4, "learning rate", minimum=0.0, open_min=True)
...     def __post_init__(self) -> None:
...         check_settings(self)
>>> Example(lr=0.0)
Traceback (most recent call last):
...
ValueError: Example: expected lr to be a finite real > 0, got 0.0
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from irsolve._validate import check_bool, check_choice, check_int, check_real

__all__ = ["SettingKind", "check_settings", "setting", "setting_kind"]


def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    flag: str | None = None,
) -> Any:
    """A dataclass field with its help, range (``[minimum, maximum]``, or ``(minimum, ...``
    when ``open_min``) and command-line ``flag`` (default ``--field-name``)."""
    metadata = {"help": help, "minimum": minimum, "maximum": maximum, "open_min": open_min}
    return dataclasses.field(default=default, metadata={**metadata, "flag": flag})


@dataclasses.dataclass(frozen=True)
class SettingKind:
    """What a field's annotation allows: ``base`` (``int``, ``float``, ``bool`` or ``str``),
    ``choices`` (for a ``Literal``, ``base`` is then ``str``) and whether ``None`` is allowed."""

    base: type
    choices: tuple[str, ...] | None
    optional: bool


def setting_kind(cls: type, name: str) -> SettingKind:
    """The :class:`SettingKind` of field ``name`` of dataclass ``cls``.

    Raises
    ------
    TypeError
        When the annotation is not one :func:`check_settings` understands.
    """
    annotation = typing.get_type_hints(cls)[name]
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"{cls.__name__}.{name}: expected one type or None, got {annotation}")
        annotation = members[0]
    if typing.get_origin(annotation) is Literal:
        return SettingKind(str, tuple(typing.get_args(annotation)), optional)
    if annotation not in (int, float, bool, str):
        raise TypeError(
            f"{cls.__name__}.{name}: expected int, float, bool, str or a Literal, got {annotation}"
        )
    return SettingKind(annotation, None, optional)


def check_settings(obj: Any) -> None:
    """Check and convert, in place, every field of the dataclass ``obj`` made by :func:`setting`.

    Raises
    ------
    TypeError, ValueError
        As the checks of :mod:`irsolve._validate`, naming the class and the field:
        ``TrainConfig: expected lr to be a finite real > 0, got 0.0``.
    """
    owner = type(obj).__name__
    for field in dataclasses.fields(obj):
        if "help" not in field.metadata:
            continue
        value, meta = getattr(obj, field.name), field.metadata
        kind = setting_kind(type(obj), field.name)
        if value is None and kind.optional:
            continue
        if kind.choices is not None:
            value = check_choice(owner, field.name, value, kind.choices)
        elif kind.base is bool:
            value = check_bool(owner, field.name, value)
        elif kind.base is int:
            value = check_int(owner, field.name, value, minimum=meta["minimum"])
        elif kind.base is float:
            value = check_real(
                owner,
                field.name,
                value,
                minimum=meta["minimum"],
                maximum=meta["maximum"],
                open_min=meta["open_min"],
            )
        elif not isinstance(value, str):
            raise TypeError(f"{owner}: expected {field.name} to be a string, got {value!r}")
        setattr(obj, field.name, value)
