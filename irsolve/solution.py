"""What a solve returns: per-sample return codes and the :class:`Solution` record."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = ["ReturnCode", "Solution"]


class ReturnCode(enum.IntEnum):
    """Why a sample stopped (after SciMLBase's ``ReturnCode``).

    ``DEFAULT`` marks a sample still being iterated (seen only through
    :func:`irsolve.init`). ``SUCCESS``: the convergence test passed.
    ``COMPLETED``: the requested ``maxiter`` steps were done with no
    convergence test (``tol=None``). ``MAX_ITERS``: ``maxiter`` steps were
    done without passing the test. ``STALLED``, ``DIVERGED``, ``UNSTABLE``:
    no new lowest measure in ``patience`` steps, growth past ``divergence``
    times the start, a non-finite measure. ``TERMINATED``: a callback
    stopped the solve.
    """

    DEFAULT = 0
    SUCCESS = 1
    MAX_ITERS = 2
    STALLED = 3
    DIVERGED = 4
    UNSTABLE = 5
    TERMINATED = 6
    COMPLETED = 7

    @property
    def ok(self) -> bool:
        """True for a sample that did what was asked: ``SUCCESS`` or ``COMPLETED``."""
        return self in (ReturnCode.SUCCESS, ReturnCode.COMPLETED)

    def __str__(self) -> str:
        return self.name


@dataclass
class Solution:
    """The result of :func:`irsolve.solve`.

    Attributes
    ----------
    u : Tensor
        ``(B, C, *space)``: the last iterate of each sample that ended
        ``SUCCESS`` or ``COMPLETED`` (and ``TERMINATED`` under ``tol=None``);
        for any other sample, the iterate with the lowest convergence measure.
    retcodes : list[ReturnCode]
        Why each sample stopped (see :class:`ReturnCode`).
    iterations : Tensor
        ``(B,)`` long: steps applied to each sample.
    residuals : Tensor
        ``(steps + 1, B)``: the convergence measure per step (row 0 at ``h0``),
        NaN once a sample has stopped. The measure is the RMS (or ``norm``)
        of the physical residual ``f - A h`` when the solver defines one
        (``criterion == "residual"``), else of the update ``h_{k+1} - h_k``,
        attributed to ``h_{k+1}`` (``criterion == "update"``; row 0 is NaN).
    updates : Tensor
        ``(steps, B)``: norm of ``h_{k+1} - h_k``, NaN once a sample stopped.
    criterion : str
        ``"residual"`` or ``"update"``: what ``residuals`` measures.
    final_residuals : Tensor
        ``(B,)`` float64: the convergence measure of the iterate returned in
        ``u`` for each sample (its last measure when it ended ``SUCCESS`` or
        ``COMPLETED``, its lowest when the best iterate was kept). NaN for a
        sample returned at ``h0`` under the update criterion, where ``h0``
        has no measure.
    trajectory : Tensor or None
        ``(steps + 1, B, C, *space)`` iterates ``h_0 .. h_k`` when
        ``save_trajectory=True`` (a stopped sample repeats its last iterate).
    stats : dict
        ``steps`` (iterations of the loop), ``sample_steps`` (steps summed
        over samples), ``steps_per_solver`` (sample steps by solver name, for
        composites), ``wall_time`` (seconds), ``terminated`` (a callback
        stopped the solve).
    """

    u: Tensor
    retcodes: list[ReturnCode]
    iterations: Tensor
    residuals: Tensor
    updates: Tensor
    criterion: str
    final_residuals: Tensor
    trajectory: Tensor | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def retcode(self) -> ReturnCode:
        """The most frequent failure; ``SUCCESS`` or ``COMPLETED`` when no sample failed.

        ``COMPLETED`` for a solve without convergence test (``tol=None``),
        whose samples all ran the requested steps.
        """
        failures = [code for code in self.retcodes if not code.ok]
        if failures:
            return Counter(failures).most_common(1)[0][0]
        if ReturnCode.COMPLETED in self.retcodes:
            return ReturnCode.COMPLETED
        return ReturnCode.SUCCESS

    @property
    def relative_residuals(self) -> Tensor:
        """``(B,)``: ``final_residuals`` over each sample's measure at ``h0``, the quantity
        ``rtol`` bounds; NaN under the update criterion (``h0`` has no measure) or where
        the start's residual is zero."""
        start = self.residuals[0] if len(self.residuals) else self.final_residuals
        return self.final_residuals / start.where(start > 0, start.new_tensor(float("nan")))

    @property
    def success(self) -> bool:
        """True when every sample did what was asked: converged, or (``tol=None``) ran
        every requested step."""
        return self.retcode.ok

    def __repr__(self) -> str:
        batch = len(self.retcodes)
        counts = Counter(str(code) for code in self.retcodes)
        codes = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
        if batch:
            its = self.iterations.float()
            iters = f"{int(its.min())}..{int(its.max())} (mean {its.mean():.1f})"
            final = self.final_residuals
            measure = _worst_best(final)
            relative = _worst_best(self.relative_residuals)
        else:
            iters, measure, relative = "-", "-", "-"
        lines = [
            f"Solution(retcode={self.retcode}, batch={batch}, shape={tuple(self.u.shape)})",
            f"  retcodes:   {codes or '-'}",
            f"  iterations: {iters}",
            f"  {self.criterion + ':':<11} {measure}",
        ]
        if self.criterion == "residual":
            lines.append(f"  relative:   {relative} (over the residual at h0)")
        if self.stats.get("steps_per_solver"):
            per = ", ".join(f"{k}: {v}" for k, v in self.stats["steps_per_solver"].items())
            lines.append(f"  steps:      {per}")
        if "wall_time" in self.stats:
            lines.append(f"  wall time:  {self.stats['wall_time']:.3g} s")
        return "\n".join(lines)


def _worst_best(values: Tensor) -> str:
    """``"max (worst), min (best)"`` of per-sample measures, NaN-aware."""
    finite = values[~values.isnan()]
    if not len(finite):
        return "-"
    return f"{finite.max().item():.3e} (worst), {finite.min().item():.3e} (best)"
