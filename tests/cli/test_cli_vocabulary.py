"""One vocabulary: a flag name means one thing, with one type and default, in every sub-command."""

from __future__ import annotations

import argparse
from collections import defaultdict

import pytest

from irsolve.cli import build_parser, command_names
from irsolve.cli.flags import VOCABULARY

#: Texts each flag's parser is tried on: the outcomes (value or error) must agree.
PROBES = ("0", "1", "2", "16", "-1", "1.5", "1e3", "0.25", "inf", "nan", "x", "", "cpu")

#: Flags whose default is the command's own choice, type and meaning agreeing: a problem
#: count, a grid size, the corrector's learning rate (its objective was tuned with 1e-3),
#: refiner settings that evaluate overrides only when given (default: as trained), and the
#: torch threads (data generate: torch's default; demo: 1) and output folder (demo: runs/demo).
PER_COMMAND_DEFAULTS = {"--samples", "--resolution", "--lr", "--alpha-decay", "--stop-threshold"}
PER_COMMAND_DEFAULTS |= {"--threads", "--out"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found = {}
    for name in command_names(parser):
        sub = parser
        for word in name.split():
            action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
            sub = action.choices[word]
        found[name] = sub
    return found


def _flags(parser: argparse.ArgumentParser, *, hidden: bool = False) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.option_strings
        and a.dest != "help"
        and (hidden or a.help is not argparse.SUPPRESS)
        and not isinstance(a, argparse._SubParsersAction)
    ]


def _behaviour(action: argparse.Action) -> tuple:
    outcomes = []
    for text in PROBES:
        try:
            value = text if action.type is None else action.type(text)
        except (argparse.ArgumentTypeError, TypeError, ValueError):
            value = "error"
        if action.choices is not None and value not in action.choices:
            value = "error"
        outcomes.append(repr(value))
    return (type(action).__name__, action.nargs, tuple(outcomes))


COMMANDS = _commands()
USES = defaultdict(list)  # flag -> [(command, action)]
for _command, _parser in COMMANDS.items():
    for _action in _flags(_parser):
        for _flag in _action.option_strings:
            USES[_flag].append((_command, _action))


def test_every_command_is_reached_including_solve_and_the_nested_data_commands():
    assert {"solve", "train", "evaluate", "analyze", "train-corrector", "data generate"} <= set(
        COMMANDS
    )


def test_a_setting_has_one_spelling_in_every_command():
    spellings = defaultdict(set)
    for _command, parser in COMMANDS.items():
        for action in _flags(parser):
            spellings[action.dest].add(tuple(action.option_strings))
    assert {dest: s for dest, s in spellings.items() if len(s) > 1} == {}


def test_a_flag_sets_one_setting_in_every_command():
    dests = {flag: {action.dest for _, action in uses} for flag, uses in USES.items()}
    assert {flag: d for flag, d in dests.items() if len(d) > 1} == {}


@pytest.mark.parametrize("flag", sorted(f for f, uses in USES.items() if len(uses) > 1))
def test_a_flag_shared_by_commands_parses_alike_and_has_one_default(flag):
    uses = USES[flag]
    behaviours = {command: _behaviour(action) for command, action in uses}
    assert len(set(behaviours.values())) == 1, behaviours
    if flag not in PER_COMMAND_DEFAULTS:
        defaults = {command: action.default for command, action in uses}
        assert len(set(map(repr, defaults.values()))) == 1, defaults


@pytest.mark.parametrize("flag", sorted(VOCABULARY))
def test_a_vocabulary_flag_is_the_vocabulary_s_wherever_it_appears(flag):
    for command, action in USES.get(flag, []):
        assert action.type is VOCABULARY[flag].get("type"), command
        assert action.choices == VOCABULARY[flag].get("choices"), command


def test_the_n_steps_input_default_is_one_in_every_command_that_reads_data():
    readers = [c for c, a in USES["--n-steps-input"]]
    assert {"train-base", "train", "evaluate", "analyze"} <= set(readers)
    assert {a.default for _, a in USES["--n-steps-input"]} == {1}


GENERATE = ["data", "generate", "darcy", "--out", "."]


@pytest.mark.parametrize(
    ("command", "old"),
    [
        (["analyze"], ["--checkpoint", "."]),
        (["analyze"], ["--base-checkpoint", "."]),
        (["train-corrector"], ["--n", "8"]),
        (GENERATE, ["--n", "8"]),
        (GENERATE, ["--split", "1", "0", "0"]),
        (GENERATE, ["--steps", "3"]),
    ],
)
def test_the_old_spellings_are_gone(command, old, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, *old])
    # Not read as a flag it abbreviates either: data generate's --n once became --name.
    assert f"unrecognized arguments: {old[0]}" in capsys.readouterr().err
