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
#: count (each corrector family its own training and validation counts), a grid size, the
#: corrector's learning rate (its objective was tuned with 1e-3),
#: refiner settings that evaluate overrides only when given (default: as trained), and the
#: torch threads (data generate: torch's default; demo: 1) and output folder (demo: runs/demo).
PER_COMMAND_DEFAULTS = {"--samples", "--resolution", "--lr", "--alpha-decay", "--stop-threshold"}
PER_COMMAND_DEFAULTS |= {"--threads", "--out", "--train-samples", "--val-samples"}


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


def _choice_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions of ``parser`` that take a word from a list: choices and sub-commands."""
    return [a for a in parser._actions if a.choices is not None and a.dest not in VERBS]


#: Sub-command lists that are the command tree itself (verbs, not values of a setting).
VERBS = {"command", "data_command"}


def _behaviour(action: argparse.Action) -> tuple:
    outcomes = []
    for text in PROBES + CHOICE_WORDS:
        try:
            value = text if action.type is None else action.type(text)
        except (argparse.ArgumentTypeError, TypeError, ValueError):
            value = "error"
        if action.choices is not None and value not in action.choices:
            value = "error"
        outcomes.append(repr(value))
    return (type(action).__name__, action.nargs, tuple(outcomes))


COMMANDS = _commands()
#: Every word of a choice list or a (non-verb) sub-command list, in any command: probed too,
#: so two commands whose flag takes different words (--problem {darcy,poisson} against
#: {darcy,helmholtz}) do not parse alike.
CHOICE_WORDS = tuple(
    sorted(
        {str(c) for parser in COMMANDS.values() for a in _choice_actions(parser) for c in a.choices}
        - set(PROBES)
    )
)
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


def test_the_probe_sees_choice_lists():
    """Issue 27: the probe words matched no choice list, so --problem {darcy,poisson} and
    --problem {darcy,helmholtz} parsed alike; with the choice words probed they do not."""
    assert {"darcy", "poisson", "helmholtz", "jacobi"} <= set(CHOICE_WORDS)
    one, other = argparse.ArgumentParser(), argparse.ArgumentParser()
    a = one.add_argument("--problem", choices=("darcy", "poisson"))
    b = other.add_argument("--problem", choices=("darcy", "helmholtz"))
    assert _behaviour(a) != _behaviour(b)
    c = argparse.ArgumentParser().add_argument("--problem", choices=("poisson", "darcy"))
    assert _behaviour(a) == _behaviour(c)  # the same words in another order: alike


#: Settings whose words name the same kind of thing: a problem family (solve --problem,
#: data generate's problem, train-corrector's family), a method (solve --solver, the
#: corrector's --smoother).
SAME_THING = ({"problem", "family"}, {"solver", "smoother"})


def test_a_choice_word_means_one_thing_in_every_command():
    """A word of a choice or sub-command list ("darcy", "jacobi", "valid") is a value of one
    kind of setting wherever it appears, and one thing has one spelling (no "gauss-seidel"
    beside "gauss_seidel")."""
    settings = defaultdict(set)  # word -> the settings (dest) it is a value of
    for parser in COMMANDS.values():
        for action in _choice_actions(parser):
            for word in action.choices:
                settings[str(word)].add(action.dest)

    def kind(dest: str) -> str:
        return next((min(group) for group in SAME_THING if dest in group), dest)

    mixed = {w: d for w, d in settings.items() if len({kind(dest) for dest in d}) > 1}
    assert mixed == {}
    spellings = defaultdict(set)
    for word in settings:
        spellings[word.lower().replace("_", "-")].add(word)
    assert {key: s for key, s in spellings.items() if len(s) > 1} == {}


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
        (["train-corrector", "darcy"], ["--n", "8"]),
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
