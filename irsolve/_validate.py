"""Argument checks shared by the public constructors and functions.

Each check returns the value converted to its plain Python type, or raises an
error whose message names the public function (``owner``) and the argument:
``TypeError`` for a value of the wrong kind (a string, ``None``, a bool where a
number is expected), ``ValueError`` for a number out of range, NaN or
infinite, or a non-integral float where an integer is expected.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "FLOAT_DTYPES",
    "check_bool",
    "check_choice",
    "check_float_dtype",
    "check_int",
    "check_memory",
    "check_real",
    "memory_bytes",
]

#: Floating dtypes the numerical kernels support on every device.
FLOAT_DTYPES = (torch.float32, torch.float64)


def _shown(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(owner: str, name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` as an ``int``; integral floats (``1e4``) are accepted, bools are not."""
    wanted = "an int" + ("" if minimum is None else f" >= {minimum}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected {name} to be {wanted}, got {_shown(value)}")
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        result = int(value)
    else:
        raise ValueError(f"{owner}: expected {name} to be {wanted}, got {_shown(value)}")
    if minimum is not None and result < minimum:
        raise ValueError(f"{owner}: expected {name} to be {wanted}, got {value!r}")
    return result


def check_dim(owner: str, dim: Any) -> int:
    """``dim`` (grid dimensions) as the ``int`` 2 or 3; integral floats pass, bools do not."""
    dim = check_int(owner, "dim", dim)
    if dim not in (2, 3):
        raise ValueError(f"{owner}: expected dim 2 or 3, got {dim}")
    return dim


def check_real(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a ``float`` in the given range (closed unless ``open_*``); NaN never passes."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if open_min else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<' if open_max else '<='} {maximum:g}")
    wanted = ("a finite real" if finite else "a real") + (
        " " + " and ".join(parts) if parts else ""
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected {name} to be {wanted}, got {_shown(value)}")
    result = float(value)
    ok = not math.isnan(result) and (math.isfinite(result) or not finite)
    if ok and minimum is not None:
        ok = result > minimum if open_min else result >= minimum
    if ok and maximum is not None:
        ok = result < maximum if open_max else result <= maximum
    if not ok:
        raise ValueError(f"{owner}: expected {name} to be {wanted}, got {value!r}")
    return result


def check_bool(owner: str, name: str, value: Any) -> bool:
    """``value`` if it is a bool (NumPy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: expected {name} to be a bool, got {_shown(value)}")
    return bool(value)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        error = ValueError if isinstance(value, str) else TypeError
        raise error(f"{owner}: expected {name} to be one of {listed}, got {_shown(value)}")
    return value


def check_float_dtype(owner: str, name: str, dtype: Any) -> torch.dtype:
    """``dtype`` if it is ``torch.float32`` or ``torch.float64``."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{owner}: expected {name} to be a torch.dtype, got {_shown(dtype)}")
    if dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{owner}: expected {name} to be torch.float32 or torch.float64, got {dtype}"
        )
    return dtype


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (``None`` where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _size(nbytes: float) -> str:
    """``12.3 GiB``: a byte count in the largest binary unit (up to TiB) that keeps it >= 1."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while nbytes >= 1024 and power < len(units) - 1:
        nbytes /= 1024
        power += 1
    return f"{nbytes:.3g} {units[power]}"


def check_memory(owner: str, what: str, nbytes: float) -> None:
    """Raise before allocating ``nbytes`` for ``what`` if the machine's memory cannot hold it.

    ``nbytes`` is the caller's estimate: a measured peak where the caller
    knows one (:class:`~irsolve.solvers.Poisson2D`, ``irsolve solve``), else
    the arrays named in ``what``, working copies on top. It is compared with
    the physical memory, not what is free now, so only what cannot fit on an
    idle machine is refused (nothing is refused where the OS does not report
    its memory).

    Raises
    ------
    ValueError
        ``Poisson2D: building the stencil and fields of a batch of 1 on a 30000
        x 30000 grid (torch.float64, a measured peak of 12 fields) would need
        about 80.5 GiB, more than this machine's 23.4 GiB of memory``.
    """
    total = memory_bytes()
    if total is not None and nbytes > total:
        raise ValueError(
            f"{owner}: {what} would need about {_size(nbytes)}, more than this machine's "
            f"{_size(total)} of memory"
        )
