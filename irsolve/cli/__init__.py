"""The ``irsolve`` command line.

Each feature module that offers subcommands exposes
``add_subcommands(subparsers)``; it is listed in :data:`SUBCOMMAND_MODULES`
and imported only when the CLI starts, so ``import irsolve`` stays light.

A flag means one thing in every subcommand: the shared ones (``--data``,
``--split``, ``--base``, ``--refiner``, ``--corrector``, ``--out``,
``--json``...) are defined once in :mod:`irsolve.cli.flags`, and training
settings are generated from their dataclasses. ``irsolve solve`` runs a
classical or hybrid solve.

Exit codes: 0 success; 2 a usage mistake (a bad flag, a missing or damaged
file, settings a resumed run does not share), printed as one line
``irsolve COMMAND: error: ...``; 1 a run that failed (training stopped on
non-finite losses); 130 after Ctrl-C (one line ``irsolve COMMAND: interrupted``).
``--debug`` re-raises instead, with the traceback. A command with ``--out``
holds that folder's lock while it runs (:mod:`irsolve.out_folder`): a second
command writing there refuses in one line.

Every command also runs under ``torchrun --nproc_per_node=N -m irsolve.cli
...``: it then joins the process group (:func:`irsolve.distributed.session`)
and only rank 0 prints.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import re
import sys
from typing import NoReturn

from irsolve import __version__

#: Modules that register subcommands, in the order they appear in ``--help``.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "irsolve.cli.data",
    "irsolve.cli.train",
    "irsolve.cli.corrector",
    "irsolve.cli.analyze",
    "irsolve.cli.solve",
    "irsolve.cli.demo",
)

#: Each command's one-line help, in ``--help`` order: ``irsolve``, ``irsolve --help`` and
#: ``irsolve --version`` list them without importing the modules above (and torch), so
#: they answer at once. tests/cli/test_cli_startup.py checks them against the modules.
COMMAND_HELP: dict[str, str] = {
    "data": "generate or inspect datasets (The Well's layout)",
    "train-base": "train an FNO/TFNO base operator",
    "train": "train the refiner on a frozen base (IRNO)",
    "evaluate": "per-step metrics of base + refiner to 2K",
    "train-corrector": "train a learned corrector: darcy (hybrid cycle) or helmholtz (FGMRES "
    "preconditioner)",
    "analyze": "error, spectral ratios and contraction certificate of a trained refiner",
    "solve": "solve generated or file Darcy/Poisson problems with a classical or hybrid solver",
    "demo": "NS refiner, Darcy hybrid and multigrid-vs-PyAMG on self-made data, one report",
}


def plain_text(doc: str) -> str:
    """``doc`` (reStructuredText of a docstring) as plain text for ``--help``.

    Sphinx roles lose their markup (``:func:`~irsolve.data.load_dataset``` becomes
    ``load_dataset``, without ``~`` the full dotted name) and double backquotes go.
    """
    doc = re.sub(r":[a-z]+:`~[\w.]*?(\w+)`", r"\1", doc)
    doc = re.sub(r":[a-z]+:`([^`]+)`", r"\1", doc)
    return doc.replace("``", "")


#: Flags that were renamed: an unrecognized old spelling suggests the new one when the
#: command has it.
RENAMED_FLAGS: dict[str, tuple[str, ...]] = {
    "--n": ("--resolution",),
    "--checkpoint": ("--refiner", "--corrector"),
    "--base-checkpoint": ("--base",),
    "--split": ("--fractions",),
    "--steps": ("--n-steps",),
}


def _suggestion(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """``"; did you mean --resolution?"`` for the first unknown flag with a close one."""
    known = [flag for flag in parser._option_string_actions if flag.startswith("--")]
    for extra in extras:
        flag = extra.split("=", 1)[0]
        if not flag.startswith("--"):
            continue
        close = [new for new in RENAMED_FLAGS.get(flag, ()) if new in known]
        close = close or difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        if close:
            return f"; did you mean {close[0]}?"
    return ""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (argparse's usage block left out);
    an unrecognized flag names the subcommand and suggests a close flag of it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = _chosen_subcommand(self, parsed)
            message = f"unrecognized arguments: {' '.join(extras)}"
            parser.error(message + _suggestion(parser, extras))
        return parsed


def _chosen_subcommand(
    parser: argparse.ArgumentParser, parsed: argparse.Namespace
) -> argparse.ArgumentParser:
    """The deepest subcommand parser ``parsed`` chose under ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
            if chosen is not None:
                return _chosen_subcommand(chosen, parsed)
    return parser


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The top-level parser and its (empty) group of subcommands."""
    parser = _Parser(
        prog="irsolve",
        description="Fixed-point solvers where learned refinement steps (IRNO) "
        "and classical ones (Jacobi, Gauss-Seidel, multigrid) mix in one solve.",
    )
    parser.add_argument("--version", action="version", version=f"irsolve {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error instead of one line"
    )
    return parser, parser.add_subparsers(dest="command", metavar="COMMAND")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser, subparsers = _top_parser()
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_subcommands(subparsers)
    _exact_flags(parser)
    return parser


def _exact_flags(parser: argparse.ArgumentParser) -> None:
    """No prefix matching in ``parser`` and its subcommands: a removed or mistyped flag is
    an error, never another flag (``--n 8`` is not ``--name 8``)."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _exact_flags(sub)


def listing_parser() -> argparse.ArgumentParser:
    """The top-level parser with each command named and described, none of them loaded:
    enough for ``--help`` and ``--version``."""
    parser, subparsers = _top_parser()
    for name, text in COMMAND_HELP.items():
        subparsers.add_parser(name, help=text)
    return parser


def command_names(parser: argparse.ArgumentParser | None = None) -> list[str]:
    """Every runnable command under ``parser`` (default :func:`build_parser`), nested ones
    as ``"data generate"``, in ``--help`` order."""
    parser = build_parser() if parser is None else parser
    names = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                names.append(name)
                names += [f"{name} {nested}" for nested in command_names(sub)]
    return names


def _command_name(args: argparse.Namespace) -> str:
    """``irsolve COMMAND`` as typed, with its sub-command (``irsolve train-corrector darcy``)."""
    words = ["irsolve", args.command, getattr(args, "family", None)]
    return " ".join(word for word in words if word)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``irsolve`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = any(token in COMMAND_HELP for token in argv)
    parser = build_parser() if named else listing_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    from irsolve.demo.runner import limited_threads
    from irsolve.distributed import is_main, session
    from irsolve.learned.training import NonFiniteTrainingError
    from irsolve.out_folder import check_is_folder, locked

    try:
        check_is_folder(getattr(args, "out", None))
        # Under torchrun each command runs in the process group (see irsolve.distributed);
        # rank 0 holds the lock of --out (one writer per folder, see irsolve.out_folder).
        with session(getattr(args, "device", None) or "auto"):
            with locked(getattr(args, "out", None) if is_main() else None):
                with limited_threads(getattr(args, "threads", None)):
                    return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{_command_name(args)}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, NonFiniteTrainingError) as err:  # one line, no traceback
        if args.debug:
            raise
        code = 1 if isinstance(err, NonFiniteTrainingError) else 2
        print(f"{_command_name(args)}: error: {err}", file=sys.stderr)
        return code
