"""Evaluation of a refinement solve step by step, beyond the trained horizon.

For ``k = 0 .. steps`` (default ``2K``) the mean VRMSE, RFNE and MSE of the
iterates over a dataset, with each sample's :class:`~irsolve.ReturnCode`
from :func:`irsolve.init`, so that a diverging step size shows up as
``DIVERGED``/``UNSTABLE`` counts, not as a NaN mean. By default there is no
convergence test (``tol=None``): a sample that runs every step ends
``COMPLETED``. Stopped samples keep the iterate the solve returns for them
(their best one when they failed).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from irsolve import distributed
from irsolve._validate import check_int, check_memory, check_real
from irsolve.engine import SolveState, init
from irsolve.interface import FixedPointSolver
from irsolve.metrics import mse_per_sample, rfne, vrmse

__all__ = ["METRICS", "EvaluationReport", "evaluate"]

logger = logging.getLogger(__name__)

#: Per-sample metrics reported at every step.
METRICS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "vrmse": vrmse,
    "rfne": rfne,
    "mse": mse_per_sample,
}


@dataclasses.dataclass
class EvaluationReport:
    """Per-step metrics of a refinement solve over a dataset.

    Attributes
    ----------
    K
        The trained horizon (for the reductions reported at ``K`` and ``2K``).
    steps
        ``[0, 1, ..., n_steps]``.
    metrics
        ``name -> [mean over finite samples at step k]``.
    nonfinite
        Number of samples with a non-finite VRMSE at each step (excluded from the means).
    retcodes
        ``ReturnCode name -> number of samples``.
    sample_retcodes
        Each sample's return code, in dataset order.
    """

    K: int
    steps: list[int]
    metrics: dict[str, list[float]]
    nonfinite: list[int]
    retcodes: dict[str, int]
    sample_retcodes: list[str]

    def reduction(self, k: int, metric: str = "vrmse") -> float:
        """Relative improvement ``1 - m_k / m_0`` of ``metric`` at step ``k`` over the base."""
        values = self.metrics[metric]
        return 1.0 - values[k] / values[0] if values[0] > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary, with the VRMSE reductions at ``K`` and at the last step."""
        out = dataclasses.asdict(self)
        last = self.steps[-1]
        out["vrmse_reduction"] = {
            str(k): self.reduction(k) for k in sorted({min(self.K, last), last})
        }
        return out

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def evaluate(
    base: nn.Module | Callable[[Tensor], Tensor],
    refiner: FixedPointSolver,
    data: Dataset,
    *,
    K: int,
    steps: int | None = None,
    batch_size: int = 16,
    tol: float | None = None,
    divergence: float | None = 1e4,
    patience: int | None = None,
    device: str | torch.device = "cpu",
) -> EvaluationReport:
    """Step ``refiner`` from ``base(x)`` for ``steps`` steps and measure every iterate.

    Parameters
    ----------
    base
        ``x -> h0``, e.g. a trained FNO (put in eval mode here when a module).
    refiner
        Any fixed-point solver; a :class:`~irsolve.solvers.Refiner`'s net is
        put in eval mode.
    data
        ``(x, y)`` pairs.
    K
        Trained horizon (``>= 1``); ``steps`` (``>= 0``) defaults to ``2 * K``.
    batch_size
        Samples per solve (``>= 1``).
    tol, divergence, patience
        Passed to :func:`irsolve.init` (``maxiter = steps``): ``tol = None``
        (default) runs every step with no convergence test, each sample
        ending ``COMPLETED`` on its last iterate; with ``tol = 0`` a sample
        whose update vanishes exactly (the refiner's adaptive stop) ends
        ``SUCCESS`` and one that runs every step ``MAX_ITERS``, reporting at
        the last step its iterate of smallest update, as :func:`irsolve.solve`
        returns it. ``divergence`` ends a sample whose update grows that many
        times its first one; ``patience`` ends one (``STALLED``, keeping its
        iterate of smallest update) after that many steps without a new
        smallest update, a stop on a map that no longer contracts.

    Raises
    ------
    TypeError, ValueError
        When an argument has the wrong type or is out of range (``tol >= 0`` or ``None``,
        ``divergence > 1`` or ``None``, ``patience >= 1`` or ``None``).
    """
    K = check_int("evaluate", "K", K, minimum=1)
    n_steps = 2 * K if steps is None else check_int("evaluate", "steps", steps, minimum=0)
    batch_size = check_int("evaluate", "batch_size", batch_size, minimum=1)
    if tol is not None:
        tol = check_real("evaluate", "tol", tol, minimum=0.0)
    if divergence is not None:
        divergence = check_real("evaluate", "divergence", divergence, minimum=1.0, open_min=True)
    if patience is not None:
        patience = check_int("evaluate", "patience", patience, minimum=1)
    # Per step: the sum and the mean of each metric, the count, the step and the non-finite
    # count, each a Python list entry of about 32 bytes (a pointer and a float or int).
    check_memory(
        "evaluate",
        f"the per-step tables of steps={n_steps} ({len(METRICS)} metrics)",
        32 * (2 * len(METRICS) + 3) * (n_steps + 1),
    )
    device = distributed.resolve_device(device)
    for module in (base, getattr(refiner, "net", None)):
        if isinstance(module, nn.Module):
            module.to(device).eval()
    totals = _StepTotals.empty(n_steps)
    # Under torchrun each rank measures its contiguous block of the samples.
    for x, y in DataLoader(distributed.shard(data), batch_size=batch_size, shuffle=False):
        x, y = x.to(device), y.to(device)
        state = init(
            base, refiner, x, tol=tol, maxiter=n_steps, divergence=divergence, patience=patience
        )
        totals.add_solve(state, y)
    if distributed.world_size() > 1:  # every rank reports the sums of all, codes in rank order
        totals = _StepTotals.combined(distributed.all_gather_objects(totals))
    report = totals.report(K)
    metrics = report.metrics
    logger.info(
        "evaluated %d samples: VRMSE base %.4g, at K=%d %.4g, at %d %.4g; return codes %s",
        totals.samples,
        metrics["vrmse"][0],
        K,
        metrics["vrmse"][min(K, n_steps)],
        n_steps,
        metrics["vrmse"][-1],
        report.retcodes,
    )
    return report


@dataclasses.dataclass
class _StepTotals:
    """Per step: each metric's sum over the samples where VRMSE is finite, and their count;
    every sample's return code, in dataset order."""

    sums: dict[str, list[float]]
    counts: list[int]
    codes: list[str]
    samples: int

    @classmethod
    def empty(cls, n_steps: int) -> _StepTotals:
        sums = {name: [0.0] * (n_steps + 1) for name in METRICS}
        return cls(sums=sums, counts=[0] * (n_steps + 1), codes=[], samples=0)

    @classmethod
    def combined(cls, parts: list[_StepTotals]) -> _StepTotals:
        """The totals of all ranks' ``parts``, codes in rank order."""
        steps = range(len(parts[0].counts))
        return cls(
            sums={name: [sum(p.sums[name][k] for p in parts) for k in steps] for name in METRICS},
            counts=[sum(p.counts[k] for p in parts) for k in steps],
            codes=[code for p in parts for code in p.codes],
            samples=sum(p.samples for p in parts),
        )

    def add(self, k: int, h: Tensor, y: Tensor) -> None:
        """Add the metrics of iterates ``h`` against ``y`` at step ``k``."""
        values = {name: fn(h.to(y.dtype), y) for name, fn in METRICS.items()}
        finite = torch.isfinite(values["vrmse"])
        self.counts[k] += int(finite.sum())
        for name, v in values.items():
            self.sums[name][k] += float(v[finite].sum())

    def add_solve(self, state: SolveState, y: Tensor) -> None:
        """Step ``state`` to its last step, adding the iterates of every step, then its codes."""
        self.samples += len(y)
        with torch.no_grad():
            self.add(0, state.current_iterates(), y)
            for k in range(1, len(self.counts)):
                state.step()  # a no-op once every sample has stopped
                self.add(k, state.current_iterates(), y)
        self.codes.extend(str(c) for c in state.solution().retcodes)

    def report(self, K: int) -> EvaluationReport:
        """Means over the finite samples per step (NaN where none is finite)."""
        metrics = {
            name: [s / c if c else math.nan for s, c in zip(values, self.counts, strict=True)]
            for name, values in self.sums.items()
        }
        return EvaluationReport(
            K=K,
            steps=list(range(len(self.counts))),
            metrics=metrics,
            nonfinite=[self.samples - c for c in self.counts],
            retcodes=dict(Counter(self.codes)),
            sample_retcodes=self.codes,
        )
