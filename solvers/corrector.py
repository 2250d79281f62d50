"""A closed-loop learned step: correct ``h`` by a learned approximation of ``A^{-1} r``.

On a problem ``A u = f`` the residual ``r = f - A h = A e`` of an iterate
``h`` carries its error ``e = u - h``. :class:`ResidualCorrector` reads it:

``d = s * Phi(x, r / s) / a_g``,    ``h <- h + alpha * d``,

with ``s`` the per-sample RMS of ``r``, ``x`` the medium features of the
problem (:func:`corrector_features`) and ``a_g`` the geometric mean of the
coefficient (1 for Poisson and Helmholtz). Because the net sees ``r / s`` only, ``d`` is
positively homogeneous of degree one in the error: for ``h = u - t e`` the
step maps the error to ``t (e - alpha d(e))``, the same behaviour at a
residual of 1e-10 as at 1, and ``r = 0`` leaves ``h`` unchanged (the exact
discrete solution is a fixed point). The error map is ``e -> e - alpha d``.
A complex residual (Helmholtz) travels as two real channels ``(Re, Im)``
and the net returns two, ``d = s (phi_re + i phi_im)``: one corrector serves
real and complex problems.

Step length ``alpha`` along the learned direction, per sample:

- ``"energy"`` (default; for symmetric positive definite ``A``):
  ``alpha = <r, d> / <d, A d>`` minimises ``E(alpha) = ||e - alpha d||_A^2``
  (``<r, d> = <A e, d>``), so the step can never increase the energy-norm
  error, whatever the net returns;
- ``"residual"`` (any ``A``, the one for complex symmetric Helmholtz):
  ``alpha = <A d, r> / <A d, A d>`` minimises ``||r - alpha A d||_2``, so the
  residual never grows;
- ``None``: ``alpha = 1`` (the raw learned step).

Composed with relaxation (``Cycle(corrector, Jacobi(sweeps=nu))``) or with
the shifted-Laplacian cycle (``Cycle(ShiftedLaplacian(), corrector, repeats=3)``)
the two cover complementary error bands: relaxation damps the oscillatory
error and stalls on the smooth part, which a neural operator represents
well (Zhang et al., "Blending neural operators and relaxation methods in PDE
numerical solvers" (HINTS), Nat. Mach. Intell. 2024; Cui et al., "Fourier
Neural Solver", arXiv:2408.08540; Azulay and Treister, SIAM J. Sci. Comput.
45 (2023) S127-S151, for Helmholtz).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from irsolve._validate import check_int
from irsolve.interface import FixedPointSolver
from irsolve.reductions import broadcast, dot, rms
from irsolve.solvers.geometric_multigrid import prolong_grid, restrict_grid
from irsolve.solvers.helmholtz import HelmholtzProblem
from irsolve.solvers.problems import StencilProblem, require_stencil_problem

__all__ = ["CorrectorContext", "ResidualCorrector", "StepLength", "corrector_features"]

#: Step-length rules along the learned direction (see the module docstring).
StepLength = Literal["energy", "residual"]

#: ``(k h)^2`` at 10 points per wavelength: the unit of the Helmholtz medium feature, a
#: fixed normalisation (not the problem's ppw), so the feature stays ``k^2 h^2`` itself.
KH2_UNIT = (2 * math.pi / 10) ** 2


def corrector_features(problem: StencilProblem) -> tuple[Tensor, Tensor]:
    """The right-hand-side-free medium features of ``problem`` and its coefficient scale ``a_g``.

    - a problem with a diffusion coefficient ``a`` (:class:`~irsolve.solvers.Darcy2D`, a
      multigrid coarse level of one): the normalised log-coefficient
      ``log(a / a_g)``, ``a_g = exp(mean(log a))`` per sample (for the FNO fields
      with values 3 and 12 it lies in ``[log(1/4), log 4]``). Dividing the
      coefficient and the learned direction by ``a_g`` makes the step invariant
      under ``a -> c a`` (then ``A^{-1} -> A^{-1} / c``);
    - :class:`~irsolve.solvers.Helmholtz2D` / :class:`~irsolve.solvers.Helmholtz3D`:
      ``[k^2 h^2 / KH2_UNIT, γ]``, both
      dimensionless and, at fixed points per wavelength, the same at every grid
      size; ``a_g = 1``;
    - any other stencil problem (Poisson): a zero channel, ``a_g = 1``.

    Returns
    -------
    features : Tensor
        ``(B, C, n, ..., n)``, real, in the problem's real dtype.
    scale : Tensor
        ``(B,)``: ``a_g``.
    """
    f = problem.f
    ones = torch.ones(f.shape[0], dtype=f.real.dtype, device=f.device)
    if isinstance(problem, HelmholtzProblem):
        kh2, gamma = problem.features().split(1, dim=1)
        return torch.cat([kh2 / KH2_UNIT, gamma], dim=1), ones
    a = getattr(problem, "a", None)
    if isinstance(a, Tensor):
        log_a = a.log()
        mean = log_a.flatten(1).mean(dim=1)
        return log_a - broadcast(mean, log_a), mean.exp()
    return torch.zeros_like(f.real), ones


def _as_channels(q: Tensor) -> Tensor:
    """A real ``q`` as is, a complex one as ``(Re, Im)`` channels."""
    return torch.cat([q.real, q.imag], dim=1) if q.is_complex() else q


def _from_channels(phi: Tensor, like: Tensor) -> Tensor:
    """The inverse of :func:`_as_channels`, in ``like``'s dtype and device."""
    if like.is_complex():
        phi = phi.to(like.real.dtype)
        return torch.complex(phi[:, :1], phi[:, 1:]).to(like)
    return phi.to(like)


@dataclasses.dataclass
class CorrectorContext:
    """Per-solve state of a :class:`ResidualCorrector`.

    ``problem`` is the problem solved (the residual and ``A d`` come from it;
    swapping its right-hand side re-uses the rest); ``features`` ``(B, C, ...)``
    (on the grid the net runs on) are in the net's dtype and device and do not
    depend on ``f``; ``scale`` ``(B,)`` is the coefficient scale ``a_g``.
    """

    problem: StencilProblem
    features: Tensor
    scale: Tensor


class ResidualCorrector(FixedPointSolver):
    """Learned residual correction ``h + alpha * s * Phi(x, r / s) / a_g`` (closed loop).

    Parameters
    ----------
    net
        Maps ``(B, C + c, n, n)`` (channels: the ``C`` features of
        :func:`corrector_features`, then the normalised residual ``r / s``:
        ``c = 1`` real, ``c = 2`` complex as ``(Re, Im)``) to ``(B, c, n, n)``,
        an approximation of ``a_g A^{-1} (r / s)``; a resolution-agnostic
        operator (neuralop ``FNO``, a U-Net) transfers across grids. It runs in
        its own dtype (float32 by default for learned steps); the problem's
        tensors are converted at the boundary once per step.
    step_length
        ``"energy"`` (default, SPD problems), ``"residual"`` (any problem; the
        only rule for a complex one besides ``None``) or ``None``; see the
        module docstring.
    coarsen
        Grid levels below the problem's the net runs on (default 0): the residual
        is restricted by full weighting ``coarsen`` times (every second node, as
        :class:`~irsolve.solvers.GeometricMultigrid`), the net's direction
        prolonged back (linear interpolation), and the step length is taken on
        the fine grid, so a coarse direction cannot increase the residual either.
        Each level cuts the net's cost by ``2^d``; the waves of a Helmholtz
        problem at 10 points per wavelength are still resolved one level down
        (5 points).

    The context (:class:`CorrectorContext`) holds the problem, so the
    corrector also serves as a preconditioner for ``A z = r`` from ``z = 0``.
    """

    default_dtype = torch.float32

    def __init__(
        self, net: nn.Module, step_length: StepLength | None = "energy", coarsen: int = 0
    ) -> None:
        if isinstance(net, type) or not callable(net):
            raise TypeError(f"expected net to be a callable module, got {net!r}")
        self.coarsen = check_int("ResidualCorrector", "coarsen", coarsen, minimum=0)
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
        problem = require_stencil_problem(x, "ResidualCorrector", dims=(2, 3))
        complex_problem = problem.f.is_complex()
        if complex_problem and self.step_length == "energy":
            raise ValueError(
                f"ResidualCorrector: expected step_length 'residual' or None for the complex "
                f"{type(problem).__name__} (its operator is not Hermitian positive definite), "
                "got 'energy'"
            )
        features, scale = corrector_features(problem)
        features = self._coarse_features(problem, features)
        reads = features.shape[1] + (2 if complex_problem else 1)
        expected = getattr(self.net, "in_channels", reads)
        if expected != reads:
            raise ValueError(
                f"ResidualCorrector: expected a net that reads {reads} channels on "
                f"{type(problem).__name__} ({features.shape[1]} medium, "
                f"{reads - features.shape[1]} residual), got one that reads {expected}: a net "
                "trained for another problem family"
            )
        dtype, device = self._net_dtype_device()
        return CorrectorContext(problem, features.to(dtype=dtype, device=device), scale)

    def direction(self, ctx: CorrectorContext, r: Tensor) -> Tensor:
        """The learned direction ``d = s * Phi(x, r / s) / a_g`` for residual ``r``.

        ``s = rms(r)`` per sample; samples with ``r = 0`` get ``d = 0``.
        Returns ``d`` in ``r``'s dtype and device.
        """
        s = rms(r)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        z = r / broadcast(safe, r)
        for _ in range(self.coarsen):
            z = restrict_grid(z) / 2 ** (z.dim() - 2)  # full weighting: weights sum to 1
        z = _as_channels(z).to(ctx.features)
        phi = self.net(torch.cat([ctx.features, z], dim=1))
        if phi.shape != z.shape:
            raise ValueError(
                f"expected the net to return a direction shaped like the residual's channels "
                f"{tuple(z.shape)}, got {tuple(phi.shape)}"
            )
        direction = _from_channels(phi, r)
        for _ in range(self.coarsen):
            direction = prolong_grid(direction)
        weight = torch.where(s > 0, s, torch.zeros_like(s)) / ctx.scale
        return direction * broadcast(weight, r)

    def _coarse_features(self, problem: StencilProblem, features: Tensor) -> Tensor:
        """The features on the grid ``coarsen`` levels down (every second node, so ``n``
        must stay odd); a Helmholtz ``k^2 h^2`` is that grid's (``x 4`` per level)."""
        n = problem.n
        for _ in range(self.coarsen):
            if n % 2 == 0 or n < 3 or problem.periodic:
                raise ValueError(
                    f"ResidualCorrector: expected a Dirichlet grid whose side stays odd through "
                    f"coarsen={self.coarsen} levels, got {problem.n} (at {n})"
                )
            n = (n - 1) // 2
            features = features[(slice(None), slice(None), *[slice(1, None, 2)] * problem.dim)]
            if isinstance(problem, HelmholtzProblem):
                features = torch.cat([4 * features[:, :1], features[:, 1:]], dim=1)
        return features

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
        coarse = f", coarsen={self.coarsen}" if self.coarsen else ""
        return (
            f"ResidualCorrector({type(self.net).__name__}, step_length={self.step_length!r}"
            f"{coarse})"
        )
