"""Module paths from before the layout move (engine / learned / data / cli) still import.

``irsolve._moved`` maps each old path to its new module; these tests check that the old
path gives the same module object, that ``from OLD import NAME`` works for every public
name, and that a renamed module never replaces the function that took its name.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

from irsolve._moved import MOVED, new_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_module_path_imports_the_new_module_itself(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_from_an_old_module_path_imports_every_public_name(old, new):
    module = importlib.import_module(new)
    names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
    assert names, f"{new} has no public names to check"
    space: dict[str, object] = {}
    exec(f"from {old} import {', '.join(names)}", space)  # noqa: S102 - the statement under test
    for name in names:
        assert space[name] is getattr(module, name)


def test_a_submodule_below_an_old_package_path_is_the_new_submodule():
    from irsolve.learned.training import configs

    assert importlib.import_module("irsolve.training.configs") is configs
    assert new_name("irsolve.training.configs") == "irsolve.learned.training.configs"
    assert new_name("irsolve.interface") is None


#: Run in a fresh interpreter: the import order matters, and this process has imported both.
_FRESH_IMPORTS = """
import irsolve.learned.training  # the new module first, then old paths
import irsolve.nets.base_operator
from irsolve.nets.base_operator import base_operator
import irsolve.learned.nets as nets
assert callable(nets.base_operator), nets.base_operator  # the function keeps its name
assert base_operator is nets.base_operator
import irsolve.training
assert irsolve.training.fit is irsolve.learned.training.fit  # attribute access, old style
import irsolve.train_cli
assert irsolve.train_cli is irsolve.cli.train
import irsolve.solve
from irsolve.solve import SolveState
assert callable(irsolve.solve) and SolveState is irsolve.engine.SolveState
from irsolve import checkpoint, train_cli  # the package form of an old path
assert (checkpoint, train_cli) == (irsolve.learned.checkpoint, irsolve.cli.train)
assert irsolve.cli.train.__spec__.name == "irsolve.cli.train"  # its own spec, not the alias's
"""


def test_old_paths_import_in_a_fresh_interpreter_without_replacing_functions():
    run = subprocess.run(
        [sys.executable, "-c", _FRESH_IMPORTS], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr


def _is_function_or_class(module: str, name: str) -> bool:
    """Whether ``name`` in the module ``module`` is an attribute other than a module."""
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return not isinstance(value, types.ModuleType)


def _old_paths_named_in(source: str) -> list[str]:
    """Old module paths in ``source``'s imports and in its strings that are a module path."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from irsolve import training`` names a module; ``from irsolve import solve``
            # the function that took the old module's name.
            names = [node.module]
            names += [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if not _is_function_or_class(node.module, alias.name)
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]  # importlib.import_module("irsolve....") tables
        else:
            continue
        found += [name for name in names if new_name(name) is not None]
    return found


def test_the_library_imports_no_old_module_path():
    old = [
        f"{path.relative_to(ROOT)}: {name}"
        for folder in ("irsolve", "solvers", "analysis")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "_moved.py"
        for name in _old_paths_named_in(path.read_text())
    ]
    assert not old
