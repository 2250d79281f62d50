"""Training of the closed-loop learned corrector (:class:`~irsolve.solvers.ResidualCorrector`).

:class:`CorrectorObjective` plugs into :func:`irsolve.learned.training.fit`. A batch
is ``(a, u)``: Darcy coefficients and the exact discrete solutions of
``-div(a grad u) = 1`` (:func:`darcy_pairs`, solved by our
:class:`~irsolve.solvers.Multigrid` to a relative residual of 1e-12). For
each sample an error ``e`` is drawn from the distribution the step meets in
a solve (:meth:`CorrectorObjective.errors`): either the error ``u - h_k`` of
the current hybrid's own iterate after ``k`` cycles (one corrector step and
``nu`` smoothing sweeps per cycle, from ``h_0 = 0``, without grad), or a
smooth random field (:func:`dirichlet_random_field`, the default: errors
spread over the low sine modes that relaxation leaves behind). The loss is
the per-sample relative energy-norm error after one learned step and ``nu`` sweeps,

``loss = mean_b ||S^nu (e - alpha d)||_A / ||e||_A``,  ``d = d(r = A e)``,

with the corrector's own step length ``alpha`` (energy by default) inside
the loss; ``S`` is the smoother's error propagator (weighted Jacobi
``I - omega D^-1 A`` or red-black Gauss-Seidel). The cycle is
:meth:`CorrectorConfig.cycle`, stepped by the engine.
By homogeneity the error's size does not matter, only its shape. Optionally
(``supervised > 0``) HINTS's supervised term adds
``supervised * mean_b ||d - e||_2 / ||e||_2``, the direction against
``A^{-1} r`` itself.

Measured on 64^2 Darcy (1 thread of a shared 2-core CPU; README, "Hybrid
solving", gives the commands). The defaults (smooth fields only, alpha 3,
Jacobi x5 in the loss), 25 epochs of 16 batches of 16 (210 s): training
factor 0.16, validation factor 0.45; on 8 held-out problems the hybrid
corrector + Jacobi x5 reached a relative residual of 1e-8 in 36-38 cycles
and FCG preconditioned by ``GS x5, corrector, GS x5`` in 14 iterations.
The earlier smooth fields (a periodic Gaussian field times
``sin(pi x) sin(pi y)``, energy mostly in that one mode), mixed with
rollouts, persistent chains and Gauss-Seidel in the loss over three runs
(24 minutes), gave a validation factor of 0.49, FCG 26 iterations, and a
stationary hybrid that stalled at 0.99 per cycle; with them alone the
training factor stayed at 0.63. Every run kept the energy step length
inside the loss (without it, earlier prototypes trained unstably); the
supervised term was not tried.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from irsolve.composition import Cycle
from irsolve.engine import solve
from irsolve.interface import FixedPointSolver
from irsolve.learned.nets import base_operator
from irsolve.learned.nets.factory import net_config
from irsolve.learned.settings import check_settings, setting
from irsolve.reductions import broadcast, dot, norm
from irsolve.solvers import (
    Darcy2D,
    GaussSeidel,
    Jacobi,
    Multigrid,
    ResidualCorrector,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers.corrector import StepLength

__all__ = [
    "CorrectorConfig",
    "CorrectorObjective",
    "Smoother",
    "corrector_net",
    "darcy_pairs",
    "dirichlet_random_field",
]

logger = logging.getLogger(__name__)

#: Smoothers the training loss can apply after the learned step.
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
    with ``S_ip = sin(p pi x_i)``. Unlike a periodic field times a window, no
    mode is favoured beyond the spectrum: with ``alpha = 3`` five Jacobi
    sweeps (omega 0.8) remove only about 5 % of the energy-norm error on
    64^2 Darcy, so the error is the part relaxation leaves behind.

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


def darcy_pairs(
    count: int, n: int, seed: int = 0, rtol: float = 1e-12, chunk: int = 64
) -> TensorDataset:
    """``count`` pairs ``(a, u)`` of FNO Darcy coefficients (12/3) and solutions for ``f = 1``.

    ``a = darcy_coefficient(gaussian_random_field(count, n))`` (float64,
    ``(count, 1, n, n)``), ``u`` from :class:`~irsolve.solvers.Multigrid`
    V(2,2) cycles to relative residual ``rtol``.

    Raises
    ------
    RuntimeError
        When a multigrid solve does not reach ``rtol``.
    """
    if count < 1 or n < 2:
        raise ValueError(f"expected count >= 1 and n >= 2, got count={count}, n={n}")
    generator = torch.Generator().manual_seed(seed)
    a = darcy_coefficient(gaussian_random_field(count, n, generator=generator))
    return solved_pairs(a, rtol=rtol, chunk=chunk)


def solved_pairs(a: Tensor, rtol: float = 1e-12, chunk: int = 64) -> TensorDataset:
    """Pairs ``(a, u)`` for given coefficients ``a`` ``(B, 1, n, n)``: ``-div(a grad u) = 1``.

    ``u`` from :class:`~irsolve.solvers.Multigrid` V(2,2) cycles to relative
    residual ``rtol``; the corrector's training reads only ``a`` (its errors
    are drawn, their residuals are ``A e``) and ``u`` (for hybrid rollouts),
    so ``f = 1`` serves whatever forcing a data file was made with.

    Raises
    ------
    RuntimeError
        When a multigrid solve does not reach ``rtol``.
    """
    solutions = []
    for start in range(0, a.shape[0], chunk):
        problem = Darcy2D(a[start : start + chunk])
        sol = solve(None, Multigrid(), problem, tol=0.0, rtol=rtol, maxiter=100)
        if not sol.success:
            raise RuntimeError(f"multigrid did not reach rtol={rtol} on the training data: {sol}")
        solutions.append(sol.u)
    return TensorDataset(a, torch.cat(solutions))


@dataclasses.dataclass
class CorrectorConfig:
    """The corrector's hybrid cycle and the settings of :class:`CorrectorObjective`.

    The one place where the cycle's ``nu``, ``smoother`` and ``omega`` live:
    training steps :meth:`cycle`, and a checkpoint stores these settings, so
    :func:`irsolve.learned.trained.load_corrector` rebuilds the same cycle.

    Attributes
    ----------
    nu, smoother, omega
        Smoothing sweeps after the learned step: weighted Jacobi
        (``"jacobi"``, ``omega`` default 0.8) or red-black Gauss-Seidel
        (``"gauss-seidel"``, ``omega`` default 1), and their weight.
    step_length
        The corrector's step length inside the loss (``"energy"``,
        ``"residual"`` or ``None``).
    max_cycles
        Errors of the hybrid's own iterates are taken after ``k`` cycles,
        ``k`` uniform in ``0..max_cycles`` per batch (``k = 0``: ``e = u``).
    smooth_fraction, smoothness
        Probability that a sample's error is a smooth random field
        (:func:`dirichlet_random_field` with ``alpha = smoothness``) instead.
        The defaults (1 and 3; ``max_cycles = 0``) train on such fields only:
        the measured best recipe (README, "Hybrid solving").
    supervised
        Weight of HINTS's supervised term ``||d - e|| / ||e||`` (0: off).
    val_cycles
        Validation runs this many hybrid cycles from ``h_0 = 0`` and reports
        the mean per-cycle energy-norm factor ``(||e_k||_A / ||e_0||_A)^(1/k)``.
    chains, reset
        Persistent error chains: ``chains`` errors (with their coefficients)
        kept between batches; each batch also trains on up to ``batch size``
        of them and stores back their error after the cycle, so a chain
        follows the hybrid's own trajectory one cycle per visit, far deeper
        than ``max_cycles`` rollouts could afford. After each visit a chain
        is replaced, with probability ``reset``, by a fresh error of the
        batch (mean depth about ``1 / reset`` visits). 0 chains: off.
    """

    nu: int = setting(5, "smoothing sweeps per cycle", minimum=0)
    smoother: Smoother = setting("jacobi", "smoother after the learned step")
    omega: float | None = setting(
        None, "smoother weight (default: Jacobi 0.8, Gauss-Seidel 1)", minimum=0.0, open_min=True
    )
    step_length: StepLength | None = setting("energy", "step length along the learned direction")
    max_cycles: int = setting(0, "hybrid cycles before the errors trained on", minimum=0)
    smooth_fraction: float = setting(1.0, "share of smooth random errors", minimum=0.0, maximum=1.0)
    smoothness: float = setting(
        3.0, "smoothness exponent alpha of the random errors", minimum=0.0, open_min=True
    )
    supervised: float = setting(0.0, "weight of HINTS's supervised term", minimum=0.0)
    val_cycles: int = setting(10, "hybrid cycles of the validation", minimum=1)
    chains: int = setting(0, "persistent error chains (0: off)", minimum=0)
    reset: float = setting(0.05, "chain reset probability", minimum=0.0, maximum=1.0, open_min=True)

    def __post_init__(self) -> None:
        check_settings(self)  # each field's type and range, declared with setting() above
        if self.omega is None:
            self.omega = 0.8 if self.smoother == "jacobi" else 1.0

    def smoothing(self) -> FixedPointSolver | None:
        """``nu`` sweeps of the smoother as one step (``None`` when ``nu = 0``).

        Weighted Jacobi, or red-black Gauss-Seidel (SOR for ``omega > 1``).
        """
        if self.nu == 0:
            return None
        if self.smoother == "jacobi":
            return Jacobi(omega=self.omega, sweeps=self.nu)
        return GaussSeidel(omega=self.omega, sweeps=self.nu)

    def cycle(self, net: nn.Module) -> Cycle:
        """The hybrid cycle ``Cycle(ResidualCorrector(net, step_length), smoothing)``.

        One step is one learned correction and ``nu`` smoothing sweeps; with
        ``nu = 0`` the cycle is the learned step alone.
        """
        corrector = ResidualCorrector(net, step_length=self.step_length)
        smoothing = self.smoothing()
        return Cycle(corrector) if smoothing is None else Cycle(corrector, smoothing)


def _energy(problem: Darcy2D, e: Tensor) -> Tensor:
    """``||e||_A`` per sample, ``(B,)``."""
    return dot(e, problem.apply(e)).clamp_min(0).sqrt()


def _unit_energy(problem: Darcy2D, e: Tensor) -> Tensor:
    """``e / ||e||_A`` per sample (the step is homogeneous; this keeps float32 tame)."""
    return e / broadcast(_energy(problem, e).clamp_min(1e-300), e)


class CorrectorObjective:
    """What :func:`irsolve.learned.training.fit` optimises for a :class:`ResidualCorrector`.

    The hybrid cycle is ``settings.cycle(net)`` (:meth:`CorrectorConfig.cycle`),
    stepped by the engine: the error ``e`` after ``k`` cycles is ``e - h_k``
    for ``h_k`` the engine's iterate on ``A h = A e`` from ``h_0 = 0`` (the
    cycle is affine in the error, so this is the error propagation itself).
    ``validate`` reports the hybrid's per-cycle energy factor under the key
    ``"vrmse"`` too, because ``fit`` selects the best checkpoint by that key.
    """

    #: The validation key the best checkpoint is selected by (lower is better).
    selection_metric = "cycle_factor"

    def __init__(self, net: nn.Module, config: CorrectorConfig | None = None) -> None:
        self.model = net
        self.settings = config or CorrectorConfig()
        self.cycle = self.settings.cycle(net)
        self.corrector: ResidualCorrector = self.cycle.solvers[0]
        self.chain_a: Tensor | None = None
        self.chain_e: Tensor | None = None

    def propagate(
        self, problem: Darcy2D, e: Tensor, cycles: int, *, grad: bool = False
    ) -> tuple[Tensor, Tensor]:
        """The errors after ``cycles`` hybrid cycles from errors ``e``, and which samples are ok.

        Returns ``(e_after, ok)``: ``ok[b]`` is False for a sample whose
        iterate turned non-finite (the engine ends it ``UNSTABLE``).
        """
        sol = solve(
            None,
            self.cycle,
            problem.with_rhs(problem.apply(e)),
            tol=None,
            maxiter=cycles,
            divergence=None,
            grad=grad,
        )
        ok = torch.tensor([code.ok for code in sol.retcodes], device=e.device)
        return e - sol.u, ok

    def errors(self, problem: Darcy2D, u: Tensor) -> Tensor:
        """Training errors: the hybrid's own after ``k`` cycles, or smooth random fields."""
        cfg = self.settings
        cycles = int(torch.randint(0, cfg.max_cycles + 1, ()).item())
        was_training = self.model.training
        self.model.eval()
        e, _ = self.propagate(problem, u, cycles)
        self.model.train(was_training)
        e = _unit_energy(problem, e)
        if cfg.smooth_fraction > 0:
            b, _, n, _ = u.shape
            smooth = dirichlet_random_field(
                b, n, alpha=cfg.smoothness, dtype=u.dtype, device=u.device
            )
            smooth = smooth / broadcast(_energy(problem, smooth), smooth)
            pick = torch.rand(b, device=u.device) < cfg.smooth_fraction
            e = torch.where(broadcast(pick, e), smooth, e)
        return e

    def _with_chains(self, a: Tensor, e: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The batch plus up to ``len(a)`` persistent chains; returns their pool indices too."""
        if self.chain_e is None or self.chain_e.shape[-1] != e.shape[-1]:
            return a, e, torch.zeros(0, dtype=torch.long)
        pick = torch.randperm(len(self.chain_e))[: len(a)]
        return torch.cat([a, self.chain_a[pick]]), torch.cat([e, self.chain_e[pick]]), pick

    def _store_chains(self, a: Tensor, after: Tensor, fresh: int, pick: Tensor, problem) -> None:
        """Put each chain's error after its cycle back; fill or reset chains with fresh ones."""
        cfg = self.settings
        after = _unit_energy(problem, after.detach())
        if self.chain_e is None or self.chain_e.shape[-1] != after.shape[-1]:
            self.chain_a, self.chain_e = a[:0], after[:0]
        if len(pick):
            self.chain_e[pick] = after[fresh:]
            reset = pick[torch.rand(len(pick)) < cfg.reset]
            take = torch.randint(0, fresh, (len(reset),))
            self.chain_a[reset], self.chain_e[reset] = a[take], after[take]
        room = cfg.chains - len(self.chain_e)
        if room > 0:
            self.chain_a = torch.cat([self.chain_a, a[:fresh][:room]])
            self.chain_e = torch.cat([self.chain_e, after[:fresh][:room]])

    def loss(self, x: Tensor, y: Tensor, epoch_progress: float) -> tuple[Tensor, dict[str, float]]:
        fresh = len(x)
        e = self.errors(Darcy2D(x), y)
        pick = torch.zeros(0, dtype=torch.long)
        if self.settings.chains > 0:
            x, e, pick = self._with_chains(x.to(e.dtype), e)
        problem = Darcy2D(x)
        after, ok = self.propagate(problem, e, 1, grad=True)
        if not bool(ok.all()):
            return x.new_full((), math.nan), {"factor": math.nan}  # fit skips the batch
        factor = _energy(problem, after) / _energy(problem, e)
        if self.settings.chains > 0:
            self._store_chains(problem.a, after, fresh, pick, problem)
        loss = factor.mean()
        parts = {"factor": loss.item()}
        if len(pick):
            parts["chain_factor"] = factor[fresh:].mean().item()
        if self.settings.supervised > 0:
            ctx = self.corrector.prepare(problem)
            d = self.corrector.direction(ctx, problem.apply(e))
            sup = norm(d - e) / norm(e)
            loss = loss + self.settings.supervised * sup.mean()
            parts["supervised"] = sup.mean().item()
        return loss.float(), parts

    def validate(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Per-cycle energy factor over ``val_cycles`` cycles from ``h_0 = 0``; NaN where
        an iterate turned non-finite."""
        problem = Darcy2D(x)
        cycles = self.settings.val_cycles
        e, ok = self.propagate(problem, y, cycles)
        factor = (_energy(problem, e) / _energy(problem, y)) ** (1.0 / cycles)
        factor = torch.where(ok, factor, torch.full_like(factor, math.nan))
        return {"vrmse": factor, "cycle_factor": factor}

    def config(self) -> dict[str, Any]:
        return {
            "objective": "corrector",
            "model": net_config(self.model),
            "corrector": dataclasses.asdict(self.settings),
        }

    def to(self, device: torch.device) -> None:
        self.model.to(device)
