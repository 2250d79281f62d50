"""Wall-clock timing shared by the benchmark scripts (imported as ``timing``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def elapsed(fn: Callable[[], object]) -> float:
    """Seconds taken by one call of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def wall_times(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``fn()``, after one untimed warm-up call."""
    fn()
    return [elapsed(fn) for _ in range(repeats)]
