"""``argparse`` types that check a flag's type and range, so a mistake is one line naming the flag.

Each factory returns a callable for ``add_argument(type=...)``; it raises
:class:`argparse.ArgumentTypeError`, which argparse prints as
``argument --lr: expected a finite real > 0, got 'inf'`` with exit code 2.
The same callables convert the values of a ``--config`` file (YAML reads
``1e-3`` as a string), see :func:`config_value`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["config_value", "device", "existing_path", "integer", "new_file", "path", "real"]


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def integer(minimum: int | None = None) -> Callable[[str], int]:
    """An ``int`` ``>= minimum``; integral spellings such as ``1e3`` are accepted."""
    wanted = "an int" + ("" if minimum is None else f" >= {minimum}")

    def parse(text: str) -> int:
        value = _number(text)
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
            value = int(value)
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = "int"
    return parse


def real(
    minimum: float | None = None, maximum: float | None = None, *, open_min: bool = False
) -> Callable[[str], float]:
    """A finite ``float`` in ``[minimum, maximum]`` (``(minimum, maximum]`` when ``open_min``)."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if open_min else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    wanted = "a finite real" + (" " + " and ".join(parts) if parts else "")

    def parse(text: str) -> float:
        value = float(_number(text))
        ok = math.isfinite(value)
        if ok and minimum is not None:
            ok = value > minimum if open_min else value >= minimum
        if ok and maximum is not None:
            ok = value <= maximum
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = "float"
    return parse


def device(text: str) -> str:
    """``auto`` or a torch device string this machine has (``cpu``, ``cuda``, ``cuda:1``...)."""
    if text == "auto":
        return text
    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected a torch device such as 'cpu' or 'cuda:0', got {text!r}"
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"expected a device this machine has, got {text!r}")
    return text


def path(text: str) -> Path:
    """A non-empty path (``""`` would silently mean the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    return Path(text)


def existing_path(text: str) -> Path:
    """A file or folder that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"expected an existing file or folder, got {text!r}")
    return path


def new_file(text: str) -> Path:
    """A file path whose folder exists (the file is written at the end of a run)."""
    path = Path(text)
    if path.is_dir() or not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"expected a file path in an existing folder, got {text!r}"
        )
    return path


def config_value(action: argparse.Action, value: Any) -> Any:
    """Check and convert ``value``, read from a config file, for the option of ``action``.

    Numbers and numeric strings go through the option's ``type`` (so
    ``lr: "1e-3"`` becomes ``0.001``); switches (``store_true``) take
    booleans only; ``null`` is accepted where the option's default is
    ``None``; choices are checked.

    Raises
    ------
    argparse.ArgumentTypeError
        Naming what was expected and what came.
    """
    if value is None:
        if action.default is None:
            return None
        raise argparse.ArgumentTypeError("expected a value, got null")
    if action.nargs == 0:  # a switch: store_true / store_false
        if not isinstance(value, bool):
            raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
        return value
    if isinstance(value, (bool, list, dict)):
        raise argparse.ArgumentTypeError(f"expected a single value, got {value!r}")
    if action.type is not None:
        value = action.type(str(value))
    elif not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected a string, got {value!r}")
    if action.choices is not None and value not in action.choices:
        listed = ", ".join(repr(c) for c in action.choices)
        raise argparse.ArgumentTypeError(f"expected one of {listed}, got {value!r}")
    return value
