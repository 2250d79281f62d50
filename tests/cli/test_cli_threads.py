"""--threads: every compute command has it, default 1, set during the command, restored after."""

import pytest
import torch

from irsolve.cli import build_parser, main

COMMANDS = [
    ["train-base"],
    ["train"],
    ["evaluate"],
    ["analyze"],
    ["solve"],
    ["train-corrector", "darcy"],
    ["data", "generate", "darcy", "--out", "x"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_compute_command_defaults_to_one_thread(command):
    parsed, _ = build_parser().parse_known_args(command)
    assert parsed.threads == 1
    parsed, _ = build_parser().parse_known_args([*command, "--threads", "3"])
    assert parsed.threads == 3


def test_the_thread_count_is_set_during_the_command_and_restored_after(monkeypatch):
    import irsolve.cli.solve as solve

    seen = []
    monkeypatch.setattr(solve, "run_solve", lambda args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["solve", "--resolution", "7", "--threads", "1"]) == 0
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
