"""The ``irsolve`` command line.

Each feature module that offers subcommands exposes
``add_subcommands(subparsers)``; it is listed in :data:`SUBCOMMAND_MODULES`
and imported only when the CLI starts, so ``import irsolve`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from irsolve import __version__

#: Modules that register subcommands, in the order they appear in ``--help``.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "irsolve.data.cli",
    "irsolve.train_cli",
    "irsolve.analysis.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="irsolve",
        description="Fixed-point solvers where learned refinement steps (IRNO) "
        "and classical ones (Jacobi, Gauss-Seidel, multigrid) mix in one solve.",
    )
    parser.add_argument("--version", action="version", version=f"irsolve {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_subcommands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``irsolve`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
