"""What :func:`~irsolve.learned.training.fit` optimises: the base and the refiner objectives."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from irsolve.engine import SolveState, init
from irsolve.learned.losses import (
    fixed_point_loss,
    jacobian_penalty,
    mse,
    progressive_spectral_loss,
    relative_l2_loss,
)
from irsolve.learned.nets.factory import net_config
from irsolve.learned.training.configs import RefinerConfig, make_refiner
from irsolve.metrics import vrmse

__all__ = ["BaseObjective", "Objective", "RefinerObjective"]


class Objective(Protocol):
    """What :func:`fit` optimises: a trainable ``model``, a loss and a validation metric."""

    model: nn.Module
    #: The key of :meth:`validate`'s dict that selects the best checkpoint
    #: (lower is better): :func:`fit` compares ``val_<selection_metric>``.
    selection_metric: str

    def loss(self, x: Tensor, y: Tensor, epoch_progress: float) -> tuple[Tensor, dict[str, float]]:
        """Scalar training loss of a batch and its named parts (floats, for logs)."""

    def validate(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Per-sample validation metrics; the key :attr:`selection_metric` selects the best."""

    def config(self) -> dict[str, Any]:
        """JSON-able description (model config and objective settings) for checkpoints."""

    def to(self, device: torch.device) -> None:
        """Move every module the objective uses to ``device``."""


class BaseObjective:
    """Relative L2 loss ``mean_b ||T(x_b) - y_b|| / ||y_b||`` of a base operator ``T``."""

    selection_metric = "vrmse"

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def loss(self, x: Tensor, y: Tensor, epoch_progress: float) -> tuple[Tensor, dict[str, float]]:
        loss = relative_l2_loss(self.model(x), y)
        return loss, {"rel_l2": loss.item()}

    def validate(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {"vrmse": vrmse(self.model(x), y)}

    def config(self) -> dict[str, Any]:
        return {"objective": "base", "model": net_config(self.model)}

    def to(self, device: torch.device) -> None:
        self.model.to(device)


class RefinerObjective:
    """Algorithm 1 of the IRNO paper plus the stability levers of :class:`RefinerConfig`."""

    selection_metric = "vrmse"

    def __init__(
        self, base: nn.Module | Callable[[Tensor], Tensor], net: nn.Module, config: RefinerConfig
    ) -> None:
        self.base = base
        self.model = net
        self.settings = config
        # The adaptive stop is an inference lever: training always unrolls every step.
        self.refiner = make_refiner(net, dataclasses.replace(config, stop_threshold=None))
        if isinstance(base, nn.Module):
            base.eval().requires_grad_(False)

    def initial(self, x: Tensor) -> Tensor:
        """``h_0 = T_base(x)`` without grad, in the net's dtype."""
        with torch.no_grad():
            h0 = self.base(x)
        return h0.to(x.dtype)

    def unroll(self, x: Tensor, h0: Tensor, steps: int, *, grad: bool = False) -> SolveState:
        """The engine's unroll of ``steps`` refiner steps from ``h0``, not yet stepped.

        ``init`` with ``tol=None`` (no convergence test: every sample gets
        every step) and no divergence test; a sample whose iterate turns
        non-finite still ends ``UNSTABLE``. Step it by iterating over it and
        read each iterate with ``state.current_iterates()``.
        """
        return init(h0, self.refiner, x, tol=None, maxiter=steps, divergence=None, grad=grad)

    def loss(self, x: Tensor, y: Tensor, epoch_progress: float) -> tuple[Tensor, dict[str, float]]:
        cfg = self.settings
        steps = cfg.K
        if cfg.unroll_max is not None and cfg.unroll_max > cfg.K:
            steps = int(torch.randint(cfg.K, cfg.unroll_max + 1, ()).item())
        h = self.initial(x)
        if cfg.start_mix > 0:
            t = cfg.start_mix * torch.rand(h.shape[0], *(1,) * (h.dim() - 1), device=h.device)
            h = h + t.to(h.dtype) * (y.to(h.dtype) - h)
        nonfinite = {"unroll": math.nan, "steps": float(steps)}
        if not (torch.isfinite(x).all() and torch.isfinite(h).all()):
            return x.new_full((), math.nan), nonfinite  # fit skips the batch and counts it
        state = self.unroll(x, h, steps, grad=True)
        step_losses = []
        for k, _ in enumerate(state):
            h = state.current_iterates()
            spec = progressive_spectral_loss(h, y, k, cfg.K, cfg.lam_start, cfg.lam_end)
            step_losses.append(mse(h, y) + cfg.beta_s * spec)
        if not all(code.ok for code in state.retcodes):
            return x.new_full((), math.nan), nonfinite  # an iterate turned non-finite
        if cfg.step_weights == "linear":
            weights = torch.arange(1.0, steps + 1)
        else:
            weights = torch.ones(steps)
        weights = (weights / weights.sum()).to(device=x.device, dtype=step_losses[0].dtype)
        loss = (weights * torch.stack(step_losses)).sum()
        parts = {"unroll": loss.item(), "steps": float(steps)}
        if cfg.beta_fp > 0:
            warm = 1.0
            if cfg.fp_warmup_epochs > 0:
                warm = min(1.0, epoch_progress / cfg.fp_warmup_epochs)
            fp = fixed_point_loss(self.refiner, x, y)
            loss = loss + warm * cfg.beta_fp * fp
            parts["fixed_point"] = fp.item()
        if cfg.beta_jac > 0:
            last = steps - 1
            ctx = self.refiner.prepare(x)
            jac = jacobian_penalty(
                lambda z: self.refiner.step(ctx, z, last),
                h,
                method=cfg.jac_method,
                n_iter=cfg.jac_iters,
            )
            loss = loss + cfg.beta_jac * jac
            parts["jacobian"] = jac.item()
        return loss, parts

    def validate(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """VRMSE of the base and after ``K`` steps; NaN for a sample that did not finish."""
        h0 = self.initial(x)
        base = vrmse(h0, y)
        if not (torch.isfinite(x).all() and torch.isfinite(h0).all()):
            return {"vrmse": torch.full_like(base, math.nan), "vrmse_base": base}
        sol = self.unroll(x, h0, self.settings.K).solve()
        done = torch.tensor([code.ok for code in sol.retcodes], device=base.device)
        refined = torch.where(done, vrmse(sol.u, y), torch.full_like(base, math.nan))
        return {"vrmse": refined, "vrmse_base": base}

    def config(self) -> dict[str, Any]:
        base = net_config(self.base) if isinstance(self.base, nn.Module) else None
        return {
            "objective": "refiner",
            "model": net_config(self.model),
            "base": base,
            "refiner": dataclasses.asdict(self.settings),
        }

    def to(self, device: torch.device) -> None:
        self.model.to(device)
        if isinstance(self.base, nn.Module):
            self.base.to(device)
