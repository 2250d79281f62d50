"""The distribution lists every package of the tree (an editable install hides a missing one)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Top-level folders mapped into the ``irsolve`` namespace (setup.cfg's package_dir).
FOLDERS = {"irsolve": "irsolve", "solvers": "irsolve.solvers", "analysis": "irsolve.analysis"}


def _packages_in_tree() -> set[str]:
    found = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *parts)))
    return found


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def test_setup_cfg_lists_every_package_directory() -> None:
    # setuptools reads a list option separated by commas or by lines.
    listed = set(re.split(r"[,\s]+", _setup_cfg()["options"]["packages"].strip()))
    assert listed == _packages_in_tree()


def test_package_dir_maps_solvers_and_analysis_into_the_namespace() -> None:
    mapping = dict(
        line.split("=")
        for line in _setup_cfg()["options"]["package_dir"].strip().splitlines()
        if "=" in line
    )
    mapping = {key.strip(): value.strip() for key, value in mapping.items()}
    assert mapping == {"irsolve.solvers": "solvers", "irsolve.analysis": "analysis"}
