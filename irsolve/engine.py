"""The solve loop: ``h0 = base(x)``, then ``h_{k+1} = G(h_k)`` per sample until converged.

``solve`` is ``init(...).solve()``; ``init`` returns a :class:`SolveState`
that can be stepped by hand (Julia's ``init`` / ``step!`` / ``solve!``).

Convergence is judged per sample on the physical residual ``f - A h`` when
the solver defines one, else on the update ``h_{k+1} - h_k``. For a
contraction with factor ``q`` the update bounds the error of the *new*
iterate, ``||h_{k+1} - h*|| <= q / (1 - q) ||h_{k+1} - h_k||``, so the update
norm is attributed to ``h_{k+1}``. A sample that converges stops being
stepped: its rows are dropped from the iterate and the solver's context.
``tol=None`` turns the test off: every sample runs exactly ``maxiter`` steps
(a training unroll, an evaluation over a fixed horizon) and ends
``COMPLETED`` with its last iterate.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from irsolve import reductions
from irsolve._validate import check_bool, check_choice, check_int, check_real
from irsolve.interface import FixedPointSolver, Problem
from irsolve.solution import ReturnCode, Solution

__all__ = ["SolveState", "init", "sample_norm", "solve"]

logger = logging.getLogger(__name__)

NormSpec = str | Callable[[Tensor], Tensor]


def sample_norm(t: Tensor, norm: NormSpec = "rms") -> Tensor:
    """Norm of each sample of ``t`` (shape ``(B, ...)``), over all non-batch dims.

    ``"rms"``: ``sqrt(mean(|t|**2))``, independent of the resolution;
    ``"l2"``: ``sqrt(sum(|t|**2))``; ``"max"``: ``max |t|``
    (:mod:`irsolve.reductions`: scaled, so tiny samples do not underflow to 0);
    or a callable returning a ``(B,)`` tensor.
    """
    if callable(norm):
        value = norm(t)
        if not isinstance(value, Tensor) or tuple(value.shape) != (t.shape[0],):
            got = f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else repr(value)
            raise ValueError(
                f"sample_norm: expected the norm callable to return one value per sample, a "
                f"tensor of shape ({t.shape[0]},), got {got}"
            )
        return value
    if norm == "rms":
        return reductions.rms(t)
    if norm == "l2":
        return reductions.norm(t)
    if norm == "max":
        return reductions.max_abs(t)
    raise ValueError(f"sample_norm: expected norm 'rms', 'l2', 'max' or a callable, got {norm!r}")


def _check_finite(owner: str, name: str, t: Tensor) -> None:
    """Raise ``ValueError`` naming ``owner`` and the samples of ``t`` that hold NaN or Inf."""
    bad = reductions.flat(~torch.isfinite(t.detach())).any(dim=1)
    if bool(bad.any()):
        samples = bad.nonzero().flatten().tolist()
        shown = ", ".join(map(str, samples[:10])) + (", ..." if len(samples) > 10 else "")
        raise ValueError(
            f"{owner}: {name} holds NaN or Inf in {len(samples)} of {t.shape[0]} samples "
            f"(sample indices {shown}); expected finite values"
        )


def _put_rows(dst: Tensor, index: Tensor, src: Tensor, inplace: bool) -> Tensor:
    """``dst[index] = src`` along dim 0, out of place when the graph must be kept."""
    if inplace:
        dst.index_copy_(0, index, src)
        return dst
    return dst.index_copy(0, index, src)


class SolveState:
    """A solve in progress: step it with :meth:`step` or iterate over it.

    Created by :func:`init` (same arguments as :func:`solve`, plus ``owner``,
    the public function named in errors: ``solve``, ``init``). Public
    read-only attributes: ``k`` (steps taken), ``active`` (original indices of
    the samples still iterated), ``h`` (their current iterates), ``retcodes``,
    ``solver``, ``x``. :meth:`solution` assembles the :class:`Solution` at any
    time; samples still active then are reported as ``MAX_ITERS``.

    The rules live here only: when a sample stops (:meth:`_classify`), which
    iterate it returns (:meth:`_finish`), and the bookkeeping of each step.
    """

    def __init__(
        self,
        base: Any,
        refiner: FixedPointSolver,
        x: Any,
        *,
        tol: float | None = 1e-6,
        rtol: float = 0.0,
        maxiter: int = 100,
        norm: NormSpec = "rms",
        divergence: float | None = 1e4,
        patience: int | None = None,
        callback: Callable[[SolveState], bool | None] | None = None,
        save_trajectory: bool = False,
        grad: bool = False,
        owner: str = "SolveState",
    ) -> None:
        self._owner = owner
        _check_options(
            owner,
            base=base,
            refiner=refiner,
            tol=tol,
            rtol=rtol,
            maxiter=maxiter,
            norm=norm,
            divergence=divergence,
            patience=patience,
            callback=callback,
            save_trajectory=save_trajectory,
            grad=grad,
        )
        self.solver = refiner
        self.x = x
        self.tol = None if tol is None else float(tol)
        self.rtol, self.maxiter = float(rtol), int(maxiter)
        self.norm, self.divergence, self.patience = norm, divergence, patience
        self.callback = callback
        self.grad = grad
        self._start_time = time.perf_counter()

        with self._grad_mode():
            h0 = self._checked_start(base, x)
            self.ctx = refiner.prepare(x) if h0.shape[0] else None
        self._reset_bookkeeping(h0, save_trajectory)
        self._classify_start(h0)

    # -- set-up ---------------------------------------------------------------------------

    def _checked_start(self, base: Any, x: Any) -> Tensor:
        """``h0`` from ``base``, with ``x`` (a tensor) and ``h0`` checked finite."""
        if isinstance(x, Tensor):
            if x.dim() < 1:
                raise ValueError(
                    f"{self._owner}: expected x of shape (B, C, *space), got {tuple(x.shape)}"
                )
            _check_finite(self._owner, "x", x)
        h0 = self._initial_iterate(base, x)
        _check_finite(self._owner, "h0", h0)
        return h0

    def _reset_bookkeeping(self, h0: Tensor, save_trajectory: bool) -> None:
        """Step 0: every sample active at ``h0``, no step taken, nothing measured yet."""
        batch = h0.shape[0]
        self.k = 0
        self.active = torch.arange(batch, device=h0.device)
        self.h = h0
        self.retcodes = [ReturnCode.DEFAULT] * batch
        self._u = h0.detach().clone() if not self.grad else h0
        # Per-sample bookkeeping lives in small NumPy arrays (cheaper per step than torch ops).
        self._active_np = np.arange(batch)
        self._best = np.full(batch, np.inf)
        self._best_is_current = np.ones(batch, dtype=bool)
        self._since_best = np.zeros(batch, dtype=np.int64)
        self._start = np.full(batch, np.nan)
        self._final = np.full(batch, np.nan)
        self._iterations = np.zeros(batch, dtype=np.int64)
        self._residual_rows: list[np.ndarray] = []
        self._update_rows: list[np.ndarray] = []
        self._trajectory: list[Tensor] | None = [h0.detach().clone()] if save_trajectory else None
        self._steps_per_solver: Counter[str] = Counter()
        self._terminated = False

    def _classify_start(self, h0: Tensor) -> None:
        """Choose the criterion (residual or update) and stop the samples ``h0`` already ends:
        converged or non-finite residuals, or every sample when ``maxiter = 0`` without one."""
        batch = h0.shape[0]
        with self._grad_mode():
            r0 = self.solver.residual(self.ctx, h0) if batch else None
        # An empty batch on a problem still reports the problem's criterion.
        has_residual = r0 is not None or (batch == 0 and isinstance(self.x, Problem))
        self.criterion = "residual" if has_residual else "update"
        if r0 is not None:
            measure = sample_norm(r0.detach(), self.norm).to("cpu", torch.float64).numpy()
            self._residual_rows.append(measure.copy())
            self._start[:] = measure
            self._best[:] = np.where(np.isfinite(measure), measure, np.inf)
            self._finish(self._classify(measure), measure)
        else:
            self._residual_rows.append(np.full(batch, np.nan))
            if self.maxiter == 0:
                self._finish(np.full(batch, int(self._end_code)), np.full(batch, np.nan))

    def _grad_mode(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.grad else torch.no_grad()

    def _initial_iterate(self, base: Any, x: Any) -> Tensor:
        """``h0`` from ``base``: a callable of ``x``, a tensor, or ``None`` (zeros)."""
        owner = self._owner
        expected = x.zeros() if isinstance(x, Problem) else None
        if base is None:
            if expected is None:
                raise ValueError(
                    f"{owner}: base=None gives a zero start only when x is a Problem "
                    "(Poisson2D, Darcy2D) that knows the solution's shape; for a tensor x pass "
                    "h0 as a tensor or a callable base(x)"
                )
            return expected
        h0 = base if isinstance(base, Tensor) else base(x)
        if not isinstance(h0, Tensor):
            raise TypeError(
                f"{owner}: expected base(x) to return a Tensor, got {type(h0).__name__}"
            )
        if expected is not None:
            if h0.shape != expected.shape:
                raise ValueError(
                    f"{owner}: base output has shape {tuple(h0.shape)} but the problem's "
                    f"solution has shape {tuple(expected.shape)}"
                )
            h0 = h0.to(dtype=expected.dtype, device=expected.device)
        elif h0.dim() < 1 or h0.shape[0] != x.shape[0]:
            raise ValueError(
                f"{owner}: base output has shape {tuple(h0.shape)} but x has shape "
                f"{tuple(x.shape)}: expected the same batch size along dim 0"
            )
        return h0

    # -- stepping -------------------------------------------------------------------------

    @property
    def _end_code(self) -> ReturnCode:
        """Code of a sample that ran ``maxiter`` steps: ``COMPLETED`` without a test."""
        return ReturnCode.COMPLETED if self.tol is None else ReturnCode.MAX_ITERS

    @property
    def done(self) -> bool:
        """True once every sample has stopped."""
        return self.active.numel() == 0

    def step(self) -> bool:
        """Apply one step of the solver to the active samples; False once all have stopped."""
        if self.done:
            return False
        with self._grad_mode():
            h_prev = self.h
            h_next = self.solver.step(self.ctx, h_prev, self.k)
            if h_next.shape != h_prev.shape or h_next.dtype != h_prev.dtype:
                raise ValueError(
                    f"step {self.k} of {self.solver!r} returned {tuple(h_next.shape)} "
                    f"{h_next.dtype} for iterates of {tuple(h_prev.shape)} {h_prev.dtype} "
                    "(the base output's); expected the same shape and dtype"
                )
            update = sample_norm(h_next.detach() - h_prev.detach(), self.norm)
            residual = (
                self.solver.residual(self.ctx, h_next) if self.criterion == "residual" else None
            )
            measure = update if residual is None else sample_norm(residual.detach(), self.norm)
            norms = torch.stack([update, measure]).to("cpu", torch.float64).numpy()
            update, measure = norms[0], norms[1]

        active = self._active_np
        self._steps_per_solver[self.solver.step_name(self.k)] += active.size
        self.k += 1
        self._iterations[active] += 1
        self._record_row(self._update_rows, update)
        if self.criterion == "update" and self.k == 1:
            self._start[active] = update
        self._record_row(self._residual_rows, measure)

        # Keep the best iterate: save the previous one the first time a sample gets worse.
        improved = measure < self._best[active]
        lost_best = ~improved & self._best_is_current[active]
        if lost_best.any():
            rows = torch.from_numpy(np.flatnonzero(lost_best)).to(h_prev.device)
            self._u = _put_rows(
                self._u, self.active[rows], h_prev.index_select(0, rows), not self.grad
            )
        self._best[active] = np.where(improved, measure, self._best[active])
        self._best_is_current[active] = improved
        self._since_best[active] = np.where(improved, 0, self._since_best[active] + 1)
        self.h = h_next

        codes = self._classify(measure)
        if self.callback is not None and self.callback(self):
            self._terminated = True
            codes[codes == int(ReturnCode.DEFAULT)] = int(ReturnCode.TERMINATED)
        if self._trajectory is not None:
            last = self._trajectory[-1]
            self._trajectory.append(last.index_copy(0, self.active, h_next.detach()))
        self._finish(codes, measure)
        return not self.done

    def _record_row(self, rows: list[np.ndarray], values: np.ndarray) -> None:
        row = np.full(len(self.retcodes), np.nan)
        row[self._active_np] = values
        rows.append(row)

    def _classify(self, measure: np.ndarray) -> np.ndarray:
        """Return code of each active sample (``DEFAULT``: keep going), by priority:
        UNSTABLE, SUCCESS, DIVERGED, STALLED, MAX_ITERS or COMPLETED (no SUCCESS
        when ``tol`` is None)."""
        active = self._active_np
        start = self._start[active]
        codes = np.full(active.size, int(ReturnCode.DEFAULT))
        if self.k >= self.maxiter:
            codes[:] = int(self._end_code)
        if self.patience is not None:
            codes[self._since_best[active] >= self.patience] = int(ReturnCode.STALLED)
        with np.errstate(invalid="ignore"):
            if self.divergence is not None:
                codes[measure > self.divergence * start] = int(ReturnCode.DIVERGED)
            if self.tol is not None:
                threshold = np.maximum(self.rtol * np.nan_to_num(start, nan=0.0), self.tol)
                codes[measure <= threshold] = int(ReturnCode.SUCCESS)
        codes[~np.isfinite(measure)] = int(ReturnCode.UNSTABLE)
        return codes

    def _finish(self, codes: np.ndarray, measure: np.ndarray) -> None:
        """Store the result of samples whose code is set and drop them from the batch.

        A sample returns its current iterate (of measure ``measure``) when it
        ends ``SUCCESS`` or ``COMPLETED`` (also ``TERMINATED`` under
        ``tol=None``: with no convergence test there is no better iterate to
        prefer), else its lowest-measure iterate; its final measure is that
        of the iterate returned (NaN for ``h0`` under the update criterion,
        which has none).
        """
        stopped = codes != int(ReturnCode.DEFAULT)
        if not stopped.any():
            return
        for position in np.flatnonzero(stopped):
            self.retcodes[int(self._active_np[position])] = ReturnCode(int(codes[position]))
        last = [ReturnCode.SUCCESS, ReturnCode.COMPLETED]
        if self.tol is None:
            last.append(ReturnCode.TERMINATED)
        returns_last = np.isin(codes, np.array(last, dtype=codes.dtype))
        current = stopped & (self._best_is_current[self._active_np] | returns_last)
        best = self._best[self._active_np]
        final = np.where(current, measure, np.where(np.isfinite(best), best, np.nan))
        self._final[self._active_np[stopped]] = final[stopped]
        if self.grad and current.all() and current.size == len(self.retcodes):
            # The whole batch stops on its current iterates (a training unroll's last
            # step): return them as they are, without two copies in the graph.
            self._u = self.h
        elif current.any():
            rows = torch.from_numpy(np.flatnonzero(current)).to(self.h.device)
            self._u = _put_rows(
                self._u, self.active[rows], self.h.index_select(0, rows), not self.grad
            )
        keep_np = np.flatnonzero(~stopped)
        keep = torch.from_numpy(keep_np).to(self.h.device)
        self._active_np = self._active_np[keep_np]
        self.active = self.active.index_select(0, keep)
        self.h = self.h.index_select(0, keep)
        if self._active_np.size:
            self.ctx = self.solver.restrict(self.ctx, keep)

    def current_iterates(self) -> Tensor:
        """``(B, C, *space)``: returned iterates of stopped samples, current ones of the rest.

        With ``grad=True`` it carries the graph: a training unroll reads its
        per-step iterates here (``state.h`` holds only the active samples).
        """
        if self.done:
            return self._u
        if self._active_np.size == len(self.retcodes):
            return self.h
        return self._u.index_copy(0, self.active, self.h)

    def __iter__(self) -> Iterator[SolveState]:
        """Step until every sample has stopped, yielding the state after each step."""
        while not self.done:
            self.step()
            yield self

    def solve(self) -> Solution:
        """Step to the end and return the :class:`Solution` (Julia's ``solve!``)."""
        while self.step():
            pass
        return self.solution()

    def solution(self) -> Solution:
        """The :class:`Solution` so far; samples still active are reported as ``MAX_ITERS``."""
        retcodes = [ReturnCode.MAX_ITERS if c == ReturnCode.DEFAULT else c for c in self.retcodes]
        u = self.current_iterates()
        batch = len(retcodes)
        residuals = torch.from_numpy(np.stack(self._residual_rows))
        updates = torch.from_numpy(
            np.stack(self._update_rows) if self._update_rows else np.empty((0, batch))
        )
        trajectory = torch.stack(self._trajectory) if self._trajectory is not None else None
        final = self._final.copy()
        final[self._active_np] = self._residual_rows[-1][self._active_np]  # current iterates
        stats = {
            "steps": self.k,
            "sample_steps": int(self._iterations.sum()),
            "steps_per_solver": dict(self._steps_per_solver),
            "wall_time": time.perf_counter() - self._start_time,
            "terminated": self._terminated,
        }
        return Solution(
            u=u,
            retcodes=retcodes,
            iterations=torch.from_numpy(self._iterations.copy()),
            residuals=residuals,
            updates=updates,
            criterion=self.criterion,
            final_residuals=torch.from_numpy(final),
            trajectory=trajectory,
            stats=stats,
        )

    def __repr__(self) -> str:
        return (
            f"SolveState(k={self.k}, active={int(self.active.numel())}/{len(self.retcodes)}, "
            f"solver={self.solver!r}, criterion={self.criterion!r})"
        )


def _check_options(
    owner: str,
    *,
    base: Any,
    refiner: Any,
    tol: Any,
    rtol: Any,
    maxiter: Any,
    norm: Any,
    divergence: Any,
    patience: Any,
    callback: Any,
    save_trajectory: Any,
    grad: Any,
) -> None:
    """Check the arguments of :func:`solve` / :func:`init`, naming ``owner`` in the errors."""
    if not (base is None or isinstance(base, Tensor) or callable(base)):
        raise TypeError(
            f"{owner}: expected base to be a callable x -> h0, a Tensor or None, "
            f"got {type(base).__name__}"
        )
    if not isinstance(refiner, FixedPointSolver):
        raise TypeError(
            f"{owner}: expected refiner to be a FixedPointSolver, got {type(refiner).__name__}"
        )
    if tol is not None:
        check_real(owner, "tol", tol, minimum=0.0)
    check_real(owner, "rtol", rtol, minimum=0.0)
    if tol is None and rtol != 0:
        raise ValueError(
            f"{owner}: expected rtol=0 with tol=None (no convergence test), got rtol={rtol!r}"
        )
    check_int(owner, "maxiter", maxiter, minimum=0)
    if not callable(norm):
        check_choice(owner, "norm", norm, ("rms", "l2", "max"))
    if divergence is not None:
        check_real(owner, "divergence", divergence, minimum=1.0, open_min=True, finite=False)
    if patience is not None:
        check_int(owner, "patience", patience, minimum=1)
    if callback is not None and not callable(callback):
        raise TypeError(
            f"{owner}: expected callback to be callable or None, got {type(callback).__name__}"
        )
    check_bool(owner, "save_trajectory", save_trajectory)
    check_bool(owner, "grad", grad)


def init(
    base: Callable[[Any], Tensor] | Tensor | None,
    refiner: FixedPointSolver,
    x: Tensor | Problem,
    *,
    tol: float | None = 1e-6,
    rtol: float = 0.0,
    maxiter: int = 100,
    norm: NormSpec = "rms",
    divergence: float | None = 1e4,
    patience: int | None = None,
    callback: Callable[[SolveState], bool | None] | None = None,
    save_trajectory: bool = False,
    grad: bool = False,
) -> SolveState:
    """Set up a solve without stepping it; the arguments and rules of :func:`solve`.

    Examples
    --------
    >>> state = init(None, Jacobi(), problem, tol=1e-8)   # doctest: +SKIP
    >>> for s in state:
    ...     print(s.k, s.active.numel())
    >>> sol = state.solution()
    """
    return SolveState(
        base,
        refiner,
        x,
        tol=tol,
        rtol=rtol,
        maxiter=maxiter,
        norm=norm,
        divergence=divergence,
        patience=patience,
        callback=callback,
        save_trajectory=save_trajectory,
        grad=grad,
        owner="init",
    )


def solve(
    base: Callable[[Any], Tensor] | Tensor | None,
    refiner: FixedPointSolver,
    x: Tensor | Problem,
    *,
    tol: float | None = 1e-6,
    rtol: float = 0.0,
    maxiter: int = 100,
    norm: NormSpec = "rms",
    divergence: float | None = 1e4,
    patience: int | None = None,
    callback: Callable[[SolveState], bool | None] | None = None,
    save_trajectory: bool = False,
    grad: bool = False,
) -> Solution:
    """Iterate ``h_{k+1} = refiner.step(ctx, h_k, k)`` from ``h_0 = base(x)`` until converged.

    Each sample of the batch is judged on its own. Its *measure* after step
    ``k`` is ``norm(f - A h_k)`` when the solver defines a physical residual
    (``Solution.criterion == "residual"``; the start is the measure at
    ``h_0``), else ``norm(h_k - h_{k-1})`` (``"update"``; the start is the
    first update). A sample stops, checked in this order, when its measure

    - is NaN or Inf: ``UNSTABLE``;
    - is ``<= max(tol, rtol * start)``: ``SUCCESS`` (never with ``tol=None``);
    - exceeds ``divergence * start``: ``DIVERGED``;
    - has not reached a new lowest value in ``patience`` steps: ``STALLED``;
    - after ``maxiter`` steps: ``MAX_ITERS`` (``COMPLETED`` with ``tol=None``);
    - or when ``callback`` returns True: ``TERMINATED``.

    A stopped sample is not stepped again.

    Parameters
    ----------
    base : callable, Tensor or None
        The initial guess: a callable ``x -> h0`` (a frozen neural operator),
        the tensor ``h0`` itself, or ``None`` for zeros (only when ``x`` is a
        :class:`~irsolve.Problem`, which knows the solution's shape).
    refiner : FixedPointSolver
        The step: classical (Jacobi, multigrid), learned (Refiner) or a
        composite (Cycle, Interleave, Anderson).
    x : Tensor or Problem
        The input ``(B, C, *space)``, or a problem carrying ``A`` and ``f``.
    tol : float or None
        Absolute tolerance on the measure (default 1e-6). ``None``: no
        convergence test; every sample runs exactly ``maxiter`` steps (unless
        it diverges, goes non-finite or stalls) and ends ``COMPLETED`` with its
        last iterate (a training unroll, a fixed-horizon evaluation).
    rtol : float
        Tolerance relative to the start (default 0; must be 0 with ``tol=None``).
    maxiter : int
        Steps at most per sample (exactly, with ``tol=None``).
    norm : {"rms", "l2", "max"} or callable
        Per-sample norm over all non-batch dims (:mod:`irsolve.reductions`;
        RMS is resolution independent), or a callable returning ``(B,)``.
    divergence : float or None
        Factor over the start beyond which a sample ends ``DIVERGED``; ``None``
        disables the check.
    patience : int or None
        Steps without a new lowest measure before a sample ends ``STALLED``.
    callback : callable or None
        ``callback(state)`` after each step; returning True stops the solve
        (the remaining samples end ``TERMINATED`` and ``stats["terminated"]`` is set).
    save_trajectory : bool
        Keep every iterate in ``Solution.trajectory``.
    grad : bool
        Keep the autograd graph (for training through the unroll); by default
        the solve runs under ``torch.no_grad``. Step by hand with :func:`init`
        to read each iterate ``state.h`` with its graph (per-step losses).

    Returns
    -------
    Solution
        ``u`` holds each sample's last iterate when it ended ``SUCCESS`` or
        ``COMPLETED``, else its lowest-measure iterate (``DIVERGED``,
        ``UNSTABLE``, ``STALLED``, ``MAX_ITERS``, ``TERMINATED``; the last
        one for ``TERMINATED`` under ``tol=None``); ``final_residuals`` the
        measure of that iterate.

    Raises
    ------
    ValueError
        Non-finite ``x`` or ``h0`` (naming the samples), a base output or a
        step output of the wrong shape, an option out of range (negative or
        NaN ``tol``/``rtol``, a negative or non-integral ``maxiter``, ...);
        the message names ``solve`` and the argument.
    TypeError
        An unknown keyword argument, an option of the wrong type (a string
        ``tol``), or a refiner that is not a FixedPointSolver.

    See Also
    --------
    init : the same solve, stepped by hand.
    """
    state = SolveState(
        base,
        refiner,
        x,
        tol=tol,
        rtol=rtol,
        maxiter=maxiter,
        norm=norm,
        divergence=divergence,
        patience=patience,
        callback=callback,
        save_trajectory=save_trajectory,
        grad=grad,
        owner="solve",
    )
    return state.solve()
