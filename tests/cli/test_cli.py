"""The ``irsolve`` console entry: version, help, every registered subcommand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from irsolve import __version__
from irsolve.cli import SUBCOMMAND_MODULES, build_parser, main


def test_version_flag_prints_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"irsolve {__version__}"


def test_python_dash_m_irsolve_cli_runs_the_command_line():
    # The package's __main__ (the form torchrun's -m launches); exit status and output.
    run = subprocess.run(
        [sys.executable, "-m", "irsolve.cli", "--version"], capture_output=True, text=True
    )
    assert (run.returncode, run.stdout.strip()) == (0, f"irsolve {__version__}"), run.stderr


def test_help_lists_every_registered_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert len(subparsers.choices) >= len(SUBCOMMAND_MODULES)
    for name in subparsers.choices:
        assert name in text


def test_no_command_prints_help_and_succeeds(capsys):
    assert main([]) == 0
    assert "usage: irsolve" in capsys.readouterr().out


def test_a_usage_error_is_one_line_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("irsolve: error: argument COMMAND: invalid choice: 'no-such-command'")
    assert err.rstrip().endswith("(see irsolve --help)")


def test_command_names_lists_every_runnable_command_nested_ones_as_two_words():
    from irsolve.cli import command_names

    names = command_names()
    assert {"train", "evaluate", "analyze", "solve", "data", "data generate", "data info"} <= set(
        names
    )
    assert len(names) == len(set(names))
    for name in names:  # each one parses: its help exits 0
        with pytest.raises(SystemExit) as exit_info:
            main([*name.split(), "--help"])
        assert exit_info.value.code == 0
