"""The Darcy family of the learned corrector: ``-div(a grad u) = f`` with FNO coefficients.

The deployed cycle (:meth:`DarcyCorrector.cycle`) is
``Cycle(ResidualCorrector(net, step_length), Jacobi(omega, sweeps=nu))``:
one learned correction with the energy step length, then ``nu`` sweeps of
weighted Jacobi (or red-black Gauss-Seidel). A batch is ``(a, u)``: Darcy
coefficients and the exact discrete solutions of ``-div(a grad u) = 1``
(:func:`darcy_pairs`). Each training step draws, per sample, a smooth random
error ``e`` (:func:`dirichlet_random_field`: spread over the low sine modes
that relaxation leaves behind, scaled to ``||e||_A = 1``; the step is
homogeneous, so only its shape matters), runs the cycle once on ``A h = A e``
from ``h = 0`` and minimises the relative energy-norm error after it,

``loss = mean_b ||e - h||_A / ||e||_A``.

Validation runs ``val_cycles`` cycles on ``A h = A u`` (``f = 1``) from zero and
reports the mean per-cycle energy factor ``(||u - h_k||_A / ||u||_A)^(1/k)``.
The README ("Hybrid solving") gives the measured recipe and its figures.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from irsolve.composition import Cycle
from irsolve.data.static_problems import darcy_samples, solve_to_tolerance
from irsolve.interface import FixedPointSolver
from irsolve.learned.corrector_training import CorrectorFamily, RightHandSides
from irsolve.learned.nets import base_operator
from irsolve.learned.settings import check_settings, setting
from irsolve.reductions import broadcast, dot
from irsolve.solvers import Darcy2D, GaussSeidel, Jacobi, ResidualCorrector
from irsolve.solvers.corrector import StepLength

__all__ = [
    "DarcyCorrector",
    "DarcyCorrectorConfig",
    "Smoother",
    "corrector_net",
    "darcy_pairs",
    "dirichlet_random_field",
    "solved_pairs",
]

#: Smoothers the cycle can apply after the learned step.
Smoother = Literal["jacobi", "gauss-seidel"]


def corrector_net(modes: int = 16, width: int = 32, layers: int = 4) -> nn.Module:
    """The reference ``Phi``: a neuralop FNO from 2 channels (feature, ``r / s``) to 1.

    Rebuilt from a checkpoint's ``"model"`` config by :func:`irsolve.learned.nets.build_net`.
    """
    return base_operator(
        "fno", 2, 1, n_modes=(modes, modes), hidden_channels=width, n_layers=layers
    )


def dirichlet_random_field(
    batch: int,
    n: int,
    alpha: float = 3.0,
    tau: float = 3.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Samples of ``N(0, (-Δ + tau^2 I)^-alpha)`` with zero Dirichlet values on the unit square.

    The Dirichlet Laplacian has eigenfunctions ``sin(p pi x) sin(q pi y)`` with
    eigenvalues ``pi^2 (p^2 + q^2)``, so a sample is

    ``e(x, y) = sum_{p, q = 1}^{n} xi_pq lambda_pq^(-alpha/2) sin(p pi x) sin(q pi y)``,
    ``lambda_pq = pi^2 (p^2 + q^2) + tau^2``,

    ``xi_pq`` standard normal, at the interior nodes ``x_i = i / (n + 1)``
    (the grid of :class:`~irsolve.solvers.Darcy2D`), computed as ``S Xi S^T``
    with ``S_ip = sin(p pi x_i)``. With ``alpha = 3`` five Jacobi sweeps
    (omega 0.8) remove only about 5 % of the energy-norm error on 64^2 Darcy,
    so the error is the part relaxation leaves behind.

    Returns
    -------
    Tensor
        ``(batch, 1, n, n)``.
    """
    if batch < 1 or n < 1 or alpha <= 0 or tau <= 0:
        raise ValueError(
            f"expected batch >= 1, n >= 1, alpha > 0 and tau > 0, "
            f"got batch={batch}, n={n}, alpha={alpha}, tau={tau}"
        )
    k = torch.arange(1, n + 1, dtype=dtype, device=device)
    sines = torch.sin(math.pi * torch.outer(k / (n + 1), k))
    amplitude = (math.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (-alpha / 2)
    xi = torch.randn(batch, 1, n, n, generator=generator, dtype=dtype, device=device)
    return sines @ (xi * amplitude) @ sines.T


def darcy_pairs(count: int, n: int, seed: int = 0, rtol: float = 1e-12) -> TensorDataset:
    """``count`` pairs ``(a, u)`` of FNO Darcy coefficients (12/3) and solutions for ``f = 1``.

    :func:`irsolve.data.static_problems.darcy_samples` with a generator seeded
    by ``seed``, solved by multigrid to relative residual ``rtol``; float64,
    ``(count, 1, n, n)`` each.
    """
    if count < 1 or n < 2:
        raise ValueError(f"expected count >= 1 and n >= 2, got count={count}, n={n}")
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset(*darcy_samples(count, n, generator=generator, rtol=rtol))


def solved_pairs(a: Tensor, rtol: float = 1e-12) -> TensorDataset:
    """Pairs ``(a, u)`` for given coefficients ``a`` ``(B, 1, n, n)``: ``-div(a grad u) = 1``.

    The training reads only ``a`` (its errors are drawn); ``u`` is the
    validation's start, so ``f = 1`` serves whatever forcing a data file was
    made with.
    """
    return TensorDataset(a, solve_to_tolerance(Darcy2D(a), rtol))


@dataclasses.dataclass
class DarcyCorrectorConfig:
    """The Darcy corrector's deployed cycle and training errors (stored in the checkpoint).

    Attributes
    ----------
    nu, smoother, omega
        Smoothing sweeps after the learned step: weighted Jacobi
        (``"jacobi"``, ``omega`` default 0.8) or red-black Gauss-Seidel
        (``"gauss-seidel"``, ``omega`` default 1), and their weight.
    step_length
        The corrector's step length (``"energy"``, ``"residual"`` or ``None``).
    smoothness
        Exponent ``alpha`` of the random training errors (:func:`dirichlet_random_field`).
    val_cycles
        Cycles of the validation from ``h_0 = 0``.
    """

    nu: int = setting(5, "smoothing sweeps per cycle", minimum=0)
    smoother: Smoother = setting("jacobi", "smoother after the learned step")
    omega: float | None = setting(
        None, "smoother weight (default: Jacobi 0.8, Gauss-Seidel 1)", minimum=0.0, open_min=True
    )
    step_length: StepLength | None = setting("energy", "step length along the learned direction")
    smoothness: float = setting(
        3.0, "smoothness exponent alpha of the random errors", minimum=0.0, open_min=True
    )
    val_cycles: int = setting(10, "hybrid cycles of the validation", minimum=1)

    def __post_init__(self) -> None:
        check_settings(self)  # each field's type and range, declared with setting() above
        if self.omega is None:
            self.omega = 0.8 if self.smoother == "jacobi" else 1.0

    def smoothing(self) -> FixedPointSolver | None:
        """``nu`` sweeps of the smoother as one step (``None`` when ``nu = 0``)."""
        if self.nu == 0:
            return None
        if self.smoother == "jacobi":
            return Jacobi(omega=self.omega, sweeps=self.nu)
        return GaussSeidel(omega=self.omega, sweeps=self.nu)


def energy(problem: Darcy2D, e: Tensor) -> Tensor:
    """``||e||_A`` per sample, ``(B,)``."""
    return dot(e, problem.apply(e)).clamp_min(0).sqrt()


class DarcyCorrector(CorrectorFamily):
    """The Darcy family (see the module docstring)."""

    name = "darcy"
    config_type = DarcyCorrectorConfig
    selection_metric = "cycle_factor"

    def cycle(self, net: nn.Module, config: DarcyCorrectorConfig) -> Cycle:
        """``Cycle(ResidualCorrector(net, step_length), smoothing)``; the learned step alone
        when ``nu = 0``."""
        corrector = ResidualCorrector(net, step_length=config.step_length)
        smoothing = config.smoothing()
        return Cycle(corrector) if smoothing is None else Cycle(corrector, smoothing)

    def problem(self, x: Tensor, config: DarcyCorrectorConfig) -> Darcy2D:
        return Darcy2D(x.to(torch.float64))

    def training_rhs(
        self, problem: Darcy2D, y: Tensor, config: DarcyCorrectorConfig
    ) -> RightHandSides:
        b, _, n, _ = y.shape
        e = dirichlet_random_field(b, n, alpha=config.smoothness, device=y.device)
        e = e / broadcast(energy(problem, e), e)
        return RightHandSides(problem.apply(e), e)

    def validation_rhs(
        self, problem: Darcy2D, y: Tensor, config: DarcyCorrectorConfig
    ) -> RightHandSides:
        u = y.to(torch.float64)
        return RightHandSides(problem.apply(u), u, steps=config.val_cycles)

    def factor(self, problem: Darcy2D, rhs: RightHandSides, h: Tensor) -> Tensor:
        """``||e - h||_A / ||e||_A``: the energy norm of the error after the cycle."""
        return energy(problem, rhs.reference - h) / energy(problem, rhs.reference)

    def generate(
        self, count: int, n: int, seed: int, config: DarcyCorrectorConfig
    ) -> TensorDataset:
        return darcy_pairs(count, n, seed=seed)
