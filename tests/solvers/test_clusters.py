"""Cluster block relaxation: the strong components found, and the block-Jacobi step."""

from __future__ import annotations

import numpy as np
import torch

from irsolve.solvers import Darcy2D, darcy_coefficient, gaussian_random_field
from irsolve.solvers._clusters import cluster_blocks, relax_clusters

DT = torch.float64


def _islands() -> Darcy2D:
    """9 x 9, coefficient 1 except an L-shaped 1000-cluster of 3 nodes and a 2-node one."""
    a = torch.ones(2, 1, 9, 9, dtype=DT)
    a[0, 0, 2, 2] = a[0, 0, 2, 3] = a[0, 0, 3, 2] = 1000.0  # nodes 20, 21, 29
    a[0, 0, 6, 6] = a[0, 0, 7, 6] = 1000.0  # nodes 60, 69
    a[1, 0, 4, 4] = a[1, 0, 4, 5] = 1000.0  # nodes 40, 41
    f = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(0), dtype=DT)
    return Darcy2D(a, f=f)


def test_clusters_are_the_components_joined_by_strong_couplings_in_both_directions():
    # Faces 1000-1000 carry 1000, faces 1-1000 carry 2 (harmonic mean): strong only between
    # 1000-nodes, since a 1000-node sees its 2-couplings below 0.25 of its 1000-coupling. The
    # 1-nodes are strongly coupled among themselves but form one component of more than 32.
    problem = _islands()
    blocks = cluster_blocks(problem.stencil, False, theta=0.25, max_size=32)
    assert _found(blocks, 0) == [(20, 21, 29), (60, 69)]
    assert _found(blocks, 1) == [(40, 41)]


def _found(blocks, b: int) -> list[tuple[int, ...]]:
    """The node sets of sample ``b``'s blocks, over all size groups."""
    sets = []
    for idx in blocks.index:
        for row in idx[b]:
            nodes = tuple(sorted(row[row >= 0].tolist()))
            if nodes:
                sets.append(nodes)
    return sorted(sets)


def test_relaxation_equals_block_jacobi_with_exact_block_solves():
    problem = _islands()
    u = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(1), dtype=DT)
    blocks = cluster_blocks(problem.stencil, False, theta=0.25, max_size=32)
    out = relax_clusters(blocks, problem.stencil, u, problem.f, False)
    clusters = ([[20, 21, 29], [60, 69]], [[40, 41]])
    for b, matrix in enumerate(problem.to_scipy()):
        a = matrix.toarray()
        x, f = u[b, 0].numpy().ravel(), problem.f[b, 0].numpy().ravel()
        r = f - a @ x
        expected = x.copy()
        for nodes in clusters[b]:
            expected[nodes] += np.linalg.solve(a[np.ix_(nodes, nodes)], r[nodes])
        assert np.abs(out[b, 0].numpy().ravel() - expected).max() < 1e-13 * np.abs(expected).max()


def test_smooth_coefficients_give_no_blocks_and_leave_the_iterate_unchanged():
    a = darcy_coefficient(gaussian_random_field(2, 16, generator=torch.Generator().manual_seed(3)))
    problem = Darcy2D(a)
    blocks = cluster_blocks(problem.stencil, False, theta=0.25, max_size=32)
    assert blocks.index == [] and blocks.inverse == []
    u = torch.randn(2, 1, 16, 16, dtype=DT)
    assert relax_clusters(blocks, problem.stencil, u, problem.f, False) is u
