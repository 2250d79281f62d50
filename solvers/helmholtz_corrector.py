"""A learned preconditioner for Helmholtz: the shifted-Laplacian cycle, then a learned correction.

:class:`HelmholtzCorrector` is a :class:`~irsolve.solvers.ResidualCorrector`
for complex problems. Complex residuals travel as two real channels: for a
residual ``r`` with per-sample RMS ``s`` the net reads

``[k^2 h^2 / (2 π / 10)^2, γ, Re(r / s), Im(r / s)]``    (four channels)

(the medium, scaled so that ``k h`` at 10 points per wavelength reads 1, and
the normalised residual) and returns two channels ``(Re φ, Im φ)``; the
direction is ``d = s (φ_re + i φ_im)``. Its step length is the corrector's
``"residual"`` rule, ``α = <A d, r> / ||A d||^2`` (complex), which minimises
``||r - α A d||_2``, so a step can never increase the residual norm, whatever
the net returns (``A`` is complex symmetric, not Hermitian: the energy rule
does not apply).

:func:`learned_preconditioner` combines it with the classical one: the
preconditioner of :class:`~irsolve.solvers.FlexibleGMRES` applies the
shifted-Laplacian cycle ``z_1 = B_M r`` and then one learned step on what it
leaves, ``z = z_1 + α d(r - A z_1)``, repeated (three times by default; the
net corrects the SL cycle, as in
Azulay and Treister 2022, who put a U-Net beside an SL multigrid cycle inside
FGMRES). The net changes with the residual, which flexible GMRES allows.

References
----------
Y. Azulay, E. Treister, "Multigrid-augmented deep learning preconditioners for
the Helmholtz equation", SIAM J. Sci. Comput. 45 (2023) S127-S151.
Y. A. Erlangga, C. W. Oosterlee, C. Vuik, SIAM J. Sci. Comput. 27 (2006) 1471-1492.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from irsolve._validate import check_int
from irsolve.composition import Interleave
from irsolve.reductions import broadcast, rms
from irsolve.solvers.corrector import CorrectorContext, ResidualCorrector
from irsolve.solvers.helmholtz import Helmholtz2D
from irsolve.solvers.helmholtz_preconditioner import ShiftedLaplacian

__all__ = ["HelmholtzCorrector", "helmholtz_features", "learned_preconditioner"]

#: ``(k h)^2`` at 10 points per wavelength: the scale of the first feature.
KH2_AT_10_PPW = (2 * math.pi / 10) ** 2


def helmholtz_features(problem: Helmholtz2D) -> Tensor:
    """The medium as the net reads it: ``[k^2 h^2 / (2 π / 10)^2, γ]``, ``(B, 2, n, n)`` float64.

    Both channels are dimensionless and, at fixed points per wavelength, the
    same at every grid size.
    """
    kh2, gamma = problem.features().split(1, dim=1)
    return torch.cat([kh2 / KH2_AT_10_PPW, gamma], dim=1)


class HelmholtzCorrector(ResidualCorrector):
    """Learned residual correction for :class:`~irsolve.solvers.Helmholtz2D` (see module doc).

    Parameters
    ----------
    net
        Maps ``(B, 4, n, n)`` to ``(B, 2, n, n)``; it runs in its own dtype
        (float32 by default), the problem's complex128 tensors are converted
        at the boundary.
    step_length
        ``"residual"`` (default, the minimal-residual step) or ``None``.
    """

    def __init__(self, net: nn.Module, step_length: str | None = "residual") -> None:
        if step_length == "energy":
            raise ValueError(
                "HelmholtzCorrector: expected step_length 'residual' or None (A is not Hermitian "
                "positive definite), got 'energy'"
            )
        super().__init__(net, step_length=step_length)

    def prepare(self, x: Helmholtz2D) -> CorrectorContext:
        """The medium features in the net's dtype and device (once per solve)."""
        if not isinstance(x, Helmholtz2D):
            raise TypeError(f"HelmholtzCorrector expected a Helmholtz2D, got {type(x).__name__}")
        dtype, device = self._net_dtype_device()
        features = helmholtz_features(x).to(dtype=dtype, device=device)
        return CorrectorContext(x, features, torch.ones(x.batch_size, dtype=torch.float64))

    def direction(self, ctx: CorrectorContext, r: Tensor) -> Tensor:
        """``d = s (φ_re + i φ_im)`` from the net on ``[medium, Re(r / s), Im(r / s)]``.

        Samples with ``r = 0`` get ``d = 0``; ``d`` is complex128 like ``r``.
        """
        s = rms(r)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        q = r / broadcast(safe, r)
        z = torch.cat([q.real, q.imag], dim=1).to(ctx.features)
        phi = self.net(torch.cat([ctx.features, z], dim=1))
        if phi.shape != z.shape:
            raise ValueError(
                f"expected the net to return (Re, Im) channels shaped {tuple(z.shape)}, "
                f"got {tuple(phi.shape)}"
            )
        phi = phi.to(torch.float64)
        d = torch.complex(phi[:, :1], phi[:, 1:])
        return d * broadcast(torch.where(s > 0, s, torch.zeros_like(s)), r)

    def __repr__(self) -> str:
        return f"HelmholtzCorrector({type(self.net).__name__}, step_length={self.step_length!r})"


def learned_preconditioner(
    net: nn.Module, shifted: ShiftedLaplacian | None = None, repeats: int = 3
) -> tuple[Interleave, int]:
    """The SL cycle followed by one learned step, ``repeats`` times, for FGMRES.

    Returns ``(Interleave(shifted, HelmholtzCorrector(net)), 2 * repeats)``:
    pass both to :class:`~irsolve.solvers.FlexibleGMRES`, e.g.
    ``FlexibleGMRES(p, restart=100, preconditioner_steps=steps)``. From
    ``z = 0`` each repeat is ``z <- z + B_M (r - A z)``, then
    ``z <- z + α d(r - A z)``. Measured at 64^2 (8 held-out media of
    ``benchmarks/bench_helmholtz.py``, the net of the README's Helmholtz
    section): worst FGMRES iterations 44 with one repeat, 28 with two, 22
    with three, against 82 for the SL cycle alone.
    """
    repeats = check_int("learned_preconditioner", "repeats", repeats, minimum=1)
    return Interleave(shifted or ShiftedLaplacian(), HelmholtzCorrector(net)), 2 * repeats
