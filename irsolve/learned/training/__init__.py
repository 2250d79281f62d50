"""Training of base operators, learned refiners and learned correctors: one loop, three objectives.

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
  and ``mean_k`` may weight later steps more (``step_weights="linear"``);
- :class:`~irsolve.learned.corrector_training.CorrectorObjective` (used by
  ``irsolve train-corrector``): the learned corrector of a problem family,
  trained by running its deployed cycle through the engine (Darcy, Helmholtz).

The package is split by job: :mod:`~irsolve.learned.training.configs` (the
settings), :mod:`~irsolve.learned.training.objectives` (what is optimised),
:mod:`~irsolve.learned.training.trainer` (:func:`fit`, its :class:`TrainingState`,
checkpoints and resume,
:func:`train_base`, :func:`train_refiner`) and
:mod:`~irsolve.learned.training.calibration` (the base's error size); every public
name is importable from ``irsolve.learned.training``.
"""

from .calibration import residual_rms
from .configs import RefinerConfig, StepWeights, TrainConfig, make_refiner
from .objectives import BaseObjective, Objective, RefinerObjective
from .trainer import (
    NonFiniteTrainingError,
    TrainingState,
    TrainResult,
    fit,
    load_weights,
    seed_everything,
    train_base,
    train_refiner,
)

__all__ = [
    "BaseObjective",
    "NonFiniteTrainingError",
    "Objective",
    "RefinerConfig",
    "RefinerObjective",
    "StepWeights",
    "TrainConfig",
    "TrainResult",
    "TrainingState",
    "fit",
    "load_weights",
    "make_refiner",
    "residual_rms",
    "seed_everything",
    "train_base",
    "train_refiner",
]
