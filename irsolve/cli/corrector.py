"""``irsolve train-corrector darcy|helmholtz``: train a learned corrector of one problem family.

Each family trains through the very cycle it is deployed in
(:class:`~irsolve.learned.corrector_training.CorrectorObjective`) and shows
only its own flags; a flag of the other family is a one-line error.

``darcy``: the closed-loop corrector of ``-div(a grad u) = 1`` (a neuralop
FNO, then ``--nu`` smoothing sweeps). The data are generated: FNO Darcy
coefficients (12/3) at ``--resolution`` points per side with multigrid
solutions (:func:`irsolve.learned.darcy_corrector.darcy_pairs`), or read:
``--data FILE`` takes the coefficient fields of a Darcy data file in any
layout :func:`irsolve.data.load_dataset` reads (all its samples, at its
resolution), validated on ``--val-data FILE`` or a seeded ``--val-fraction``
of it.

``helmholtz``: the learned preconditioner of FGMRES (the shifted-Laplacian
multigrid cycle, then a learned step, ``--repeats`` times; a U-Net of
``--unet-base`` channels and ``--unet-depth`` levels), trained on the vectors
FGMRES(SL multigrid) preconditions on ``--train-samples`` generated media
(:func:`irsolve.learned.helmholtz_corrector.mixed_speed`, seed ``--seed``;
validation: ``--val-samples`` media of seed ``--seed + 1``).

The optimisation flags are those of ``irsolve train`` (the fields of
:class:`~irsolve.learned.training.TrainConfig`, with a learning rate of
1e-3). ``--resume`` continues an interrupted run from ``OUT/last.pt``;
``--init CHECKPOINT`` starts a new run from trained weights (the net's flags
must match that checkpoint's architecture).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np
from torch import nn
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
from irsolve.cli.types import existing_path, integer
from irsolve.data.darcy_files import darcy_coefficients
from irsolve.data.formats import split_indices
from irsolve.learned.corrector_training import CorrectorFamily, CorrectorObjective
from irsolve.learned.darcy_corrector import corrector_net, solved_pairs
from irsolve.learned.helmholtz_corrector import helmholtz_corrector_net
from irsolve.learned.trained import CORRECTOR_FAMILIES
from irsolve.learned.training import TrainConfig, fit, load_weights, seed_everything

__all__ = ["add_subcommands"]

logger = logging.getLogger(__name__)


def _darcy_arguments(parser: argparse.ArgumentParser) -> None:
    """Darcy's own flags: a data file and the FNO."""
    add_flags(parser, "--data", data={"help": "a Darcy data file: train on its coefficient fields"})
    add_data_arguments(parser, evaluation=False)
    add_flags(parser, "--modes", "--hidden", "--layers")


def _helmholtz_arguments(parser: argparse.ArgumentParser) -> None:
    """Helmholtz's own flags: the U-Net."""
    group = parser.add_argument_group("U-Net")
    group.add_argument("--unet-base", type=integer(1), default=8, help="U-Net base channels")
    group.add_argument("--unet-depth", type=integer(1), default=3, help="U-Net levels")


def _darcy_net(args: argparse.Namespace) -> nn.Module:
    return corrector_net(args.modes, args.hidden, args.layers)


def _helmholtz_net(args: argparse.Namespace) -> nn.Module:
    return helmholtz_corrector_net(args.unet_base, args.unet_depth, dims=args.dim)


def _file_pairs(args: argparse.Namespace) -> tuple[TensorDataset, TensorDataset | None]:
    """Darcy training (and validation) pairs from the coefficient fields of ``--data``."""
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


#: Per family: its flags, its net from them, (train, validation) samples by default.
_FAMILY_CLI: dict[str, dict[str, Any]] = {
    "darcy": {
        "arguments": _darcy_arguments,
        "net": _darcy_net,
        "samples": (256, 16),
        "help": "the closed-loop Darcy corrector (FNO, then smoothing sweeps)",
    },
    "helmholtz": {
        "arguments": _helmholtz_arguments,
        "net": _helmholtz_net,
        "samples": (64, 8),
        "help": "the learned Helmholtz preconditioner (SL multigrid cycle, then a learned step)",
    },
}


def _data(
    family: CorrectorFamily, config: Any, args: argparse.Namespace
) -> tuple[TensorDataset, TensorDataset | None]:
    """Training and validation data: a Darcy ``--data`` file, else generated."""
    if getattr(args, "data", None) is not None:
        return _file_pairs(args)
    train = family.generate(args.train_samples, args.resolution, args.seed, config)
    if args.no_validation:
        return train, None
    return train, family.generate(args.val_samples, args.resolution, args.seed + 1, config)


def _run(args: argparse.Namespace) -> int:
    family = CORRECTOR_FAMILIES[args.family]
    options = run_options(args)
    train_config = settings_from_args(TrainConfig, args)
    config = settings_from_args(family.config_type, args)
    # The net (and --init) before the data: a net too large or a bad checkpoint is refused
    # before minutes of data generation. --seed fixes its initial weights.
    seed_everything(args.seed)
    net = _FAMILY_CLI[family.name]["net"](args)
    if args.init:
        load_weights(net, args.init)
    train, val = _data(family, config, args)
    result = fit(CorrectorObjective(family, net, config), train, val, train_config, **options)
    metric = f"val_{family.selection_metric}"
    grid = f"{args.resolution}^{getattr(config, 'dim', 2)}"
    print(f"{len(train)} training samples at {grid} ({family.name})")
    print(f"epoch   train_factor   {metric}")
    for record in result.history:
        value = record.get(metric, float("nan"))
        print(f"{int(record['epoch']):5d} {record['train_factor']:14.4f} {value:{len(metric)}.4f}")
    print(f"best checkpoint: {args.out}/best.pt (epoch {result.best_epoch})")
    return 0


class _ForeignFlag(argparse.Action):
    """A hidden flag of another family: using it is a one-line error naming that family."""

    def __init__(self, option_strings: list[str], dest: str, owner: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS, **kwargs)
        self.owner = owner

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(
            f"{option_string} is a flag of 'irsolve train-corrector {self.owner}', "
            f"not of '{parser.prog}'"
        )


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-corrector`` and its families."""
    p = subparsers.add_parser(
        "train-corrector",
        help="train a learned corrector: darcy (hybrid cycle) or helmholtz (FGMRES preconditioner)",
        description=plain_text(__doc__),
    )
    families = p.add_subparsers(dest="family", metavar="FAMILY", required=True)
    parsers = {}
    for name, family in CORRECTOR_FAMILIES.items():
        cli = _FAMILY_CLI[name]
        q = families.add_parser(name, help=cli["help"], description=plain_text(__doc__))
        add_run_flags(q)
        add_flags(q, "--resolution", resolution={"default": 64, "help": "grid points per side"})
        train_samples, val_samples = cli["samples"]
        q.add_argument(
            "--train-samples",
            type=integer(1),
            default=train_samples,
            help=f"training problems (default: {train_samples})",
        )
        q.add_argument(
            "--val-samples",
            type=integer(1),
            default=val_samples,
            help=f"validation problems (default: {val_samples})",
        )
        add_settings_arguments(
            q.add_argument_group("optimisation"), TrainConfig, defaults={"lr": 1e-3}
        )
        q.add_argument(
            "--init",
            type=existing_path,
            default=None,
            help="start a new run from this checkpoint's weights (fine-tune)",
        )
        cli["arguments"](q)
        add_settings_arguments(q.add_argument_group(name), family.config_type)
        q.set_defaults(handler=_run)
        parsers[name] = q
    flags = {name: _flags(q) for name, q in parsers.items()}
    for name, q in parsers.items():
        for other in parsers:
            for flag in sorted(flags[other] - flags[name]) if other != name else ():
                q.add_argument(flag, action=_ForeignFlag, owner=other, dest=argparse.SUPPRESS)
