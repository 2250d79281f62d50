""":func:`run_demo`: the demo's parts in order, one folder of results and ``report.md``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from .darcy import TOL, run_hybrid, run_multigrid_table
from .navier_stokes import run_navier_stokes
from .report import markdown
from .settings import DemoCache, DemoSettings, default_cache_dir

__all__ = ["PARTS", "run_demo"]

#: The demo's parts, in the order they run.
PARTS = ("navier_stokes", "hybrid", "multigrid")


@contextlib.contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch and BLAS threads (``threadpoolctl``), then
    restore torch's count; ``None`` leaves them as they are. Every CLI command runs
    inside it (``--threads``, default 1: on a loaded CPU one thread is fastest)."""
    if threads is None:
        yield
        return
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"expected threads to be a positive int or None, got {threads!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def run_demo(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    settings: DemoSettings | None = None,
    parts: tuple[str, ...] = PARTS,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo parts and write ``report.md``, ``summary.json`` and figures to ``out``.

    Parameters
    ----------
    out
        Report folder (created).
    quick
        Use :meth:`DemoSettings.preset` ``(quick=True)`` (ignored when ``settings`` is given).
    cache_dir
        Cache root (default :func:`default_cache_dir`); the run uses the
        sub-folder :meth:`DemoSettings.key`.
    settings
        Explicit sizes (tests use tiny ones).
    parts
        Any of :data:`PARTS`.
    threads
        Threads of torch and of the BLAS / OpenMP pools under NumPy, SciPy and
        PyAMG for the run (``threadpoolctl``); ``None`` leaves them as they
        are. On a loaded CPU one thread is fastest: PyAMG's set-up measured
        10-40 times slower at 127^2 with idle-spinning BLAS threads than with one.
    progress
        Show progress bars (simulation, training epochs, solver rows).

    Returns
    -------
    dict
        The content of ``summary.json``: ``settings``, ``summary`` (the rows
        of :func:`~irsolve.demo.report.summary_table`), each part's results,
        ``built`` (what the cache had to train or simulate), ``wall_s``,
        ``part_wall_s`` and ``load_average`` (1, 5 and 15 minutes, at the end).
    """
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"expected parts among {PARTS}, got {parts!r}")
    settings = settings or DemoSettings.preset(quick)
    if threads is not None:
        with limited_threads(threads):
            return run_demo(
                out, cache_dir=cache_dir, settings=settings, parts=parts, progress=progress
            )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = DemoCache(default_cache_dir() if cache_dir is None else cache_dir, settings)
    tic = time.perf_counter()
    result: dict[str, Any] = {"settings": dataclasses.asdict(settings), "summary": []}
    result["part_wall_s"] = {}
    runners = {
        "navier_stokes": lambda: run_navier_stokes(settings, cache, out, progress=progress),
        "hybrid": lambda: run_hybrid(settings, cache, out, progress=progress),
        "multigrid": lambda: run_multigrid_table(settings, progress=progress),
    }
    for part in PARTS:
        if part in parts:
            start = time.perf_counter()
            result[part] = runners[part]()
            result["summary"] += result[part].pop("summary")
            result["part_wall_s"][part] = time.perf_counter() - start
    result["built"] = cache.built
    result["cache"] = str(cache.root)
    result["wall_s"] = time.perf_counter() - tic
    result["load_average"] = list(os.getloadavg())
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    (out / "report.md").write_text(markdown(result, parts, TOL))
    return result


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return float(value)
