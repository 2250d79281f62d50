"""Old module paths, kept importable after the package layout changed.

The learned side moved to :mod:`irsolve.learned`, the command line to
:mod:`irsolve.cli`, and the step loop's module from ``irsolve/solve.py`` to
:mod:`irsolve.engine` (the function :func:`irsolve.solve` keeps its name).
Code written against the old paths keeps working:
``import irsolve.train_cli`` or ``from irsolve.training import fit`` gives the
new module itself, the same object, so patching a name through the old path
patches the module the library uses.

One finder on :data:`sys.meta_path` maps each old name of :data:`MOVED`, and
every submodule below an old package name (``irsolve.training.configs``), to
its new module. An old name whose new module is already imported is also
entered in :data:`sys.modules` directly (:func:`register`), before the import
system looks for it; so a renamed module never replaces, on its package, the
function that now owns its name. The library imports only the new paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

__all__ = ["MOVED", "install", "new_name", "register"]

#: Old dotted module name -> new dotted module name.
MOVED: dict[str, str] = {
    "irsolve.analysis.cli": "irsolve.cli.analyze",
    "irsolve.checkpoint": "irsolve.learned.checkpoint",
    "irsolve.cli_flags": "irsolve.cli.flags",
    "irsolve.cli_types": "irsolve.cli.types",
    "irsolve.corrector_cli": "irsolve.cli.corrector",
    "irsolve.corrector_training": "irsolve.learned.corrector_training",
    "irsolve.data.cli": "irsolve.cli.data",
    "irsolve.data.options": "irsolve.cli.data_flags",
    "irsolve.evaluate": "irsolve.learned.evaluate",
    "irsolve.losses": "irsolve.learned.losses",
    "irsolve.nets": "irsolve.learned.nets",
    "irsolve.nets.base_operator": "irsolve.learned.nets.fno",
    "irsolve.settings": "irsolve.learned.settings",
    "irsolve.solve": "irsolve.engine",
    "irsolve.solve_cli": "irsolve.cli.solve",
    "irsolve.train_cli": "irsolve.cli.train",
    "irsolve.trained": "irsolve.learned.trained",
    "irsolve.training": "irsolve.learned.training",
}


def new_name(old: str) -> str | None:
    """The current name of module ``old``, or None where ``old`` did not move.

    An entry of :data:`MOVED` maps its name and, for a package, every name below it:
    ``irsolve.training.configs`` becomes ``irsolve.learned.training.configs``.
    """
    if old in MOVED:
        return MOVED[old]
    parts = old.split(".")
    for end in range(len(parts) - 1, 1, -1):
        prefix = ".".join(parts[:end])
        if prefix in MOVED:
            return ".".join((MOVED[prefix], *parts[end:]))
    return None


def register() -> None:
    """Enter in :data:`sys.modules` every old name of :data:`MOVED` whose new module is imported.

    The old name also becomes an attribute of its package (``irsolve.training``
    after ``import irsolve.training``), unless the package already has one by that
    name: a function that took the name keeps it.
    """
    for old, new in MOVED.items():
        if new not in sys.modules:
            continue
        module = sys.modules.setdefault(old, sys.modules[new])
        package, _, child = old.rpartition(".")
        if package in sys.modules and not hasattr(sys.modules[package], child):
            setattr(sys.modules[package], child, module)


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and loads it as the module of its new name."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, loader_state={"new": new})

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(spec.loader_state["new"])
        spec.loader_state["spec"] = module.__spec__
        register()
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The module ran under its new name; give it back the spec the import system
        # replaced with the old name's.
        module.__spec__ = module.__spec__.loader_state["spec"]


def install() -> None:
    """Put the finder first on :data:`sys.meta_path` (once) and :func:`register`.

    First, so that a folder left behind by the move (``irsolve/nets/__pycache__``)
    is not imported as an empty namespace package.
    """
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OldPaths())
    register()
