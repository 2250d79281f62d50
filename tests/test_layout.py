"""The package layout reads engine / solvers / analysis / data / learned / demo / cli, and imports
point down that list: a layer imports only the layers it sits on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Top-level folders mapped into the ``irsolve`` namespace.
FOLDERS = {"irsolve": "irsolve", "solvers": "irsolve.solvers", "analysis": "irsolve.analysis"}
#: Subpackages of ``irsolve`` that are layers of their own; every other module is the engine.
LAYERS = ("solvers", "analysis", "data", "learned", "demo", "cli")
#: What each layer may import (its own modules included).
ALLOWED = {
    "engine": {"engine"},
    "solvers": {"engine", "solvers"},
    "analysis": {"engine", "solvers", "analysis"},
    "data": {"engine", "solvers", "data"},
    "learned": {"engine", "solvers", "analysis", "data", "learned"},
    "demo": {"engine", "solvers", "analysis", "data", "learned", "demo"},
    "cli": {"engine", *LAYERS},
}


def _layer(module: str) -> str:
    """The layer of the dotted name ``module`` (``irsolve...``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "engine"


def _modules() -> dict[Path, str]:
    """Every library source file and its dotted module name (setup.cfg's package_dir)."""
    names = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            names[path] = ".".join((package, *parts))
    return names


def _imported(source: str) -> set[str]:
    """Dotted ``irsolve`` modules imported anywhere in ``source``, at the top or in a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "irsolve"}


def test_irsolve_holds_the_engine_modules_and_the_data_learned_demo_and_cli_packages():
    packages = {p.name for p in (ROOT / "irsolve").iterdir() if (p / "__init__.py").exists()}
    assert packages == {"data", "learned", "demo", "cli"}


def test_every_import_points_down_the_layers():
    upward = []
    for path, module in sorted(_modules().items()):
        layer = _layer(module)
        for imported in sorted(_imported(path.read_text())):
            if _layer(imported) not in ALLOWED[layer]:
                upward.append(f"{path.relative_to(ROOT)} ({layer}) imports {imported}")
    assert not upward


def test_the_layer_check_sees_an_upward_import():
    assert _layer("irsolve.learned.training") == "learned" and _layer("irsolve.engine") == "engine"
    source = "def f():\n    from irsolve.cli.flags import add_flags\n"
    assert {_layer(m) for m in _imported(source)} - ALLOWED["learned"] == {"cli"}


def test_the_old_module_paths_no_longer_import():
    # A fresh interpreter: nothing imported before may hide a path in sys.modules.
    script = (
        "import importlib, irsolve\n"
        "for old in ('irsolve.solve', 'irsolve.training', 'irsolve.train_cli', 'irsolve.nets'):\n"
        "    try:\n"
        "        importlib.import_module(old)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    raise SystemExit(f'{old} imported')\n"
        "assert callable(irsolve.solve)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
