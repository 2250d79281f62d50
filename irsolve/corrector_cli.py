"""``irsolve train-corrector``: train a :class:`~irsolve.solvers.ResidualCorrector` on Darcy.

The data are generated, not read: FNO Darcy coefficients (12/3, ``f = 1``)
at ``--n`` points per side with multigrid solutions (see
:func:`irsolve.corrector_training.darcy_pairs`). Optimisation flags carry the
names of ``irsolve train``'s; ``--resume`` continues an interrupted run from
``OUT/last.pt``; ``--init CHECKPOINT`` starts a new run from trained weights
(the net's flags must match that checkpoint's architecture).
"""

from __future__ import annotations

import argparse
from typing import get_args

from irsolve.corrector_training import (
    CorrectorConfig,
    CorrectorObjective,
    Smoother,
    corrector_net,
    darcy_pairs,
)
from irsolve.training import TrainConfig, fit, load_weights

__all__ = ["add_subcommands"]


def _run(args: argparse.Namespace) -> int:
    train = darcy_pairs(args.train_samples, args.n, seed=args.seed)
    val = None if args.no_validation else darcy_pairs(args.val_samples, args.n, seed=args.seed + 1)
    config = CorrectorConfig(
        nu=args.nu,
        smoother=args.smoother,
        omega=args.omega,
        max_cycles=args.max_cycles,
        smooth_fraction=args.smooth_fraction,
        supervised=args.supervised,
        val_cycles=args.val_cycles,
        chains=args.chains,
        reset=args.reset,
    )
    net = corrector_net(args.modes, args.hidden, args.layers)
    if args.init:
        load_weights(net, args.init)
    objective = CorrectorObjective(net, config)
    train_config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        lr_min=args.lr_min,
        clip=args.clip,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    result = fit(
        objective,
        train,
        val,
        train_config,
        checkpoint_dir=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    print("epoch   train_factor   val_cycle_factor")
    for record in result.history:
        val_factor = record.get("val_cycle_factor", float("nan"))
        print(f"{int(record['epoch']):5d} {record['train_factor']:14.4f} {val_factor:18.4f}")
    print(f"best checkpoint: {args.out}/best.pt (epoch {result.best_epoch})")
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-corrector``."""
    defaults, corrector = TrainConfig(), CorrectorConfig()
    p = subparsers.add_parser(
        "train-corrector",
        help="train the closed-loop learned corrector on Darcy (FNO coefficients)",
        description=__doc__,
    )
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument("--n", type=int, default=64, help="grid points per side (even)")
    p.add_argument("--train-samples", type=int, default=256)
    p.add_argument("--val-samples", type=int, default=16)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--lr-min", type=float, default=defaults.lr_min)
    p.add_argument("--clip", type=float, default=defaults.clip)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace the run in OUT, if any")
    p.add_argument(
        "--init", default=None, help="start a new run from this checkpoint's weights (fine-tune)"
    )
    p.add_argument("--no-validation", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--modes", type=int, default=16, help="FNO Fourier modes per dimension")
    p.add_argument("--hidden", type=int, default=32, help="FNO width")
    p.add_argument("--layers", type=int, default=4, help="FNO layers")
    p.add_argument("--nu", type=int, default=corrector.nu, help="smoothing sweeps per cycle")
    p.add_argument("--smoother", choices=get_args(Smoother), default=corrector.smoother)
    p.add_argument(
        "--omega", type=float, default=None, help="smoother weight (Jacobi 0.8, Gauss-Seidel 1)"
    )
    p.add_argument(
        "--max-cycles", type=int, default=corrector.max_cycles, help="hybrid cycles before errors"
    )
    p.add_argument(
        "--smooth-fraction",
        type=float,
        default=corrector.smooth_fraction,
        help="share of smooth random errors",
    )
    p.add_argument(
        "--supervised", type=float, default=corrector.supervised, help="HINTS supervised weight"
    )
    p.add_argument("--val-cycles", type=int, default=corrector.val_cycles)
    p.add_argument(
        "--chains", type=int, default=corrector.chains, help="persistent error chains (0: off)"
    )
    p.add_argument("--reset", type=float, default=corrector.reset, help="chain reset probability")
    p.set_defaults(handler=_run)
