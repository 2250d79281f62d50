"""Hierarchy.__repr__: levels, unknowns, nonzeros and complexities, checked against SciPy's nnz."""

from __future__ import annotations

import re

import torch

from irsolve.solvers import Darcy2D, Multigrid, darcy_coefficient, gaussian_random_field


def test_the_hierarchy_prints_its_levels_and_complexities_as_pyamg_does():
    a = darcy_coefficient(gaussian_random_field(2, 31, generator=torch.Generator().manual_seed(0)))
    problem = Darcy2D(a)
    text = repr(Multigrid(coarsest=7).prepare(problem))
    rows = [tuple(map(int, m)) for m in re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+) \[", text, re.M)]
    assert [r[0] for r in rows] == [0, 1, 2] and [r[1] for r in rows] == [31**2, 15**2, 7**2]
    # The finest level's nonzeros are the assembled matrix's (independent: SciPy's CSR).
    assert rows[0][2] == problem.to_scipy()[0].tocsr().nnz
    operator = sum(r[2] for r in rows) / rows[0][2]
    grid = sum(r[1] for r in rows) / rows[0][1]
    assert text.startswith("Hierarchy(batch=2, levels=3, ")
    assert f"operator complexity {operator:.3f}, grid complexity {grid:.3f}" in text
    assert "dense LU of 49 unknowns" in text
