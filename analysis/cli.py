"""``irsolve analyze``: the analysis report of a trained refiner on a dataset split.

Registered by listing ``irsolve.analysis.cli`` in
:data:`irsolve.cli.SUBCOMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from irsolve import cli_types
from irsolve.checkpoint import load_checkpoint, load_model_state
from irsolve.data.dataset import HDF5Dataset
from irsolve.nets.factory import build_net
from irsolve.solvers.refiner import Refiner
from irsolve.training import RefinerConfig, make_refiner

from .report import analyze

__all__ = ["add_subcommands"]

logger = logging.getLogger(__name__)


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to the ``irsolve`` command line."""
    parser = subparsers.add_parser(
        "analyze",
        help="error, spectral ratios and contraction certificate of a trained refiner",
        description="Run a trained refiner from its base operator's prediction on a dataset "
        "split and write report.json, report.md and figures (PNG and PDF) to --out.",
    )
    positive = cli_types.integer(1)
    parser.add_argument(
        "--checkpoint", required=True, type=cli_types.existing_path, help="refiner checkpoint (.pt)"
    )
    parser.add_argument(
        "--base-checkpoint",
        required=True,
        type=cli_types.existing_path,
        help="checkpoint of the frozen base operator the refiner was trained on",
    )
    parser.add_argument(
        "--data", required=True, type=cli_types.existing_path, help="dataset folder or .hdf5 file"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--split", choices=("train", "valid", "test"), default="test", help="(default: test)"
    )
    parser.add_argument("--samples", type=positive, default=16, help="samples analysed")
    parser.add_argument(
        "--n-steps-input", type=positive, default=4, help="input frames of time-dependent data"
    )
    parser.add_argument(
        "--steps", type=positive, default=None, help="refinement steps (default: 2 x trained K)"
    )
    parser.add_argument("--bands", type=positive, default=3, help="radial bands up to Nyquist")
    parser.add_argument("--n-probe", type=positive, default=4, help="certificate probe points")
    parser.add_argument("--device", type=cli_types.device, default="cpu", help="torch device")
    parser.set_defaults(handler=run_analyze)


def _load_net(path: Path, device: str, objective: str) -> tuple[nn.Module, dict[str, Any]]:
    payload = load_checkpoint(path, map_location=device)
    config = payload.get("config") or {}
    if config.get("objective") != objective or config.get("model") is None:
        raise ValueError(
            f"expected a {objective} checkpoint (objective {objective!r}, written by irsolve "
            f"training), got objective {config.get('objective')!r} in {path}"
        )
    net = build_net(config["model"])
    load_model_state(net, payload["model"], source=str(path))
    return net.to(device).eval().requires_grad_(False), config


def load_refiner(checkpoint: Path, device: str = "cpu") -> tuple[Refiner, int]:
    """The :class:`Refiner` of a training checkpoint and its trained horizon ``K``."""
    net, config = _load_net(checkpoint, device, "refiner")
    settings = RefinerConfig(**config["refiner"])
    return make_refiner(net, settings), settings.K


def run_analyze(args: argparse.Namespace) -> int:
    """Handler of ``irsolve analyze``; returns the exit status."""
    refiner, trained = load_refiner(args.checkpoint, args.device)
    base, _ = _load_net(args.base_checkpoint, args.device, "base")
    data = HDF5Dataset(args.data, split=args.split, n_steps_input=args.n_steps_input)
    count = min(args.samples, len(data))
    if count < 1:
        raise ValueError(f"expected --samples >= 1 and a non-empty split, got {count} samples")
    items = [data[i] for i in range(count)]
    dtype = next(refiner.net.parameters()).dtype
    x = torch.stack([item[0] for item in items]).to(args.device, dtype)
    y = torch.stack([item[1] for item in items]).to(args.device, dtype)
    report = analyze(
        base,
        refiner,
        x,
        y,
        args.out,
        steps=args.steps,
        trained_steps=trained,
        bands=args.bands,
        n_probe=args.n_probe,
    )
    rfne = report["metrics"]["rfne"]["median"]
    print(
        f"RFNE (median) base {rfne[0]:.4g} -> step {min(trained, report['steps'])} "
        f"{rfne[min(trained, report['steps'])]:.4g} -> step {report['steps']} {rfne[-1]:.4g}; "
        f"certificate holds for {report['certificate']['holds']}/{report['samples']}; "
        f"report in {args.out}"
    )
    return 0
