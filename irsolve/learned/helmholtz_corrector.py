"""The Helmholtz family of the learned corrector: the learned preconditioner of FGMRES.

The deployed cycle is
:func:`irsolve.solvers.helmholtz_preconditioner.learned_preconditioner`:
``Cycle(ShiftedLaplacian(), ResidualCorrector(net, "residual"), repeats)``,
one application of which is what :class:`~irsolve.solvers.FlexibleGMRES`
applies to each Arnoldi vector. Training runs that cycle once on
``A z = r`` from ``z = 0`` for the vectors ``r`` FGMRES actually feeds its
preconditioner and minimises the per-sample residual factor

``loss = mean_b ||r - A z||_2 / ||r||_2``,

with the minimal-residual step length inside the loss (the learned half of
each repeat can never increase the residual). The vectors are the Arnoldi
vectors of FGMRES(SL multigrid) solves of point-source problems on the
training media (:func:`krylov_vectors`), not random fields. A batch is
``(speed, vector)``: the operator is rebuilt from the wave speed (``ω`` from
the points per wavelength, sponge and attenuation from
:class:`HelmholtzCorrectorConfig`, stored in the checkpoint), the vector is
stored as two real channels. Validation reports the same factor.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from irsolve.composition import Cycle
from irsolve.engine import solve
from irsolve.learned.corrector_training import CorrectorFamily, RightHandSides
from irsolve.learned.nets.unet import RefinementUNet
from irsolve.learned.settings import check_settings, setting
from irsolve.reductions import norm
from irsolve.solvers.helmholtz import (
    Helmholtz2D,
    Helmholtz3D,
    HelmholtzProblem,
    layered_speed,
    piecewise_speed,
    point_source,
    smooth_speed,
)
from irsolve.solvers.helmholtz_preconditioner import (
    ShiftedLaplacian,
    ShiftedLaplacianContext,
    learned_preconditioner,
)
from irsolve.solvers.krylov import FlexibleGMRES

__all__ = [
    "HelmholtzCorrector",
    "HelmholtzCorrectorConfig",
    "helmholtz_corrector_net",
    "krylov_vectors",
    "mixed_speed",
]

logger = logging.getLogger(__name__)


def helmholtz_corrector_net(base_channels: int = 8, depth: int = 3, dims: int = 2) -> nn.Module:
    """The reference net: a U-Net (zero padding, layer norm) from 4 channels to 2, on
    ``dims``-D grids (3x3x3 convolutions in 3-D).

    Convolutions see the waves in grid units, and at fixed points per
    wavelength a wave looks the same at every grid size, so the net is
    applied at any size without retraining.
    """
    return RefinementUNet(
        4, 2, base_channels=base_channels, depth=depth, padding="zeros", dims=dims
    )


def mixed_speed(
    batch: int, n: int, generator: torch.Generator | None = None, dim: int = 2
) -> Tensor:
    """Wave speeds from the three families in turn (sample ``i`` of family ``i % 3``):
    smooth (contrast 2), two-phase (contrast 2; inclusions in 3-D) and layered
    (contrast 2.5), ``(batch, 1, n, ..., n)`` float64 over ``dim`` grid dims."""
    families = torch.stack(
        [
            smooth_speed(batch, n, 2.0, generator, dim=dim),
            piecewise_speed(batch, n, 2.0, generator, dim=dim),
            layered_speed(batch, n, 2.5, generator=generator, dim=dim),
        ]
    )
    index = torch.arange(batch)
    return families[index % 3, index]


@dataclasses.dataclass
class HelmholtzCorrectorConfig:
    """The problems the preconditioner serves and its deployed cycle (stored in the checkpoint).

    Attributes
    ----------
    dim
        Grid dimensions: 2 (:class:`Helmholtz2D`) or 3 (:class:`Helmholtz3D`).
    ppw, attenuation
        Points per wavelength and uniform attenuation of the problems (sponge: its
        defaults); :meth:`problem` builds problems with them.
    repeats, coarsen
        SL cycle + learned step pairs per application, and the grid levels below
        the problem's on which the net runs (the deployed
        :func:`~irsolve.solvers.helmholtz_preconditioner.learned_preconditioner`).
    data_restart, data_maxiter
        FGMRES(SL multigrid) settings of the solves whose Arnoldi vectors are
        the training inputs (:func:`krylov_vectors`).
    """

    dim: int = setting(2, "grid dimensions, 2 or 3", minimum=2)
    ppw: float = setting(10.0, "points per wavelength", minimum=4.0)
    attenuation: float = setting(0.0, "uniform attenuation", minimum=0.0)
    repeats: int = setting(3, "SL cycle + learned step pairs per application", minimum=1)
    coarsen: int = setting(0, "grid levels below the problem's the net runs on", minimum=0)
    data_restart: int = setting(100, "FGMRES restart of the data solves", minimum=1)
    data_maxiter: int = setting(300, "FGMRES iterations of the data solves", minimum=1)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.dim > 3:
            raise ValueError(f"HelmholtzCorrectorConfig: expected dim 2 or 3, got {self.dim}")

    def problem(
        self, speed: Tensor, f: Tensor | None = None, *, sponge_width: float | None = None
    ) -> HelmholtzProblem:
        """The Helmholtz problem of these settings (``f = 0`` when only the operator is
        needed); ``sponge_width`` as in :class:`~irsolve.solvers.Helmholtz2D` (``None``:
        its default)."""
        f = torch.zeros_like(speed, dtype=torch.complex128) if f is None else f
        kind = Helmholtz2D if self.dim == 2 else Helmholtz3D
        sponge = {} if sponge_width is None else {"sponge_width": sponge_width}
        return kind(speed, f, ppw=self.ppw, attenuation=self.attenuation, **sponge)


class _Recording(ShiftedLaplacian):
    """The SL preconditioner that keeps every vector FGMRES applies it to, with its medium."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Tensor, Tensor]] = []

    def with_rhs(self, ctx: ShiftedLaplacianContext, f: Tensor) -> ShiftedLaplacianContext:
        self.seen.append((ctx.problem.speed, f.clone()))
        return super().with_rhs(ctx, f)


def krylov_vectors(
    speed: Tensor, config: HelmholtzCorrectorConfig | None = None, seed: int = 0
) -> TensorDataset:
    """``(speed, vector)`` pairs: the vectors FGMRES(SL multigrid) preconditions.

    Each medium gets a point source (at a seeded random position), and
    FGMRES(``data_restart``) with the :class:`~irsolve.solvers.ShiftedLaplacian`
    preconditioner runs to a relative residual of 1e-7; every vector ``v_j``
    the preconditioner is applied to is kept (unit norm, complex), stored as
    ``(Re, Im)`` channels, float32.
    """
    config = config or HelmholtzCorrectorConfig()
    generator = torch.Generator().manual_seed(seed)
    f = point_source(speed.shape[0], speed.shape[-1], generator=generator, dim=config.dim)
    recorder = _Recording()
    sol = solve(
        None,
        FlexibleGMRES(recorder, restart=config.data_restart),
        config.problem(speed, f),
        tol=0.0,
        rtol=1e-7,
        maxiter=config.data_maxiter,
    )
    logger.info("krylov_vectors: FGMRES(SL) iterations %s", sol.iterations.tolist())
    speeds = torch.cat([s for s, _ in recorder.seen])
    vectors = torch.cat([v for _, v in recorder.seen])
    channels = torch.cat([vectors.real, vectors.imag], dim=1).float()
    return TensorDataset(speeds, channels)


class HelmholtzCorrector(CorrectorFamily):
    """The Helmholtz family (see the module docstring)."""

    name = "helmholtz"
    config_type = HelmholtzCorrectorConfig
    selection_metric = "residual_factor"

    def cycle(self, net: nn.Module, config: HelmholtzCorrectorConfig) -> Cycle:
        return learned_preconditioner(net, repeats=config.repeats, coarsen=config.coarsen)

    def problem(self, x: Tensor, config: HelmholtzCorrectorConfig) -> HelmholtzProblem:
        return config.problem(x.to(torch.float64))

    def training_rhs(
        self, problem: HelmholtzProblem, y: Tensor, config: HelmholtzCorrectorConfig
    ) -> RightHandSides:
        r = torch.complex(y[:, :1].double(), y[:, 1:].double())
        return RightHandSides(r, r)

    validation_rhs = training_rhs

    def factor(self, problem: HelmholtzProblem, rhs: RightHandSides, h: Tensor) -> Tensor:
        """``||r - A z||_2 / ||r||_2``: the residual the preconditioner leaves."""
        return norm(rhs.b - problem.apply(h)) / norm(rhs.b)

    def generate(
        self, count: int, n: int, seed: int, config: HelmholtzCorrectorConfig
    ) -> TensorDataset:
        """Arnoldi vectors of FGMRES(SL) on ``count`` media (:func:`mixed_speed`, seed ``seed``)."""
        speed = mixed_speed(count, n, torch.Generator().manual_seed(seed), dim=config.dim)
        return krylov_vectors(speed, config, seed=seed)
