"""Wall-clock timing shared by the benchmark scripts (imported as ``timing``)."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import resource
import time
from collections.abc import Callable
from typing import Any


def elapsed(fn: Callable[[], object]) -> float:
    """Seconds taken by one call of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def wall_times(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``fn()``, after one untimed warm-up call."""
    fn()
    return [elapsed(fn) for _ in range(repeats)]


def run_in_child(fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """``(fn(*args), peak_rss_gb)`` from a forked child process, or ``None`` past ``timeout``
    seconds (the child is then killed).

    Each call gets a fresh process, so the peak resident memory is that call's own (it
    includes what the parent held at the fork: Python, torch and SciPy, about 0.2 GB).
    An exception in the child is re-raised here as a ``RuntimeError`` with its text.
    """
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(fn, args, queue))
    child.start()
    try:
        ok, value, peak = queue.get(timeout=timeout)
    except queue_module.Empty:
        child.kill()
        child.join()
        return None
    child.join()
    if not ok:
        raise RuntimeError(value)
    return value, peak


def _child(fn: Callable[..., Any], args: tuple, queue: Any) -> None:
    try:
        value, ok = fn(*args), True
    except Exception as error:  # reported to the parent, which re-raises it
        value, ok = f"{type(error).__name__}: {error}", False
    queue.put((ok, value, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20))
