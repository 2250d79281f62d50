"""``irsolve``, ``irsolve --help`` and ``irsolve --version`` answer without loading torch."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from irsolve.cli import COMMAND_HELP, build_parser, command_names, listing_parser, plain_text


def _commands(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand of ``parser`` and its help line, in ``--help`` order."""
    (group,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in group._choices_actions}


def test_listing_names_every_command_with_the_help_its_module_registers():
    assert _commands(listing_parser()) == _commands(build_parser())


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_version_and_help_import_no_torch_and_no_command_module(argv):
    code = (
        "import sys\n"
        "from irsolve.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('torch', 'neuralop', 'irsolve.cli.demo') if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "LOADED []" in out
    if argv != ["--version"]:
        assert all(name in out for name in COMMAND_HELP)


def test_plain_text_drops_sphinx_roles_and_double_backquotes():
    doc = "see :func:`~irsolve.data.load_dataset`, :data:`SOLVERS` and ``--rtol``"
    assert plain_text(doc) == "see load_dataset, SOLVERS and --rtol"


def test_every_help_text_is_plain():
    parser = build_parser()
    for name in command_names(parser):
        sub = parser
        for word in name.split():
            (group,) = (a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
            sub = group.choices[word]
        text = sub.format_help()
        assert not re.search(r":[a-z]+:`|``", text), name
