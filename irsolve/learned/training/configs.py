"""Training settings: :class:`TrainConfig` (optimisation) and :class:`RefinerConfig`
(Algorithm 1 and its stability levers), and the :class:`Refiner` a config describes."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from torch import nn

from irsolve import distributed
from irsolve._validate import check_int, check_real
from irsolve.learned.settings import check_settings, setting
from irsolve.solvers.refiner import GeometricAlpha, Refiner

__all__ = ["RefinerConfig", "StepWeights", "TrainConfig", "make_refiner"]


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
        :class:`~irsolve.learned.nets.RefinementUNet` does) to the base's error
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
