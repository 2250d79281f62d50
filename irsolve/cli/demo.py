"""``irsolve demo``: the command-line face of :mod:`irsolve.demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from irsolve.cli.flags import add_flags

__all__ = ["add_subcommands"]

DESCRIPTION = (
    "Run irsolve's three claims offline on data it makes itself and write one report: "
    "(1) Navier-Stokes: an FNO base, the IRNO refiner on top and the same U-Net applied "
    "once, evaluated to 2K steps, with a spectral and contraction analysis; (2) Darcy: "
    "Jacobi, the learned residual corrector with Jacobi, Jacobi-PCG, flexible CG "
    "preconditioned by the corrector, and multigrid, each checked against a direct "
    "solve; (3) multigrid against PyAMG. Trained nets and data are cached, so a second "
    "run trains nothing."
)


def _run(args: argparse.Namespace) -> int:
    from irsolve.demo import run_demo, summary_table

    progress = args.progress and sys.stderr.isatty()
    result = run_demo(
        args.out, quick=args.quick, cache_dir=args.cache, threads=args.threads, progress=progress
    )
    print(summary_table(result["summary"]))
    built = ", ".join(result["built"]) or "nothing (cache hit)"
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in result["part_wall_s"].items())
    load = ", ".join(f"{v:.1f}" for v in result["load_average"])
    print(f"\n{result['wall_s']:.0f} s ({parts}); load average {load}")
    print(f"trained or simulated: {built}")
    print(f"cache: {result['cache']}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``irsolve demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="NS refiner, Darcy hybrid and multigrid-vs-PyAMG on self-made data, one report",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (about 3.5 minutes on one idle core)"
    )
    add_flags(parser, "--out", out={"default": Path("runs/demo"), "help": "report folder"})
    parser.add_argument(
        "--cache",
        default=None,
        help="cache root for data and trained nets (default: $IRSOLVE_CACHE/demo or "
        "~/.cache/irsolve/demo)",
    )
    add_flags(parser, "--threads", threads={"default": 1})
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars (they are off anyway when the output is not a terminal)",
    )
    parser.set_defaults(handler=_run)
