"""Processes, ranks and devices: one module for runs on one CPU and runs under ``torchrun``.

``torchrun --nproc_per_node=N`` (PyTorch's launcher) starts N copies of a
program and tells each its place through the environment (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`session` turns that into a ``torch.distributed`` process group
(backend ``nccl`` when the process computes on a CUDA device, ``gloo``
otherwise) and destroys it on exit, also when the body raises. Without
``torchrun`` it initialises nothing: :func:`world_size` is 1,
:func:`rank` is 0 and every helper below is the identity, so a
single-process run computes exactly what it computed before multi-process
support existed.

What uses it:

- :func:`irsolve.learned.training.fit` wraps the objective in
  ``DistributedDataParallel`` and reads its data through
  ``DistributedSampler`` when the world size exceeds 1;
- :func:`irsolve.learned.evaluate.evaluate` measures its rank's block of the
  samples (:func:`shard`) and combines the sums over ranks
  (:func:`all_gather_objects`), so every rank reports the same numbers;
- :func:`shard_solve` solves a batch split over the ranks and gathers the
  :class:`~irsolve.Solution` on rank 0, in the original sample order.

The ``irsolve`` command line runs every command inside :func:`session`, so
``torchrun --nproc_per_node=2 -m irsolve.cli train ...`` needs no other
change than the launcher.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from irsolve._validate import check_int
from irsolve.engine import solve
from irsolve.interface import FixedPointSolver, Problem
from irsolve.solution import Solution

__all__ = [
    "all_gather_objects",
    "all_true",
    "barrier",
    "broadcast_buffers",
    "is_main",
    "launched",
    "local_rank",
    "merge_solutions",
    "rank",
    "resolve_device",
    "session",
    "shard",
    "shard_bounds",
    "shard_solve",
    "world_size",
]

logger = logging.getLogger(__name__)


def launched() -> bool:
    """Whether a launcher (``torchrun``) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes of the process group; 1 without one."""
    return dist.get_world_size() if _active() else 1


def rank() -> int:
    """This process's rank in the process group; 0 without one."""
    return dist.get_rank() if _active() else 0


def local_rank() -> int:
    """This process's index on its node (``LOCAL_RANK``, set by ``torchrun``); 0 without it."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on rank 0, the process that writes checkpoints, logs and results."""
    return rank() == 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device a process computes on.

    ``"auto"`` is ``cuda:LOCAL_RANK`` when CUDA is available (one GPU per
    process, as ``torchrun`` places them), else ``cpu``. A bare ``"cuda"``
    under ``torchrun`` also means the process's own GPU, ``cuda:LOCAL_RANK``.
    Any other value is taken as given.

    Raises
    ------
    ValueError
        When ``device`` is not a torch device name or ``"auto"``, or names a
        CUDA device this machine lacks.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank() % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"expected device to be 'auto' or a torch device such as 'cpu' or 'cuda:0', "
            f"got {device!r}"
        ) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index or 0) >= count:
            raise ValueError(
                f"expected device to be one this machine has ({count} CUDA devices), got {device!r}"
            )
        if parsed.index is None and launched():
            return torch.device("cuda", local_rank() % count)
    return parsed


@contextlib.contextmanager
def session(device: str | torch.device = "auto", *, quiet: bool = True) -> Iterator[torch.device]:
    """Join the process group ``torchrun`` set up, for the duration of a ``with`` block.

    Under ``torchrun`` (``WORLD_SIZE > 1``) and with no process group yet,
    this initialises one from the environment, with backend ``nccl`` when
    ``device`` resolves to a CUDA device (made this process's current
    device) and ``gloo`` otherwise, and destroys it when the block ends,
    normally or by an exception. A group that already exists (initialised by
    the caller) is used and left alone. Without ``torchrun`` nothing happens.

    Parameters
    ----------
    device
        As for :func:`resolve_device`; the resolved device is yielded.
    quiet
        On ranks other than 0, send standard output to nothing and log only
        errors for the block's duration, so a run prints its tables and
        progress once.

    Examples
    --------
    >>> with session("cpu") as device:
    ...     print(device, world_size(), rank())
    cpu 1 0
    """
    resolved = resolve_device(device)
    owned = False
    if launched() and not _active():
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        owned = True
        logger.info(
            "rank %d of %d joined the process group (%s, %s)",
            rank(),
            world_size(),
            backend,
            resolved,
        )
    try:
        with _quiet(quiet and not is_main()):
            yield resolved
    finally:
        if owned:
            dist.destroy_process_group()


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Standard output discarded and logging raised to ERROR while ``enabled``."""
    if not enabled:
        yield
        return
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def barrier() -> None:
    """Wait until every rank reaches this point (nothing without a process group)."""
    if world_size() > 1:
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` without a process group).

    For small picklable summaries (metric sums, counts, return codes), not
    for bulk tensors.
    """
    if world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_true(flag: Tensor) -> bool:
    """Whether a boolean scalar tensor is true on every rank (one all-reduce of one int)."""
    if world_size() == 1:
        return bool(flag)
    value = flag.detach().to(torch.int32).reshape(1)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value)


def broadcast_buffers(module: nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics, ...)."""
    if world_size() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous block of ``n`` items over ``world`` ranks.

    Blocks differ in size by at most one and, concatenated in rank order,
    give ``0 .. n - 1`` in order: ``start = rank * n // world``.
    """
    if world < 1 or not 0 <= rank < world or n < 0:
        raise ValueError(
            f"expected n >= 0 and 0 <= rank < world, got n={n}, rank={rank}, world={world}"
        )
    return rank * n // world, (rank + 1) * n // world


def shard(data: Dataset) -> Dataset:
    """This rank's contiguous block of ``data`` (``data`` itself without a process group)."""
    if world_size() == 1:
        return data
    start, stop = shard_bounds(len(data), rank(), world_size())
    return Subset(data, range(start, stop))


def _pad_rows(t: Tensor, rows: int, repeat_last: bool) -> Tensor:
    """``t`` extended along dim 0 to ``rows`` rows, with NaN or with copies of its last row."""
    missing = rows - t.shape[0]
    if missing <= 0:
        return t
    fill = (
        t[-1:].expand(missing, *t.shape[1:])
        if repeat_last
        else t.new_full((missing, *t.shape[1:]), float("nan"))
    )
    return torch.cat([t, fill])


def merge_solutions(parts: list[Solution], *, parallel: bool = False) -> Solution:
    """One :class:`~irsolve.Solution` for the samples of ``parts``, concatenated in order.

    ``residuals``, ``updates`` and ``trajectory`` of parts that took fewer
    steps are padded to the longest part's length the way a solve pads a
    stopped sample (NaN measures; the trajectory repeats the last iterate).
    ``stats``: ``steps`` is the most of any part, ``sample_steps`` and
    ``steps_per_solver`` are summed, ``wall_time`` is summed for parts solved
    one after another and the longest for parts solved in ``parallel``
    (on several ranks), ``terminated`` is set when a callback stopped any part.

    Raises
    ------
    ValueError
        When ``parts`` is empty or the parts measure different criteria.
    """
    if not parts:
        raise ValueError("expected at least one Solution to merge, got none")
    criteria = {p.criterion for p in parts}
    if len(criteria) != 1:
        raise ValueError(f"expected parts of one criterion, got {sorted(criteria)}")
    rows = max(p.residuals.shape[0] for p in parts)
    trajectory = None
    if all(p.trajectory is not None for p in parts):
        trajectory = torch.cat([_pad_rows(p.trajectory, rows, True) for p in parts], dim=1)
    per_solver: Counter[str] = Counter()
    for p in parts:
        per_solver.update(p.stats.get("steps_per_solver", {}))
    times = [p.stats.get("wall_time", 0.0) for p in parts]
    stats = {
        "steps": max(p.stats.get("steps", 0) for p in parts),
        "sample_steps": sum(p.stats.get("sample_steps", 0) for p in parts),
        "steps_per_solver": dict(per_solver),
        "wall_time": max(times) if parallel else sum(times),
        "terminated": any(p.stats.get("terminated", False) for p in parts),
    }
    return Solution(
        u=torch.cat([p.u for p in parts]),
        retcodes=[code for p in parts for code in p.retcodes],
        iterations=torch.cat([p.iterations for p in parts]),
        residuals=torch.cat([_pad_rows(p.residuals, rows, False) for p in parts], dim=1),
        updates=torch.cat([_pad_rows(p.updates, rows - 1, False) for p in parts], dim=1),
        criterion=criteria.pop(),
        final_residuals=torch.cat([p.final_residuals for p in parts]),
        trajectory=trajectory,
        stats=stats,
    )


def _to_cpu(sol: Solution) -> Solution:
    moved = {
        name: getattr(sol, name).cpu() if isinstance(getattr(sol, name), Tensor) else None
        for name in ("u", "iterations", "residuals", "updates", "final_residuals", "trajectory")
    }
    return Solution(retcodes=sol.retcodes, criterion=sol.criterion, stats=dict(sol.stats), **moved)


def shard_solve(
    base: Callable[[Any], Tensor] | Tensor | None,
    refiner: FixedPointSolver,
    x: Tensor | Problem,
    *,
    batch_size: int | None = None,
    **options: Any,
) -> Solution | None:
    """:func:`irsolve.solve` of a batch split over the ranks, gathered on rank 0 in order.

    Rank ``r`` solves the samples ``shard_bounds(B, r, world)`` of ``x`` (a
    tensor ``(B, C, *space)`` or a :class:`~irsolve.interface.Problem`,
    restricted to those rows), ``batch_size`` at a time (default: its whole
    block at once); a tensor ``base`` (``h0``) is split the same way. The
    solutions are moved to the CPU once the solves are done, gathered on
    rank 0 and merged by :func:`merge_solutions` (``u`` and ``trajectory``
    back on ``x``'s device). Without a process group and with
    ``batch_size=None`` this is :func:`irsolve.solve` itself.

    Parameters
    ----------
    base, refiner, options
        As for :func:`irsolve.solve` (``tol``, ``rtol``, ``maxiter``, ...).
    x
        The batch of inputs or the batched problem.
    batch_size
        Samples per solve on each rank (``>= 1``), to bound memory.

    Returns
    -------
    Solution or None
        Every sample's solution on rank 0; ``None`` on the other ranks.
    """
    if batch_size is not None:
        batch_size = check_int("shard_solve", "batch_size", batch_size, minimum=1)
    world = world_size()
    if world == 1 and batch_size is None:
        return solve(base, refiner, x, **options)
    n = x.batch_size if isinstance(x, Problem) else x.shape[0]
    device = x.zeros().device if isinstance(x, Problem) else x.device
    start, stop = shard_bounds(n, rank(), world)
    step = batch_size or max(stop - start, 1)
    parts = []
    for lo in range(start, stop, step):
        rows = torch.arange(lo, min(lo + step, stop), device=device)
        xs = x.restrict(rows) if isinstance(x, Problem) else x.index_select(0, rows)
        hs = base.index_select(0, rows.to(base.device)) if isinstance(base, Tensor) else base
        parts.append(solve(hs, refiner, xs, **options))
    if world == 1:
        return merge_solutions(parts)
    local = merge_solutions(parts) if parts else None
    gathered: list[Any] | None = [None] * world if is_main() else None
    dist.gather_object(local and _to_cpu(local), gathered, dst=0)
    if gathered is None:
        return None
    merged = merge_solutions([p for p in gathered if p is not None], parallel=True)
    merged.u = merged.u.to(device)
    if merged.trajectory is not None:
        merged.trajectory = merged.trajectory.to(device)
    return merged
