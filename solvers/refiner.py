"""The learned refinement step of IRNO as a fixed-point solver.

``h_{k+1} = h_k + alpha_k * Phi_theta([x ; h_k])``: a shared-weight network
corrects the current iterate; the frozen base operator supplies ``h_0``
(through :func:`irsolve.solve`'s ``base``). Liu et al., "Iterative Refinement
Neural Operators are Learned Fixed-Point Solvers".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor, nn

from irsolve._validate import check_int, check_real
from irsolve.interface import FixedPointSolver, Problem
from irsolve.reductions import broadcast, rms

__all__ = ["GeometricAlpha", "Refiner", "RefinerContext"]


@dataclasses.dataclass(frozen=True)
class GeometricAlpha:
    """Step-size schedule ``alpha_k = alpha`` for ``k < start``, else ``alpha * gamma^(k-start+1)``.

    Holding ``alpha`` over the trained horizon (``start = K``) and decaying it
    past it makes the total further movement ``sum_k alpha_k ||Phi||`` finite,
    the IRNO paper's advice for runs longer than the trained ``K``.
    """

    alpha: float = 0.2
    gamma: float = 0.5
    start: int = 0

    def __post_init__(self) -> None:
        owner = "GeometricAlpha"
        object.__setattr__(
            self, "alpha", check_real(owner, "alpha", self.alpha, minimum=0.0, open_min=True)
        )
        object.__setattr__(
            self, "gamma", check_real(owner, "gamma", self.gamma, minimum=0.0, maximum=1.0)
        )
        object.__setattr__(self, "start", check_int(owner, "start", self.start, minimum=0))

    def __call__(self, k: int) -> float:
        if k < self.start:
            return self.alpha
        return self.alpha * self.gamma ** (k - self.start + 1)


@dataclasses.dataclass
class RefinerContext:
    """Per-solve state of a :class:`Refiner`: the net's input features and the problem.

    ``x`` is batched along dim 0 and already in the net's dtype and device;
    ``problem`` is the :class:`~irsolve.Problem` when the solve was given one.
    """

    x: Tensor
    problem: Problem | None = None


class Refiner(FixedPointSolver):
    """Learned fixed-point step ``G(h) = h + alpha_k * Phi([x ; h])``.

    Parameters
    ----------
    net
        The refinement network ``Phi`` (e.g. :class:`irsolve.learned.nets.RefinementUNet`):
        receives ``cat([x, h], dim=1)`` and returns a correction shaped like ``h``.
    alpha
        Step size, a number or a schedule ``k -> alpha_k`` (e.g.
        :class:`GeometricAlpha`).
    stop_threshold
        Adaptive stop: a sample whose correction has
        ``rms(Phi([x ; h])) < stop_threshold`` is not moved, so its update is
        exactly zero and :func:`irsolve.solve` marks it converged (on the
        update norm; on problems, the physical residual still decides).
    features
        For :class:`~irsolve.Problem` inputs: ``problem -> x`` features given
        to the net. Default: the problem's own ``features()`` method.

    Notes
    -----
    The net's parameters set the compute dtype (float32 by default): ``x`` is
    cast once in :meth:`prepare`, ``h`` on the way in and the correction back
    to ``h``'s dtype, so a float64 classical solver can interleave with it.
    Put the net in eval mode to solve: BatchNorm in training mode mixes the
    samples of a batch, so a sample's iterates would depend on the others.
    """

    default_dtype = torch.float32

    def __init__(
        self,
        net: nn.Module | Callable[[Tensor], Tensor],
        alpha: float | Callable[[int], float] = 0.2,
        *,
        stop_threshold: float | None = None,
        features: Callable[[Problem], Tensor] | None = None,
    ) -> None:
        if not callable(net):
            raise TypeError(
                f"Refiner: expected net to be an nn.Module or a callable, got {type(net).__name__}"
            )
        if not callable(alpha):
            alpha = check_real("Refiner", "alpha", alpha, minimum=0.0, open_min=True)
        if stop_threshold is not None:
            stop_threshold = check_real("Refiner", "stop_threshold", stop_threshold, minimum=0.0)
        if features is not None and not callable(features):
            raise TypeError(
                f"Refiner: expected features to be a callable problem -> x or None, "
                f"got {type(features).__name__}"
            )
        self.net = net
        self.alpha = alpha
        self.stop_threshold = stop_threshold
        self.features = features

    def alpha_at(self, k: int) -> float:
        """Step size ``alpha_k`` of step ``k``."""
        return float(self.alpha(k)) if callable(self.alpha) else float(self.alpha)

    def _net_dtype_device(self) -> tuple[torch.dtype, torch.device | None]:
        if isinstance(self.net, nn.Module):
            param = next(self.net.parameters(), None)
            if param is not None:
                return param.dtype, param.device
        return self.default_dtype, None

    def prepare(self, x: Tensor | Problem) -> RefinerContext:
        """Cast the input features to the net's dtype/device once; keep the problem if any."""
        problem = None
        if isinstance(x, Problem):
            problem = x
            if self.features is not None:
                x = self.features(problem)
            elif callable(getattr(problem, "features", None)):
                x = problem.features()
            else:
                raise TypeError(
                    f"expected a Problem with a features() method or Refiner(features=...), "
                    f"got {type(problem).__name__} without either"
                )
        if not isinstance(x, Tensor) or x.dim() < 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"expected x of shape (B, C, *space), got {shape}")
        dtype, device = self._net_dtype_device()
        return RefinerContext(x=x.to(dtype=dtype, device=device), problem=problem)

    def correction(self, ctx: RefinerContext, h: Tensor) -> Tensor:
        """``Phi([x ; h])`` in ``h``'s dtype and device."""
        if h.shape[0] != ctx.x.shape[0] or h.shape[2:] != ctx.x.shape[2:]:
            raise ValueError(
                f"expected h with the batch and spatial sizes of x {tuple(ctx.x.shape)}, "
                f"got {tuple(h.shape)}"
            )
        expected = getattr(self.net, "in_channels", None)
        channels = ctx.x.shape[1] + h.shape[1]
        if expected is not None and expected != channels:
            raise ValueError(
                f"expected x and h with {expected} channels together (the net's in_channels), "
                f"got {ctx.x.shape[1]} + {h.shape[1]} = {channels}"
            )
        phi = self.net(torch.cat([ctx.x, h.to(ctx.x)], dim=1))
        if phi.shape != h.shape:
            raise ValueError(
                f"expected the net to return a correction shaped like h {tuple(h.shape)}, "
                f"got {tuple(phi.shape)}"
            )
        return phi.to(h)

    def step(self, ctx: RefinerContext, h: Tensor, k: int) -> Tensor:
        """``h + alpha_k * Phi([x ; h])``; samples under the stop threshold stay put."""
        phi = self.correction(ctx, h)
        if self.stop_threshold is not None:
            keep = broadcast(rms(phi.detach()) >= self.stop_threshold, h)
            phi = phi * keep.to(phi.dtype)
        return h + self.alpha_at(k) * phi

    def with_rhs(self, ctx: RefinerContext, f: Tensor) -> RefinerContext:
        """Not supported: the net reads features of ``f`` computed once in :meth:`prepare`."""
        raise TypeError(
            "Refiner cannot take a new right-hand side (its input features were computed from f "
            "in prepare), so it cannot serve as a Krylov preconditioner; use a learned step that "
            "reads the residual"
        )

    def residual(self, ctx: RefinerContext, h: Tensor) -> Tensor | None:
        """The problem's physical residual ``f - A h`` when solving a Problem, else ``None``."""
        return ctx.problem.residual(h) if ctx.problem is not None else None

    def __repr__(self) -> str:
        return (
            f"Refiner(net={type(self.net).__name__}, alpha={self.alpha!r}, "
            f"stop_threshold={self.stop_threshold})"
        )
