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
import os
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


def _has_device(parsed: torch.device) -> bool:
    """Whether this machine can compute on ``parsed`` (``meta`` holds no data: no)."""
    if parsed.type == "cpu":
        return True
    if parsed.type == "cuda":
        return torch.cuda.is_available() and (parsed.index or 0) < torch.cuda.device_count()
    if parsed.type == "mps":
        return torch.backends.mps.is_available()
    return False


def device(text: str) -> str:
    """``auto`` or a torch device this machine has: ``cpu``, ``cuda[:N]``, ``mps``."""
    if text == "auto":
        return text
    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected a torch device such as 'cpu' or 'cuda:0', got {text!r}"
        ) from None
    if not _has_device(parsed):
        raise argparse.ArgumentTypeError(
            f"expected a device this machine has (auto, cpu{_available_accelerators()}), "
            f"got {text!r}"
        )
    return text


def _available_accelerators() -> str:
    """``, cuda:0, cuda:1`` / ``, mps`` for the accelerators present, else ``""``."""
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    names += ["mps"] if torch.backends.mps.is_available() else []
    return "".join(f", {name}" for name in names)


def path(text: str) -> Path:
    """A non-empty path, ``~`` expanded as a shell would (``""`` would silently mean the current
    folder; a quoted ``'~/x'`` would otherwise make a folder named ``~``)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~user of no such user, or no home folder
        raise argparse.ArgumentTypeError(
            f"expected a path whose ~ names a home folder, got {text!r}"
        ) from None


def existing_path(text: str) -> Path:
    """A file or folder that exists (``~`` expanded)."""
    found = path(text)
    if not found.exists():
        raise argparse.ArgumentTypeError(f"expected an existing file or folder, got {text!r}")
    return found


def new_file(text: str) -> Path:
    """A regular file this process may write, in an existing folder (``~`` expanded).

    Checked when the flags are parsed, so that a results file that cannot be
    written (``/dev/full``, a read-only folder) fails before a long run, not
    after it.
    """
    file = path(text)
    if file.is_dir() or not file.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"expected a file path in an existing folder, got {text!r}"
        )
    if file.exists() and not file.is_file():
        raise argparse.ArgumentTypeError(
            f"expected a regular file path (not a device, pipe or socket), got {text!r}"
        )
    if not os.access(file if file.exists() else file.parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"expected a file path this user may write, got {text!r}")
    return file


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
