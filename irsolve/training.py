"""Training of base operators and learned refiners: one loop, two objectives.

:func:`fit` is the only training loop (AdamW, cosine learning rate, gradient
clipping, non-finite batches skipped and counted, the run stopped with
:class:`NonFiniteTrainingError` when too many are, validation each epoch,
best/last checkpoints committed as one set per epoch, exact resume). What is
optimised is an *objective*:

- :class:`BaseObjective` (used by :func:`train_base`): relative L2 of an
  FNO/TFNO against the target;
- :class:`RefinerObjective` (used by :func:`train_refiner`): Algorithm 1 of
  the IRNO paper. With the base frozen, ``h_0 = T_base(x)`` without grad,
  ``h_{k+1} = Refiner.step(h_k)`` for ``k < K``, unrolled by the solve engine
  (:func:`irsolve.init` with ``tol=None``, ``grad=True``),
  ``l_k = mse(h_{k+1}, y) + beta_s * L_spec(h_{k+1}, y; lambda_k)``, and
  ``loss = mean_k l_k + w_fp(t) * beta_fp * mean(Phi([x; y])^2)
  + beta_jac * J(G)``, ``w_fp`` a linear warm-up, ``J`` an optional
  Jacobian-norm penalty of the step map ``G`` (Bai et al. 2021). Unroll
  lengths may be sampled past ``K`` to train stability beyond the horizon,
  and ``mean_k`` may weight later steps more (``step_weights="linear"``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from irsolve import distributed
from irsolve._validate import check_int, check_real
from irsolve.checkpoint import (
    MANIFEST,
    CheckpointError,
    commit_checkpoints,
    load_checkpoint,
    load_model_state,
    model_state,
    read_manifest,
    recover_checkpoints,
)
from irsolve.losses import (
    fixed_point_loss,
    jacobian_penalty,
    mse,
    progressive_spectral_loss,
    relative_l2_loss,
)
from irsolve.metrics import vrmse
from irsolve.nets.factory import net_config
from irsolve.settings import check_settings, setting
from irsolve.solve import SolveState, init
from irsolve.solvers.refiner import GeometricAlpha, Refiner

__all__ = [
    "BaseObjective",
    "NonFiniteTrainingError",
    "Objective",
    "RefinerConfig",
    "RefinerObjective",
    "StepWeights",
    "TrainConfig",
    "TrainResult",
    "fit",
    "load_weights",
    "make_refiner",
    "residual_rms",
    "seed_everything",
    "train_base",
    "train_refiner",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings shared by every objective (IRNO paper defaults).

    AdamW with ``lr`` and ``weight_decay``, cosine decay per batch to
    ``lr_min`` over all ``epochs``, gradient-norm clip ``clip``. ``seed``
    seeds the global torch RNG when :func:`fit` starts (dropout, sampled
    unroll lengths, Jacobian probes) and a separate generator for shuffling;
    build the model after :func:`seed_everything` for a reproducible
    initialisation too. ``max_skipped`` is the largest fraction of an epoch's
    batches that may have a non-finite loss or gradient (skipped) before
    :func:`fit` stops with :class:`NonFiniteTrainingError`. ``progress``
    shows a tqdm bar per epoch.

    ``device="auto"`` trains on the process's GPU when there is one, else on
    the CPU (:func:`irsolve.distributed.resolve_device`). ``precision="bf16"``
    runs each training forward under ``torch.autocast`` with bfloat16 (fp32
    weights, optimiser and validation; no loss scaling is needed for bf16's
    fp32 exponent range); ``compile`` applies ``torch.compile`` to the model in
    place; both are off by default. ``num_workers > 0`` loads batches in that
    many persistent worker processes (the data order is then another one than
    with 0 workers, as ``DataLoader`` draws its worker seed from the shuffling
    generator once per worker start; one seed still gives one run). Under
    ``torchrun``, ``batch_size`` is
    the global batch, split evenly over the processes.

    Every field is checked for type and range on construction; numeric
    strings (``"1e-3"``, as YAML reads them) are not numbers here: convert
    them where they are read.
    """

    epochs: int = setting(10, "training epochs", minimum=1)
    batch_size: int = setting(16, "samples per batch", minimum=1)
    lr: float = setting(3e-4, "AdamW learning rate", minimum=0.0, open_min=True)
    weight_decay: float = setting(1e-5, "AdamW weight decay", minimum=0.0)
    lr_min: float = setting(1e-6, "learning rate at the end of the cosine decay", minimum=0.0)
    clip: float = setting(1.0, "gradient-norm clip", minimum=0.0, open_min=True)
    seed: int = setting(
        0, "fixes the initial weights, the data order and every random draw", minimum=0
    )
    device: str = setting("auto", "torch device (auto: the process's GPU if any, else cpu)")
    progress: bool = setting(True, "show a progress bar per epoch")
    max_skipped: float = setting(
        0.5,
        "stop when more than this fraction of an epoch's batches is non-finite",
        minimum=0.0,
        maximum=1.0,
    )
    precision: Literal["fp32", "bf16"] = setting(
        "fp32", "bf16: the training forward under bfloat16 autocast (weights stay fp32)"
    )
    compile: bool = setting(False, "torch.compile the trained model")
    num_workers: int = setting(0, "data loader worker processes", minimum=0)

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        check_settings(self)  # each field's type and range, declared with setting() above
        self.lr_min = check_real(owner, "lr_min", self.lr_min, minimum=0.0, maximum=self.lr)
        if self.seed >= 2**63:
            raise ValueError(f"{owner}: expected seed to be an int < 2**63, got {self.seed}")
        self.device = _check_device(owner, "device", self.device)


def _check_device(owner: str, name: str, value: Any) -> str:
    """``value`` if it is ``"auto"`` or names a torch device this machine has (``"cpu"``,
    ``"cuda:0"``...); see :func:`irsolve.distributed.resolve_device`."""
    if not isinstance(value, str):
        raise TypeError(f"{owner}: expected {name} to be a device string, got {value!r}")
    try:
        distributed.resolve_device(value)
    except ValueError as err:
        raise ValueError(f"{owner}: {str(err).replace('device', name, 1)}") from None
    return value


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (every device) with ``seed``.

    Call it before building the model: weight initialisation draws from the
    global torch RNG, so two runs with one seed then start from the same
    weights. :func:`fit` seeds again when it starts (data order, noise).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global RNG user transforms draw from)
    torch.manual_seed(seed)


#: How the per-step losses of one unroll combine (see :class:`RefinerConfig`).
StepWeights = Literal["uniform", "linear"]


@dataclasses.dataclass
class RefinerConfig:
    """Algorithm 1 settings and the stability levers of the refiner objective.

    Attributes
    ----------
    K, alpha, beta_s, beta_fp, lam_start, lam_end
        Trained horizon, step size, spectral and fixed-point weights, and the
        progressive spectral exponent range (paper: 6, 0.2, 1, 0.01, 1, 2).
    fp_warmup_epochs
        The fixed-point weight rises linearly from 0 to ``beta_fp`` over
        this many epochs (0: full weight from the start).
    alpha_decay
        ``gamma`` of :class:`~irsolve.solvers.refiner.GeometricAlpha` with
        ``start = K``: ``alpha`` over the trained horizon, then
        ``alpha * gamma^(k-K+1)``; 1 keeps ``alpha`` constant.
    stop_threshold
        Adaptive stop of the built :class:`Refiner` on ``rms(Phi)``.
    beta_jac, jac_method, jac_iters
        Weight, estimator (``"hutchinson"`` or ``"power"``) and probes or
        power iterations of the Jacobian-norm penalty on the step map at the
        last unrolled iterate; 0 disables it.
    unroll_max
        When set (``>= K``), each batch unrolls a length drawn uniformly from
        ``K..unroll_max`` (all steps enter the loss); ``None``: always ``K``.
    step_weights
        How the per-step losses ``l_k`` of one unroll of ``n`` steps combine:
        ``"uniform"``, their mean (Algorithm 1); ``"linear"``, weights
        ``(k + 1) / sum_j (j + 1)``, so the later iterates, which are the
        answer, count more than the base-near first ones. For a step that
        applies a fixed correction ``g (y - h_0)`` per step (open loop, as
        the nets of ``benchmarks/bench_irno.py`` learn), the per-step errors
        ``(1 - k g)`` over ``k = 1..K`` are minimised by
        ``g = sum k / sum k^2 = 3 / (2K + 1)`` under uniform weights, so the
        error is lowest near ``k = (2K + 1) / 3`` and rises again by ``K``;
        linear weights give ``g = sum k^2 / sum k^3 = 2 (2K + 1) / (3K (K + 1))``,
        lowest nearer ``K``.
    start_mix
        When positive, each sample's unroll starts at
        ``h_0 = T(x) + t (y - T(x))``, ``t ~ U(0, start_mix)``, a point
        between the base's answer and the target, so the net sees iterates
        of every error size and is pushed to read its correction off ``h``
        (error feedback, a map that contracts towards ``y``) instead of
        spreading one correction of ``x`` evenly over K steps. On 64^2
        Navier-Stokes it slowed training and did not yet make the step
        contract in 8 epochs. 0 starts at ``T(x)`` (Algorithm 1). Validation
        always starts at ``T(x)``.
    calibrate_scale
        Before training, set the net's ``output_scale`` (when it has one, as
        :class:`~irsolve.nets.RefinementUNet` does) to the base's error
        :func:`residual_rms` on the training data, so ``Phi`` is learnt in
        units of the error it corrects.
    """

    K: int = setting(6, "trained horizon (refinement steps per unroll)", minimum=1)
    alpha: float = setting(0.2, "step size", minimum=0.0, open_min=True)
    beta_s: float = setting(1.0, "spectral loss weight", minimum=0.0)
    beta_fp: float = setting(0.01, "fixed-point loss weight", minimum=0.0)
    fp_warmup_epochs: float = setting(
        1.0, "epochs over which the fixed-point weight rises", minimum=0.0, flag="--fp-warmup"
    )
    lam_start: float = setting(1.0, "spectral exponent at the first step", minimum=0.0)
    lam_end: float = setting(2.0, "spectral exponent at the last step", minimum=0.0)
    alpha_decay: float = setting(
        1.0, "gamma: alpha * gamma^(k-K+1) past K", minimum=0.0, open_min=True
    )
    stop_threshold: float | None = setting(None, "adaptive stop on rms(Phi)", minimum=0.0)
    beta_jac: float = setting(0.0, "Jacobian-norm penalty weight", minimum=0.0)
    jac_method: Literal["hutchinson", "power"] = setting("hutchinson", "Jacobian-norm estimator")
    jac_iters: int = setting(1, "probes or power iterations of the penalty", minimum=1)
    unroll_max: int | None = setting(
        None, "sample unroll lengths in K..this (default: always K)", minimum=1
    )
    step_weights: StepWeights = setting(
        "uniform", "per-step loss weights: mean, or (k + 1)-weighted"
    )
    start_mix: float = setting(
        0.0,
        "start unrolls at T(x) + t (y - T(x)), t ~ U(0, this)",
        minimum=0.0,
        maximum=1.0,
    )
    calibrate_scale: bool = setting(
        True, "set the U-Net's output_scale to the base's RMS training error"
    )

    def __post_init__(self) -> None:
        owner = "RefinerConfig"
        check_settings(self)  # each field's type and range, declared with setting() above
        if self.unroll_max is not None:
            self.unroll_max = check_int(owner, "unroll_max", self.unroll_max, minimum=self.K)

    def levers(self) -> dict[str, Any]:
        """The stability levers that differ from the paper's plain recipe."""
        plain = RefinerConfig(K=self.K)
        names = (
            "beta_fp",
            "alpha_decay",
            "stop_threshold",
            "beta_jac",
            "unroll_max",
            "step_weights",
            "start_mix",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) != getattr(plain, n)}


def make_refiner(net: nn.Module, config: RefinerConfig) -> Refiner:
    """The :class:`Refiner` that ``config`` describes (alpha schedule, adaptive stop)."""
    alpha: float | GeometricAlpha = config.alpha
    if config.alpha_decay != 1.0:
        alpha = GeometricAlpha(config.alpha, config.alpha_decay, start=config.K)
    return Refiner(net, alpha, stop_threshold=config.stop_threshold)


class Objective(Protocol):
    """What :func:`fit` optimises: a trainable ``model``, a loss and a validation metric."""

    model: nn.Module

    def loss(self, x: Tensor, y: Tensor, epoch_progress: float) -> tuple[Tensor, dict[str, float]]:
        """Scalar training loss of a batch and its named parts (floats, for logs)."""

    def validate(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Per-sample validation metrics; the key ``"vrmse"`` selects the best checkpoint."""

    def config(self) -> dict[str, Any]:
        """JSON-able description (model config and objective settings) for checkpoints."""

    def to(self, device: torch.device) -> None:
        """Move every module the objective uses to ``device``."""


class BaseObjective:
    """Relative L2 loss ``mean_b ||T(x_b) - y_b|| / ||y_b||`` of a base operator ``T``."""

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


class NonFiniteTrainingError(RuntimeError):
    """Training stopped: too many non-finite batches in an epoch, or no finite metric at all."""


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    ``history`` has one record per epoch (train loss and its parts, learning
    rate, skipped batches, mean validation metrics, seconds); ``best_metric``
    is the lowest mean validation VRMSE and ``best_epoch`` its epoch (1-based);
    ``skipped_batches`` counts non-finite batches over the whole run.
    """

    history: list[dict[str, float]]
    best_metric: float
    best_epoch: int
    skipped_batches: int
    checkpoint_dir: Path | None


def _loader(
    data: Dataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
    num_workers: int = 0,
    device: torch.device | None = None,
    sampler: DistributedSampler | None = None,
) -> DataLoader:
    """Batches of ``data``; ``num_workers > 0`` reads them in that many persistent worker
    processes (each opens its own file handles), pinned for a copy to a CUDA ``device``."""
    workers: dict[str, Any] = {}
    if num_workers > 0:
        pin = device is not None and device.type == "cuda"
        workers = {"num_workers": num_workers, "persistent_workers": True, "pin_memory": pin}
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        sampler=sampler,
        **workers,
    )


def _train_loader(
    data: Dataset, config: TrainConfig, generator: torch.Generator, device: torch.device
) -> DataLoader:
    """Shuffled training batches of ``config.batch_size`` samples in all.

    One process shuffles with ``generator``. Under ``torchrun`` each of the
    ``W`` ranks reads ``batch_size / W`` samples per batch from its share of
    a :class:`~torch.utils.data.distributed.DistributedSampler` (seeded with
    ``config.seed``, reshuffled per epoch by ``set_epoch``), so one step
    averages the gradient over the same global batch size as one process.
    """
    world = distributed.world_size()
    if world == 1:
        return _loader(data, config.batch_size, True, generator, config.num_workers, device)
    if config.batch_size % world:
        raise ValueError(
            f"expected batch_size to be a multiple of the world size {world} (it is the global "
            f"batch, split over the ranks), got {config.batch_size}"
        )
    sampler = DistributedSampler(
        data, num_replicas=world, rank=distributed.rank(), shuffle=True, seed=config.seed
    )
    return _loader(
        data, config.batch_size // world, False, None, config.num_workers, device, sampler
    )


class _ObjectiveLoss(nn.Module):
    """An objective's batch loss as a module over its trainable ``model``.

    ``DistributedDataParallel`` averages gradients over ranks only for
    backward passes of outputs of its own ``forward``; wrapping the whole
    loss (rather than the model) lets objectives call their model however
    they need (unrolls, several calls per batch).
    """

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.model = objective.model
        self.objective = objective

    def forward(self, x: Tensor, y: Tensor, progress: float) -> tuple[Tensor, dict[str, float]]:
        return self.objective.loss(x, y, progress)


def _sum_over_ranks(totals: dict[str, float], count: int) -> tuple[dict[str, float], int]:
    """Per-key sums and the count added over ranks (unchanged in one process)."""
    gathered = distributed.all_gather_objects((totals, count))
    if len(gathered) == 1:
        return totals, count
    summed: dict[str, float] = {}
    for part, _ in gathered:
        for key, value in part.items():
            summed[key] = summed.get(key, 0.0) + value
    return summed, sum(n for _, n in gathered)


def _validate(objective: Objective, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Mean validation metrics over every rank's share of the samples."""
    objective.model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            metrics = objective.validate(x, y)
            for key, values in metrics.items():
                sums[key] = sums.get(key, 0.0) + values.sum().item()
            count += len(x)
    sums, count = _sum_over_ranks(sums, count)
    return {f"val_{k}": v / max(count, 1) for k, v in sums.items()}


def fit(
    objective: Objective,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """The training loop behind :func:`train_base` and :func:`train_refiner`.

    Parameters
    ----------
    objective
        Gives the trainable ``model``, the batch loss and the validation metrics.
    train_data, val_data
        Datasets of ``(x, y)`` pairs; ``val_data=None`` skips validation (the
        best checkpoint then follows the training loss).
    config
        Optimisation settings.
    checkpoint_dir
        Where ``last.pt`` (each epoch) and ``best.pt`` (lowest validation
        VRMSE) go, each with a ``.json`` summary, committed per epoch as one
        set by :func:`~irsolve.checkpoint.commit_checkpoints` (a kill at any
        point leaves the last complete epoch's set); ``None`` writes nothing.
    resume
        Continue from the last committed set in ``checkpoint_dir`` when
        there is one: model, optimiser, scheduler, epoch, history and RNG
        states are restored, so the run continues exactly as an
        uninterrupted one would (on CPU). The run's settings must be those
        of the checkpoint (``device``, ``progress``, ``compile`` and
        ``num_workers`` may differ).
    overwrite
        Train from the start into a ``checkpoint_dir`` that holds a run; its
        files are replaced when this run commits its first epoch.
    callback
        Called with each epoch's record after its checkpoint is written.

    Notes
    -----
    Under ``torchrun`` (inside :func:`irsolve.distributed.session`) the
    objective's loss is wrapped in ``DistributedDataParallel`` and the
    training data read through an epoch-seeded ``DistributedSampler``; each
    rank takes ``batch_size / world`` samples per step, so with a per-sample
    mean loss a step is one process's step on the same global batch. The
    shuffle differs from one process's, and when the ranks cannot share the
    data evenly the sampler repeats up to ``world - 1`` samples per epoch, so
    runs on different numbers of processes are alike, not identical. Epoch
    records are averaged over all ranks' batches and validation metrics
    summed over the ranks' blocks of ``val_data``: every rank returns the
    same history. Rank 0 writes the checkpoints while the others wait. Batch
    norm layers use per-rank batch statistics (as in any
    ``DistributedDataParallel`` model); rank 0's running statistics are given
    to every rank before validation.

    Raises
    ------
    NonFiniteTrainingError
        When more than ``config.max_skipped`` of an epoch's batches have a
        non-finite loss or gradient (the message names the likely cause:
        non-finite data, the learning rate, the objective's settings), or
        when no epoch gives a finite selection metric.
    CheckpointError
        When ``checkpoint_dir`` holds a run and neither ``resume`` nor
        ``overwrite`` is set, when a resumed run's settings differ from its
        checkpoint's, or when a checkpoint file is damaged or stale.
    """
    device = distributed.resolve_device(config.device)
    world, rank = distributed.world_size(), distributed.rank()
    objective.to(device)
    model = objective.model
    if config.compile:
        model.compile()  # in place: the objective's calls and the state dict keys are unchanged
    # Rank 0 draws what one process draws; the other ranks draw their own noise and unrolls.
    torch.manual_seed(config.seed + rank)
    shuffle_rng = torch.Generator().manual_seed(config.seed)
    loader = _train_loader(train_data, config, shuffle_rng, device)
    val_loader = None
    if val_data is not None:
        val_loader = _loader(
            distributed.shard(val_data), config.batch_size, False, None, config.num_workers, device
        )
    if len(loader) == 0:
        raise ValueError("expected a non-empty training dataset, got 0 samples")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * len(loader), eta_min=config.lr_min
    )
    summary_config = {"train": dataclasses.asdict(config), **objective.config()}
    history: list[dict[str, float]] = []
    best, best_epoch, skipped_total, start_epoch, steps_total = math.inf, 0, 0, 0, 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

    state = _resume_state(ckpt_dir, resume, overwrite, summary_config, device)
    if state is not None:
        load_model_state(model, state["model"], source=str(ckpt_dir / "last.pt"))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        if world > 1:
            rank_states = state.get("rng_torch_ranks") or []
            if len(rank_states) == world:
                torch.set_rng_state(rank_states[rank])
            else:
                logger.warning(
                    "resuming on %d processes a run saved on %d: the data order and random "
                    "draws differ from an uninterrupted run's",
                    world,
                    max(len(rank_states), 1),
                )
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        shuffle_rng.set_state(state["rng_shuffle"])
        history = list(state["history"])
        best, best_epoch = float(state["best"]), int(state["best_epoch"])
        skipped_total, start_epoch = int(state["skipped"]), int(state["epoch"])
        steps_total = int(state.get("steps", 0))
        logger.info("resumed from %s at epoch %d", ckpt_dir / "last.pt", start_epoch)

    batch_loss: Callable[[Tensor, Tensor, float], tuple[Tensor, dict[str, float]]] = objective.loss
    if world > 1:
        # Gradients are averaged over the ranks during backward; rank 0's weights are broadcast.
        device_ids = [device.index] if device.type == "cuda" else None
        batch_loss = DistributedDataParallel(_ObjectiveLoss(objective), device_ids=device_ids)
    bf16 = config.precision == "bf16"
    for epoch in range(start_epoch, config.epochs):
        model.train()
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        tic = time.perf_counter()
        totals: dict[str, float] = {}
        done = skipped = bad_data = 0
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (config.progress and distributed.is_main()),
        )
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss, parts = batch_loss(x, y, epoch + i / len(loader))
            optimizer.zero_grad(set_to_none=True)
            # Every rank must take the same branch: a rank that skips backward would leave
            # the others waiting in the gradient all-reduce.
            finite = distributed.all_true(torch.isfinite(loss))
            if finite:
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, config.clip)
                finite = bool(torch.isfinite(grad_norm))
            if not finite:
                skipped += 1
                bad_data += not (torch.isfinite(x).all() and torch.isfinite(y).all())
                logger.log(
                    logging.WARNING if skipped == 1 else logging.DEBUG,  # the count at epoch end
                    "epoch %d batch %d: non-finite loss or gradient (loss %s), skipped",
                    epoch + 1,
                    i,
                    loss.item(),
                )
                optimizer.zero_grad(set_to_none=True)
                if skipped > config.max_skipped * len(loader):
                    raise NonFiniteTrainingError(
                        _nonfinite_message(
                            epoch + 1,
                            skipped,
                            len(loader),
                            bad_data,
                            steps_total,
                            config,
                            summary_config,
                        )
                    )
                continue
            optimizer.step()
            scheduler.step()
            done += 1
            steps_total += 1
            for key, value in {"loss": loss.item(), **parts}.items():
                totals[key] = totals.get(key, 0.0) + value
            bar.set_postfix(loss=f"{totals['loss'] / done:.4g}")
        totals, done = _sum_over_ranks(totals, done)
        skipped_total += skipped
        if skipped and distributed.is_main():
            logger.warning(
                "epoch %d: %d of %d batches skipped (non-finite loss or gradient)",
                epoch + 1,
                skipped,
                len(loader),
            )
        record = {"epoch": float(epoch + 1), "lr": optimizer.param_groups[0]["lr"]}
        record.update({f"train_{k}": v / max(done, 1) for k, v in totals.items()})
        record["skipped"] = float(skipped)
        if val_loader is not None:
            distributed.broadcast_buffers(model)  # validate and save rank 0's running statistics
            record.update(_validate(objective, val_loader, device))
        record["seconds"] = time.perf_counter() - tic
        metric = record.get("val_vrmse", record.get("train_loss", math.inf))
        if not math.isfinite(metric):
            logger.warning("epoch %d: non-finite selection metric %s", epoch + 1, metric)
        improved = metric < best
        if improved:
            best, best_epoch = metric, epoch + 1
        history.append(record)
        if distributed.is_main():
            logger.info(
                "epoch %d/%d: %s",
                epoch + 1,
                config.epochs,
                ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"),
            )
        if ckpt_dir is not None:
            rank_states = distributed.all_gather_objects(torch.get_rng_state())
            payload = {
                "model": model_state(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "best": best,
                "best_epoch": best_epoch,
                "skipped": skipped_total,
                "steps": steps_total,
                "rng_torch": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "rng_shuffle": shuffle_rng.get_state(),
                "config": summary_config,
            }
            if world > 1:
                payload["rng_torch_ranks"] = rank_states
            summary = {"config": summary_config, "epoch": epoch + 1, "record": record}
            written = {"last": (payload, summary)}
            if improved:
                written["best"] = (payload, summary)
            # The first commit of a run that did not resume replaces whatever the folder held.
            fresh = state is None and epoch == start_epoch
            if distributed.is_main():
                commit_checkpoints(ckpt_dir, epoch + 1, written, fresh=fresh)
            distributed.barrier()  # no rank runs ahead of a set that is not yet committed
        if callback is not None:
            callback(record)
    if best_epoch == 0:
        raise NonFiniteTrainingError(
            f"no epoch of {config.epochs} gave a finite "
            f"{'validation VRMSE' if val_data is not None else 'training loss'}: "
            "check the data for NaN or infinite values and lower the learning rate "
            f"(lr={config.lr:g})"
        )
    return TrainResult(history, best, best_epoch, skipped_total, ckpt_dir)


#: Training settings a resumed run may change: where and how fast it runs, how it reports.
_RESUMABLE = ("device", "progress", "compile", "num_workers")


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested configs differ.

    The ``train.`` settings of :data:`_RESUMABLE` are not compared, nor settings the
    saved config lacks (added to irsolve after the checkpoint was written).
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            name = f"{prefix}{key}"
            if (prefix == "train." and key in _RESUMABLE) or key not in saved:
                continue
            out += _differences(saved.get(key), current.get(key), name + ".")
        return out
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)):
        saved, current = list(saved), list(current)
    return [] if saved == current else [f"{prefix[:-1]} (saved {saved!r}, now {current!r})"]


def _resume_state(
    ckpt_dir: Path | None,
    resume: bool,
    overwrite: bool,
    summary_config: dict[str, Any],
    device: torch.device,
) -> dict[str, Any] | None:
    """The ``last.pt`` state to resume from, after recovering the folder's last committed set."""
    if ckpt_dir is None:
        return None
    last = ckpt_dir / "last.pt"
    if resume and overwrite:
        raise ValueError("expected at most one of resume and overwrite, got both")
    if not resume:
        if not overwrite and (read_manifest(ckpt_dir) is not None or last.exists()):
            raise CheckpointError(
                f"checkpoint folder {ckpt_dir} already holds a run; resume it (resume=True, "
                "CLI --resume), replace it (overwrite=True, CLI --overwrite) or choose another "
                "folder"
            )
        return None
    # Rank 0 repairs an interrupted commit; the others read the folder once it has.
    manifest = recover_checkpoints(ckpt_dir) if distributed.is_main() else None
    distributed.barrier()
    if not distributed.is_main():
        manifest = read_manifest(ckpt_dir)
    if manifest is None:
        if not last.is_file():
            logger.info("nothing to resume in %s: training from the start", ckpt_dir)
            return None
        logger.warning("%s has no %s: resuming from %s unchecked", ckpt_dir, MANIFEST, last)
    state = load_checkpoint(last, map_location=device)
    changed = _differences(state.get("config"), summary_config)
    if changed:
        raise CheckpointError(
            f"cannot resume {last} with other settings than its run's: {'; '.join(changed)}; "
            "resume with the same settings or train into another folder"
        )
    return state


def _nonfinite_message(
    epoch: int,
    skipped: int,
    batches: int,
    bad_data: int,
    steps: int,
    config: TrainConfig,
    summary_config: dict[str, Any],
) -> str:
    """The error of a run stopped for non-finite batches, naming the likely cause."""
    alpha = summary_config.get("refiner", {}).get("alpha")
    settings = "the objective's settings" + ("" if alpha is None else f" (alpha={alpha:g})")
    if bad_data:
        cause = (
            f"the training data holds NaN or infinite values ({bad_data} of the skipped "
            "batches); clean or regenerate the data"
        )
    elif steps == 0:
        cause = f"the loss is not finite before any update; check {settings}"
    else:
        cause = (
            f"training diverged after {steps} update{'s' * (steps != 1)}; lower the learning rate "
            f"(lr={config.lr:g}) or {settings}"
        )
    return (
        f"epoch {epoch}: {skipped} of {batches} batches had a non-finite loss or gradient, "
        f"more than max_skipped={config.max_skipped:g} of them; likely cause: {cause}"
    )


def train_base(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig | None = None,
    **fit_kwargs: Any,
) -> TrainResult:
    """Train a base operator (FNO/TFNO or any module) on relative L2; see :func:`fit`."""
    return fit(BaseObjective(model), train_data, val_data, config or TrainConfig(), **fit_kwargs)


def residual_rms(
    base: nn.Module | Callable[[Tensor], Tensor],
    data: Dataset,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> float:
    """Root mean square of the base's error, ``sqrt(mean((y - T(x))^2))`` over ``data``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in _loader(data, batch_size, False, None):
            y = y.to(device)
            total += (y - base(x.to(device)).to(y.dtype)).square().sum().item()
            count += y.numel()
    if count == 0:
        raise ValueError("expected a non-empty dataset, got 0 samples")
    return math.sqrt(total / count)


def train_refiner(
    base: nn.Module | Callable[[Tensor], Tensor],
    net: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig | None = None,
    refiner_config: RefinerConfig | None = None,
    **fit_kwargs: Any,
) -> TrainResult:
    """Train the refinement network ``net`` on a frozen ``base`` (Algorithm 1); see :func:`fit`.

    With ``refiner_config.calibrate_scale`` (the default) the net's
    ``output_scale`` is first set to :func:`residual_rms` of the base on
    ``train_data`` (a resumed run then restores the checkpoint's value).
    """
    config = config or TrainConfig()
    objective = RefinerObjective(base, net, refiner_config or RefinerConfig())
    scale = getattr(net, "output_scale", None)
    if objective.settings.calibrate_scale and isinstance(scale, Tensor):
        device = distributed.resolve_device(config.device)
        objective.to(device)
        rms = residual_rms(base, train_data, config.batch_size, device)
        if math.isfinite(rms) and rms > 0:
            scale.fill_(rms)
            logger.info("output_scale of the refinement net set to the base's RMS error %.4g", rms)
        else:
            logger.warning("base RMS error is %s: output_scale left at %s", rms, scale.item())
    return fit(objective, train_data, val_data, config, **fit_kwargs)


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the model weights of a training checkpoint into ``model`` (checked key by key)."""
    load_model_state(model, load_checkpoint(path)["model"], source=str(path))
    return model
