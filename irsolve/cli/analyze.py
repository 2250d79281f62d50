"""``irsolve analyze``: the analysis report of a trained refiner on a dataset split.

Registered by listing ``irsolve.cli.analyze`` in
:data:`irsolve.cli.SUBCOMMAND_MODULES`. The flags are the command line's
shared vocabulary (:mod:`irsolve.cli.flags`). A report already in ``--out`` is replaced only with
``--overwrite``, as a training run is (an analysis has nothing to resume: it
is recomputed whole).
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from irsolve.analysis.report import analyze
from irsolve.cli.data_flags import add_data_arguments, load_split
from irsolve.cli.flags import add_flags, add_settings_arguments, require
from irsolve.cli.types import integer
from irsolve.distributed import resolve_device
from irsolve.learned.trained import load_net, load_refiner
from irsolve.learned.training import TrainConfig
from irsolve.out_folder import check_replaceable_outputs

__all__ = ["add_subcommands"]

logger = logging.getLogger(__name__)

#: The files of a report that ``--overwrite`` must allow replacing.
REPORT_FILES = ("report.json", "report.md")

#: ``--samples`` when not given: at most this many (a smaller split is analysed whole).
DEFAULT_SAMPLES = 16


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to the ``irsolve`` command line."""
    parser = subparsers.add_parser(
        "analyze",
        help="error, spectral ratios and contraction certificate of a trained refiner",
        description="Run a trained refiner from its base operator's prediction on a dataset "
        "split and write report.json, report.md and figures (PNG and PDF) to --out.",
    )
    add_flags(parser, "--threads", threads={"default": 1})
    add_flags(
        parser,
        "--data",
        "--split",
        "--n-steps-input",
        "--base",
        "--refiner",
        "--out",
        "--samples",
        "--steps",
        data={"help": "data file or dataset folder (required)"},
        base={"help": "base operator checkpoint the refiner was trained on (required)"},
        refiner={"help": "refiner checkpoint (irsolve train; required)"},
        out={"help": "report folder (required)"},
        samples={"default": DEFAULT_SAMPLES, "help": "samples analysed (at most)"},
    )
    add_data_arguments(parser, evaluation=True)
    parser.add_argument(
        "--bands", type=integer(1), default=3, help="radial bands up to Nyquist (default: 3)"
    )
    parser.add_argument("--n-probe", type=integer(1), default=4, help="certificate probe points")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a report already in --out"
    )
    add_settings_arguments(parser, TrainConfig, only=("device",))
    parser.set_defaults(handler=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    """Handler of ``irsolve analyze``; returns the exit status."""
    require(args, "data", "base", "refiner", "out")
    check_replaceable_outputs(args.out, REPORT_FILES, overwrite=args.overwrite)
    args.device = resolve_device(args.device)
    refiner, settings = load_refiner(args.refiner, flag="--refiner", device=args.device)
    base, _ = load_net(args.base, "base", flag="--base", device=args.device)
    data = load_split(args, args.split)
    count = min(args.samples, len(data))
    if count < 1:
        raise ValueError(f"expected a non-empty --split {args.split} of {args.data}, got none")
    if count < args.samples != DEFAULT_SAMPLES:  # asked for more than the split holds
        logger.warning(
            "--samples %d is more than the %d sample(s) of --split %s of %s: analysing %d",
            args.samples,
            count,
            args.split,
            args.data,
            count,
        )
    items = [data[i] for i in range(count)]
    dtype = next(refiner.net.parameters()).dtype
    x = torch.stack([item[0] for item in items]).to(args.device, dtype)
    y = torch.stack([item[1] for item in items]).to(args.device, dtype)
    trained = settings.K
    report = analyze(
        base,
        refiner,
        x,
        y,
        args.out,
        steps=args.steps,
        K=trained,
        bands=args.bands,
        n_probe=args.n_probe,
        progress=sys.stderr.isatty(),
    )
    rfne = report["metrics"]["rfne"]["median"]
    print(
        f"RFNE (median) base {rfne[0]:.4g} -> step {min(trained, report['steps'])} "
        f"{rfne[min(trained, report['steps'])]:.4g} -> step {report['steps']} {rfne[-1]:.4g}; "
        f"certificate holds for {report['certificate']['holds']}/{report['samples']}; "
        f"report in {args.out}"
    )
    return 0
