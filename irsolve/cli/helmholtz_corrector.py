"""``irsolve train-corrector --problem helmholtz``: train the learned Helmholtz preconditioner.

``--train-samples`` media at ``--resolution``
(:func:`irsolve.learned.helmholtz_training.mixed_speed`, seed ``--seed``;
validation: ``--val-samples`` media of seed ``--seed + 1``),
each solved once by FGMRES with the shifted-Laplacian multigrid
preconditioner; the vectors that preconditioner was applied to are the
training inputs (:func:`irsolve.learned.helmholtz_training.krylov_vectors`).
The net is a U-Net (``--unet-base`` channels, ``--unet-depth`` levels); the
loss is the residual factor the learned step adds to the SL cycle
(:class:`irsolve.learned.helmholtz_training.HelmholtzObjective`). The
optimisation and run flags are those of the Darcy corrector; its
Darcy-only flags (``--data``, the corrector group) are not used.
"""

from __future__ import annotations

import argparse

import torch

from irsolve.cli.flags import add_settings_arguments, run_options, settings_from_args
from irsolve.cli.types import integer
from irsolve.learned.helmholtz_training import (
    HelmholtzObjective,
    HelmholtzTrainingConfig,
    helmholtz_corrector_net,
    krylov_vectors,
    mixed_speed,
)
from irsolve.learned.training import TrainConfig, fit, load_weights, seed_everything

__all__ = ["add_helmholtz_arguments", "run_helmholtz"]


def add_helmholtz_arguments(parser: argparse.ArgumentParser) -> None:
    """``--problem`` and the flags of the Helmholtz run (a group of their own)."""
    parser.add_argument(
        "--problem",
        choices=("darcy", "helmholtz"),
        default="darcy",
        help="darcy (default): the Darcy corrector; helmholtz: the learned Helmholtz "
        "preconditioner (SL multigrid cycle, then a learned step)",
    )
    group = parser.add_argument_group("helmholtz (with --problem helmholtz)")
    group.add_argument("--unet-base", type=integer(1), default=8, help="U-Net base channels")
    group.add_argument("--unet-depth", type=integer(1), default=3, help="U-Net levels")
    add_settings_arguments(group, HelmholtzTrainingConfig)


def run_helmholtz(args: argparse.Namespace) -> int:
    """Train and print the per-epoch factors; the checkpoints go to ``--out``."""
    if args.data is not None:
        raise ValueError("expected no --data with --problem helmholtz (its media are generated)")
    options = run_options(args)
    train_config = settings_from_args(TrainConfig, args)
    config = settings_from_args(HelmholtzTrainingConfig, args)
    n = args.resolution
    train_speed = mixed_speed(args.train_samples, n, torch.Generator().manual_seed(args.seed))
    train = krylov_vectors(train_speed, config, seed=args.seed)
    val = None
    if not args.no_validation:
        val_generator = torch.Generator().manual_seed(args.seed + 1)
        val = krylov_vectors(mixed_speed(args.val_samples, n, val_generator), config, args.seed + 1)
    seed_everything(args.seed)  # before the net is built: --seed fixes its initial weights
    net = helmholtz_corrector_net(args.unet_base, args.unet_depth)
    if args.init:
        load_weights(net, args.init)
    result = fit(HelmholtzObjective(net, config), train, val, train_config, **options)
    print(f"{len(train)} training vectors from {args.train_samples} media at {n}^2")
    print("epoch   train_factor   val_factor")
    for record in result.history:
        val_factor = record.get("val_factor", float("nan"))
        print(f"{int(record['epoch']):5d} {record['train_factor']:14.4f} {val_factor:12.4f}")
    print(f"best checkpoint: {args.out}/best.pt (epoch {result.best_epoch})")
    return 0
