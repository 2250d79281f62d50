"""Public names: dotted paths cited in the library resolve, and no module hides behind a name."""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import irsolve

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("irsolve", "solvers", "analysis")
PACKAGES = (
    "irsolve",
    "irsolve.analysis",
    "irsolve.cli",
    "irsolve.data",
    "irsolve.learned",
    "irsolve.learned.nets",
    "irsolve.learned.training",
    "irsolve.solvers",
)
DOTTED = re.compile(r"irsolve(?:\.[A-Za-z_]\w*)+")


def _cited_paths() -> list[str]:
    """Every ``irsolve.a.b...`` written in the library's sources (docstrings and comments)."""
    found = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            found.update(DOTTED.findall(path.read_text()))
    return sorted(found)


def _resolve(dotted: str) -> object:
    """``dotted`` by attribute access from ``irsolve``, importing submodules on the way,
    as Sphinx cross-references and a user typing the path do."""
    obj: object = irsolve
    for part in dotted.split(".")[1:]:
        if not hasattr(obj, part) and isinstance(obj, types.ModuleType):
            try:
                importlib.import_module(f"{obj.__name__}.{part}")
            except ModuleNotFoundError:
                pass
        obj = getattr(obj, part)  # AttributeError names the part that does not resolve
    return obj


@pytest.mark.parametrize("dotted", _cited_paths())
def test_every_dotted_path_cited_in_the_sources_resolves(dotted):
    _resolve(dotted)


def test_the_lipschitz_module_and_function_have_different_names():
    from irsolve.analysis import lipschitz, lipschitz_estimates

    assert callable(lipschitz) and not isinstance(lipschitz, types.ModuleType)
    assert _resolve("irsolve.analysis.lipschitz_estimates.spectral_norm") is (
        lipschitz_estimates.spectral_norm
    )


def test_no_attribute_of_a_package_hides_a_submodule_of_the_same_name():
    clashes = set()
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            if info.name == "__main__":  # runs the command line when imported
                continue
            sub = importlib.import_module(f"{package}.{info.name}")
            if getattr(module, info.name) is not sub:
                clashes.add(f"{package}.{info.name}")
    assert not clashes


def test_analysis_exports_the_plots():
    import irsolve.analysis as analysis

    assert analysis.plots is importlib.import_module("irsolve.analysis.plots")
    for name in analysis.plots.__all__:
        assert name in analysis.__all__ and getattr(analysis, name) is getattr(analysis.plots, name)
