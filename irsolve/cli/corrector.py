"""``irsolve train-corrector``: train a :class:`~irsolve.solvers.ResidualCorrector` on Darcy.

The data are generated: FNO Darcy coefficients (12/3, ``f = 1``) at
``--resolution`` points per side with multigrid solutions (see
:func:`irsolve.learned.corrector_training.darcy_pairs`), or read: ``--data
FILE`` takes the coefficient fields of a Darcy data file in any layout
:func:`irsolve.data.load_dataset` reads (all its samples, at its resolution),
validated on ``--val-data FILE`` or a seeded ``--val-fraction`` of it. The optimisation flags are
those of ``irsolve train`` (the fields of :class:`~irsolve.learned.training.TrainConfig`,
with a learning rate of 1e-3), the corrector's the fields of
:class:`~irsolve.learned.corrector_training.CorrectorConfig`. ``--resume``
continues an interrupted run from ``OUT/last.pt`` (not with ``--chains``: the
chain pool is not checkpointed); ``--init CHECKPOINT``
starts a new run from trained weights (the net's flags must match that
checkpoint's architecture). ``--problem helmholtz`` trains the learned
Helmholtz preconditioner instead (generated media, the flags of the helmholtz
group; see :mod:`irsolve.cli.helmholtz_corrector`).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
from torch.utils.data import TensorDataset

from irsolve.cli import plain_text
from irsolve.cli.data_flags import add_data_arguments, check_one_validation_source
from irsolve.cli.flags import (
    add_flags,
    add_run_flags,
    add_settings_arguments,
    run_options,
    settings_from_args,
)
from irsolve.cli.helmholtz_corrector import add_helmholtz_arguments, run_helmholtz
from irsolve.cli.types import existing_path, integer
from irsolve.data.darcy_files import darcy_coefficients
from irsolve.data.formats import split_indices
from irsolve.learned.corrector_training import (
    CorrectorConfig,
    CorrectorObjective,
    corrector_net,
    darcy_pairs,
    solved_pairs,
)
from irsolve.learned.training import TrainConfig, fit, load_weights, seed_everything

__all__ = ["add_subcommands"]

logger = logging.getLogger(__name__)


def _generated_pairs(args: argparse.Namespace) -> tuple[TensorDataset, TensorDataset | None]:
    train = darcy_pairs(args.train_samples, args.resolution, seed=args.seed)
    if args.no_validation:
        return train, None
    return train, darcy_pairs(args.val_samples, args.resolution, seed=args.seed + 1)


def _file_pairs(args: argparse.Namespace) -> tuple[TensorDataset, TensorDataset | None]:
    """Training (and validation) pairs from the coefficient fields of ``--data``."""
    check_one_validation_source(args)
    a = darcy_coefficients(args.data, format=args.format, split="train")
    val_a = None
    if args.val_data is not None:
        val_a = darcy_coefficients(args.val_data, format=args.format, split="valid")
    elif args.val_fraction is not None:
        train_index, val_index = split_indices(
            np.arange(len(a)), args.val_fraction, args.split_seed
        )
        a, val_a = a[train_index], a[val_index]
    elif not args.no_validation:
        logger.warning(
            "no validation: give --val-data or --val-fraction (best.pt follows the loss)"
        )
    val = None if val_a is None or args.no_validation else solved_pairs(val_a)
    return solved_pairs(a), val


def _run(args: argparse.Namespace) -> int:
    if args.problem == "helmholtz":
        return run_helmholtz(args)
    options = run_options(args)
    train_config = settings_from_args(TrainConfig, args)
    config = settings_from_args(CorrectorConfig, args)
    if args.resume and config.chains > 0:
        raise ValueError(
            f"expected --chains 0 with --resume, got --chains {config.chains}: the chain pool "
            "is not in the checkpoint, so a resumed run would train on other errors than an "
            "uninterrupted one; restart with --overwrite"
        )
    train, val = _file_pairs(args) if args.data else _generated_pairs(args)
    seed_everything(args.seed)  # before the net is built: --seed fixes its initial weights
    net = corrector_net(args.modes, args.hidden, args.layers)
    if args.init:
        load_weights(net, args.init)
    objective = CorrectorObjective(net, config)
    result = fit(
        objective,
        train,
        val,
        train_config,
        **options,
    )
    print("epoch   train_factor   val_cycle_factor")
    for record in result.history:
        val_factor = record.get("val_cycle_factor", float("nan"))
        print(f"{int(record['epoch']):5d} {record['train_factor']:14.4f} {val_factor:18.4f}")
    print(f"best checkpoint: {args.out}/best.pt (epoch {result.best_epoch})")
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-corrector``."""
    p = subparsers.add_parser(
        "train-corrector",
        help="train the closed-loop learned corrector on Darcy (FNO coefficients)",
        description=plain_text(__doc__),
    )
    add_run_flags(p)
    add_flags(p, "--data", data={"help": "a Darcy data file: train on its coefficient fields"})
    add_data_arguments(p, evaluation=False)
    add_flags(p, "--resolution", resolution={"default": 64, "help": "grid points per side"})
    p.add_argument(
        "--train-samples", type=integer(1), default=256, help="training problems (default: 256)"
    )
    p.add_argument(
        "--val-samples", type=integer(1), default=16, help="validation problems (default: 16)"
    )
    add_settings_arguments(p.add_argument_group("optimisation"), TrainConfig, defaults={"lr": 1e-3})
    p.add_argument(
        "--init",
        type=existing_path,
        default=None,
        help="start a new run from this checkpoint's weights (fine-tune)",
    )
    add_flags(p, "--modes", "--hidden", "--layers")
    add_settings_arguments(p.add_argument_group("corrector"), CorrectorConfig)
    add_helmholtz_arguments(p)
    p.set_defaults(handler=_run)
