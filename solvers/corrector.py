"""A closed-loop learned step: correct ``h`` by a learned approximation of ``A^{-1} r``.

On a problem ``A u = f`` the residual ``r = f - A h = A e`` of an iterate
``h`` carries its error ``e = u - h``. :class:`ResidualCorrector` reads it:

``d = s * Phi(x, r / s) / a_g``,    ``h <- h + alpha * d``,

with ``s`` the per-sample RMS of ``r``, ``x`` the net's features (see
:meth:`ResidualCorrector.prepare`) and ``a_g`` the geometric mean of the
coefficient (1 for Poisson). Because the net sees ``r / s`` only, ``d`` is
positively homogeneous of degree one in the error: for ``h = u - t e`` the
step maps the error to ``t (e - alpha d(e))``, the same behaviour at a
residual of 1e-10 as at 1, and ``r = 0`` leaves ``h`` unchanged (the exact
discrete solution is a fixed point). The error map is ``e -> e - alpha d``.

Step length ``alpha`` along the learned direction, per sample:

- ``"energy"`` (default; for symmetric positive definite ``A``):
  ``alpha = <r, d> / <d, A d>`` minimises ``E(alpha) = ||e - alpha d||_A^2``
  (``<r, d> = <A e, d>``), so the step can never increase the energy-norm
  error, whatever the net returns;
- ``"residual"`` (any ``A``): ``alpha = <r, A d> / <A d, A d>`` minimises
  ``||r - alpha A d||_2``, so the residual never grows;
- ``None``: ``alpha = 1`` (the raw learned step).

Composed with relaxation (``Cycle(corrector, Jacobi(sweeps=nu))``, the cycle
:meth:`irsolve.learned.corrector_training.CorrectorConfig.cycle` builds and trains)
the two cover complementary error bands: relaxation damps the oscillatory
error and stalls on the smooth part, which a Fourier neural operator
represents well (Zhang et al., "Blending neural operators and relaxation
methods in PDE numerical solvers" (HINTS), Nat. Mach. Intell. 2024; Cui et
al., "Fourier Neural Solver", arXiv:2408.08540).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from irsolve.interface import FixedPointSolver
from irsolve.reductions import broadcast, dot, rms
from irsolve.solvers.problems import Darcy2D, StencilProblem, require_stencil_problem

__all__ = ["CorrectorContext", "ResidualCorrector", "StepLength", "corrector_features"]

#: Step-length rules along the learned direction (see the module docstring).
StepLength = Literal["energy", "residual"]


def corrector_features(problem: StencilProblem) -> tuple[Tensor, Tensor]:
    """The right-hand-side-free features of ``problem`` and its coefficient scale ``a_g``.

    For :class:`~irsolve.solvers.Darcy2D` the feature is the normalised
    log-coefficient ``log(a / a_g)``, ``a_g = exp(mean(log a))`` per sample
    (so for the FNO fields with values 3 and 12 it lies in ``[log(1/4), log 4]``);
    for any other stencil problem (Poisson) it is a zero channel and ``a_g = 1``.
    Dividing the coefficient by ``a_g`` and the learned direction by ``a_g``
    makes the step invariant under ``a -> c a`` (then ``A^{-1} -> A^{-1} / c``).

    Returns
    -------
    features : Tensor
        ``(B, 1, n, n)`` in the problem's dtype.
    scale : Tensor
        ``(B,)``: ``a_g``.
    """
    if isinstance(problem, Darcy2D):
        log_a = problem.a.log()
        mean = log_a.mean(dim=(-3, -2, -1))
        return log_a - broadcast(mean, log_a), mean.exp()
    f = problem.f
    return torch.zeros_like(f), torch.ones(f.shape[0], dtype=f.dtype, device=f.device)


@dataclasses.dataclass
class CorrectorContext:
    """Per-solve state of a :class:`ResidualCorrector`.

    ``problem`` is the problem solved (the residual and ``A d`` come from it;
    swapping its right-hand side re-uses the rest); ``features`` ``(B, 1, n, n)``
    are in the net's dtype and device and do not depend on ``f``; ``scale``
    ``(B,)`` is the coefficient scale ``a_g`` in the problem's dtype.
    """

    problem: StencilProblem
    features: Tensor
    scale: Tensor


class ResidualCorrector(FixedPointSolver):
    """Learned residual correction ``h + alpha * s * Phi(x, r / s) / a_g`` (closed loop).

    Parameters
    ----------
    net
        Maps ``(B, 2, n, n)`` (channels: the feature of
        :func:`corrector_features`, the normalised residual ``r / s``) to
        ``(B, 1, n, n)``, an approximation of ``a_g A^{-1} (r / s)``; a
        resolution-agnostic operator (neuralop ``FNO``) transfers across grids.
        It runs in its own dtype (float32 by default for learned steps); the
        problem's float64 tensors are converted at the boundary once per step.
    step_length
        ``"energy"`` (default, SPD problems), ``"residual"`` or ``None``; see
        the module docstring.

    The context (:class:`CorrectorContext`) holds the problem, so the
    corrector also serves as a preconditioner for ``A z = r`` from ``z = 0``.
    """

    default_dtype = torch.float32

    def __init__(self, net: nn.Module, step_length: StepLength | None = "energy") -> None:
        if not callable(net):
            raise TypeError(f"expected net to be a callable module, got {type(net).__name__}")
        if step_length is not None and step_length not in get_args(StepLength):
            raise ValueError(
                f"expected step_length 'energy', 'residual' or None, got {step_length!r}"
            )
        self.net = net
        self.step_length = step_length

    def _net_dtype_device(self) -> tuple[torch.dtype, torch.device | None]:
        if isinstance(self.net, nn.Module):
            param = next(self.net.parameters(), None)
            if param is not None:
                return param.dtype, param.device
        return self.default_dtype, None

    def prepare(self, x: StencilProblem) -> CorrectorContext:
        """Features of the problem in the net's dtype and device (built once per solve)."""
        problem = require_stencil_problem(x, "ResidualCorrector")
        features, scale = corrector_features(problem)
        dtype, device = self._net_dtype_device()
        return CorrectorContext(problem, features.to(dtype=dtype, device=device), scale)

    def direction(self, ctx: CorrectorContext, r: Tensor) -> Tensor:
        """The learned direction ``d = s * Phi(x, r / s) / a_g`` for residual ``r``.

        ``s = rms(r)`` per sample; samples with ``r = 0`` get ``d = 0``.
        Returns ``d`` in ``r``'s dtype and device.
        """
        s = rms(r)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        z = (r / broadcast(safe, r)).to(ctx.features)
        phi = self.net(torch.cat([ctx.features, z], dim=1))
        if phi.shape != r.shape:
            raise ValueError(
                f"expected the net to return a direction shaped like the residual "
                f"{tuple(r.shape)}, got {tuple(phi.shape)}"
            )
        weight = torch.where(s > 0, s, torch.zeros_like(s)) / ctx.scale
        return phi.to(r) * broadcast(weight, r)

    def step_size(self, ctx: CorrectorContext, r: Tensor, d: Tensor) -> Tensor:
        """Per-sample ``alpha`` ``(B,)`` of :attr:`step_length` (0 where ``d`` is 0)."""
        if self.step_length is None:
            return torch.ones(r.shape[0], dtype=r.dtype, device=r.device)
        ad = ctx.problem.apply(d)
        if self.step_length == "energy":
            num, den = dot(r, d), dot(d, ad)
        else:  # <A d, r> / ||A d||^2, complex for a complex A (Helmholtz)
            num, den = dot(ad, r), dot(ad, ad)
        den = den.real
        ok = den > 0
        safe = torch.where(ok, den, torch.ones_like(den))
        return torch.where(ok, num / safe, torch.zeros_like(num))

    def step(self, ctx: CorrectorContext, h: Tensor, k: int) -> Tensor:
        """``h + alpha * d`` with ``d`` from :meth:`direction` at ``r = f - A h``."""
        r = ctx.problem.residual(h)
        d = self.direction(ctx, r)
        return h + broadcast(self.step_size(ctx, r, d), h) * d

    def residual(self, ctx: CorrectorContext, h: Tensor) -> Tensor:
        """The physical residual ``f - A h``."""
        return ctx.problem.residual(h)

    def __repr__(self) -> str:
        return f"ResidualCorrector({type(self.net).__name__}, step_length={self.step_length!r})"
