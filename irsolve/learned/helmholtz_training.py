"""Training the learned Helmholtz preconditioner through the cycle FGMRES applies.

The preconditioner (:func:`irsolve.solvers.helmholtz_corrector.learned_preconditioner`)
maps a vector ``r`` to ``z = z_1 + α d``: the shifted-Laplacian cycle
``z_1 = B_M r`` and one learned step ``d = d(r_1)`` on what it leaves,
``r_1 = r - A z_1``, with the minimal-residual ``α``. The loss is the
per-sample residual factor of the learned step,

``loss = mean_b ||r_1 - α A d||_2 / ||r_1||_2``,

the reduction the net adds to the SL cycle, with ``α`` inside the loss as for
the Darcy corrector. The vectors ``r`` are those FGMRES actually feeds its
preconditioner: the Arnoldi vectors of FGMRES(SL multigrid) solves of
point-source problems on the training media (:func:`krylov_vectors`), not
random fields. A batch is ``(speed, vector)``: the operator is rebuilt from
the wave speed (``ω`` from the points per wavelength, sponge and attenuation
from :class:`HelmholtzTrainingConfig`), the vector is stored as two real
channels.

Measured (README, "Helmholtz"): see there for the run, its length and the
held-out iteration counts.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from irsolve.engine import solve
from irsolve.learned.checkpoint import CheckpointError, load_checkpoint, load_model_state
from irsolve.learned.nets.factory import build_net, net_config
from irsolve.learned.nets.unet import RefinementUNet
from irsolve.learned.settings import check_settings, setting
from irsolve.reductions import broadcast, norm
from irsolve.solvers.helmholtz import (
    Helmholtz2D,
    layered_speed,
    piecewise_speed,
    point_source,
    smooth_speed,
)
from irsolve.solvers.helmholtz_corrector import HelmholtzCorrector
from irsolve.solvers.helmholtz_preconditioner import ShiftedLaplacian, ShiftedLaplacianContext
from irsolve.solvers.krylov import FlexibleGMRES

__all__ = [
    "HelmholtzObjective",
    "HelmholtzTrainingConfig",
    "helmholtz_corrector_net",
    "krylov_vectors",
    "load_helmholtz_net",
    "mixed_speed",
]

logger = logging.getLogger(__name__)


def helmholtz_corrector_net(base_channels: int = 8, depth: int = 3) -> nn.Module:
    """The reference net: a U-Net (zero padding, layer norm) from 4 channels to 2.

    Convolutions see the waves in grid units, and at fixed points per
    wavelength a wave looks the same at every grid size, so the net is
    applied at any size without retraining.
    """
    return RefinementUNet(4, 2, base_channels=base_channels, depth=depth, padding="zeros")


def mixed_speed(batch: int, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Wave speeds from the three families in turn (sample ``i`` of family ``i % 3``):
    smooth (contrast 2), two-phase (contrast 2) and layered (contrast 2.5),
    ``(batch, 1, n, n)`` float64."""
    families = torch.stack(
        [
            smooth_speed(batch, n, 2.0, generator),
            piecewise_speed(batch, n, 2.0, generator),
            layered_speed(batch, n, 2.5, generator=generator),
        ]
    )
    index = torch.arange(batch)
    return families[index % 3, index]


@dataclasses.dataclass
class HelmholtzTrainingConfig:
    """The problems the preconditioner is trained on.

    Attributes
    ----------
    ppw, attenuation
        Points per wavelength and uniform attenuation of :class:`Helmholtz2D`
        (sponge: its defaults).
    data_restart, data_maxiter
        FGMRES(SL multigrid) settings of the solves whose Arnoldi vectors are
        the training inputs (:func:`krylov_vectors`).
    """

    ppw: float = setting(10.0, "points per wavelength", minimum=4.0)
    attenuation: float = setting(0.0, "uniform attenuation", minimum=0.0)
    data_restart: int = setting(100, "FGMRES restart of the data solves", minimum=1)
    data_maxiter: int = setting(300, "FGMRES iterations of the data solves", minimum=1)

    def __post_init__(self) -> None:
        check_settings(self)

    def problem(self, speed: Tensor, f: Tensor | None = None) -> Helmholtz2D:
        """``Helmholtz2D`` of these settings (``f = 0`` when only the operator is needed)."""
        f = torch.zeros_like(speed) if f is None else f
        return Helmholtz2D(speed, f, ppw=self.ppw, attenuation=self.attenuation)


class _Recording(ShiftedLaplacian):
    """The SL preconditioner that keeps every vector FGMRES applies it to, with its medium."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Tensor, Tensor]] = []

    def with_rhs(self, ctx: ShiftedLaplacianContext, f: Tensor) -> ShiftedLaplacianContext:
        self.seen.append((ctx.problem.speed, f.clone()))
        return super().with_rhs(ctx, f)


def krylov_vectors(
    speed: Tensor, config: HelmholtzTrainingConfig | None = None, seed: int = 0
) -> TensorDataset:
    """``(speed, vector)`` pairs: the vectors FGMRES(SL multigrid) preconditions.

    Each medium gets a point source (at a seeded random position), and
    FGMRES(``data_restart``) with the :class:`~irsolve.solvers.ShiftedLaplacian`
    preconditioner runs to a relative residual of 1e-7; every vector ``v_j``
    the preconditioner is applied to is kept (unit norm, complex), stored as
    ``(Re, Im)`` channels, float32.
    """
    config = config or HelmholtzTrainingConfig()
    generator = torch.Generator().manual_seed(seed)
    f = point_source(speed.shape[0], speed.shape[-1], generator=generator)
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


class HelmholtzObjective:
    """What :func:`irsolve.learned.training.fit` optimises for the learned preconditioner.

    ``validate`` reports the same residual factor as the loss, per sample,
    under ``"vrmse"`` (the key ``fit`` selects the best checkpoint by) and
    ``"factor"``.
    """

    #: The validation key the best checkpoint is selected by (lower is better).
    selection_metric = "factor"

    def __init__(self, net: nn.Module, config: HelmholtzTrainingConfig | None = None) -> None:
        self.model = net
        self.settings = config or HelmholtzTrainingConfig()
        self.corrector = HelmholtzCorrector(net)
        self.shifted = ShiftedLaplacian()

    def factors(self, speed: Tensor, vectors: Tensor) -> Tensor:
        """``||r_1 - α A d|| / ||r_1||`` per sample for ``r`` = the vectors ``(B, 2, n, n)``."""
        problem = self.settings.problem(speed.to(torch.float64))
        r = torch.complex(vectors[:, :1].double(), vectors[:, 1:].double())
        with torch.no_grad():
            r1 = r - problem.apply(self.shifted.correction(self.shifted.prepare(problem), r))
        ctx = self.corrector.prepare(problem)
        d = self.corrector.direction(ctx, r1)
        alpha = self.corrector.step_size(ctx, r1, d)
        after = r1 - broadcast(alpha, r1) * problem.apply(d)
        return norm(after) / norm(r1)

    def loss(self, x: Tensor, y: Tensor, epoch_progress: float) -> tuple[Tensor, dict[str, float]]:
        loss = self.factors(x, y).mean()
        return loss.float(), {"factor": loss.item()}

    def validate(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        factor = self.factors(x, y)
        return {"vrmse": factor, "factor": factor}

    def config(self) -> dict[str, Any]:
        return {
            "objective": "helmholtz-corrector",
            "model": net_config(self.model),
            "helmholtz": dataclasses.asdict(self.settings),
        }

    def to(self, device: torch.device) -> None:
        self.model.to(device)


def load_helmholtz_net(path: str | Path) -> tuple[nn.Module, HelmholtzTrainingConfig]:
    """The net of a :class:`HelmholtzObjective` checkpoint (eval mode, no gradients, CPU)
    and the problem settings it was trained on.

    Raises
    ------
    FileNotFoundError, CheckpointError
        As :func:`~irsolve.learned.checkpoint.load_checkpoint`; also for a
        checkpoint of another objective.
    """
    state = load_checkpoint(path, map_location="cpu")
    config = state.get("config") or {}
    if config.get("objective") != "helmholtz-corrector" or config.get("model") is None:
        raise CheckpointError(
            f"expected a helmholtz-corrector checkpoint (irsolve train-corrector --problem "
            f"helmholtz), got objective {config.get('objective')!r}: {path}"
        )
    net = build_net(config["model"])
    load_model_state(net, state["model"], source=str(path))
    settings = HelmholtzTrainingConfig(**config.get("helmholtz", {}))
    return net.eval().requires_grad_(False), settings
