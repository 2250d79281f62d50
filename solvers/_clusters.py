"""Block relaxation on clusters of strongly coupled nodes.

With a coefficient that jumps from node to node (Darcy with ``a`` in {1, 1000}
drawn per node) the high-coefficient nodes form irregular clusters joined by
strong couplings and tied only weakly to their surroundings. A constant over
such a cluster has a small energy, so it must be reduced by the coarse grid or
the smoother; a geometric coarse grid misses the clusters that hold no coarse
node, and point or line relaxation moves a cluster as a whole only slowly. This
module relaxes each such cluster as one block: ``u_B <- u_B + A_BB^-1 (f - A u)_B``
for all clusters at once (block Jacobi over disjoint blocks, each block an exact
solve), which sets every cluster to the level its surroundings ask for.

A coupling ``P -> Q`` is strong when ``-a_PQ >= theta max_R (-a_PR)`` in both
directions (the classical strength measure of Ruge and Stüben, symmetrised);
clusters are the connected components of the strong couplings
(``scipy.sparse.csgraph.connected_components``) with ``2 .. max_size`` nodes.
On smooth coefficients every coupling is strong and the single component
exceeds ``max_size``, so no block is formed and nothing is added to the cost.

The blocks are found on the host (once per operator) and applied on the
operator's device, batched: blocks are grouped by padded size (2, 4, 8, ...),
each group an ``(B, blocks, size, size)`` tensor of inverses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from irsolve.solvers._stencil import apply_stencil, stencil_to_scipy

__all__ = ["ClusterBlocks", "cluster_blocks", "relax_clusters"]


@dataclass
class ClusterBlocks:
    """The cluster blocks of a batch of operators, grouped by padded block size.

    Attributes
    ----------
    index
        One ``(B, blocks, size)`` long tensor per group: flat node indices of each
        block's nodes, ``-1`` in padding slots (and in padding blocks of samples
        with fewer blocks).
    inverse
        One ``(B, blocks, size, size)`` tensor per group: ``A_BB^-1`` of each
        block, zero in padding rows and columns.
    """

    index: list[Tensor]
    inverse: list[Tensor]


def _clusters(matrix: sp.csr_matrix, theta: float, max_size: int) -> list[np.ndarray]:
    """Node lists of the strongly coupled components with ``2 .. max_size`` nodes."""
    n = matrix.shape[0]
    off = (matrix - sp.diags(matrix.diagonal())).tocoo()
    coupling = -off.data
    row_max = np.zeros(n)
    np.maximum.at(row_max, off.row, coupling)
    strong = (coupling > 0) & (coupling >= theta * row_max[off.row])
    graph = sp.coo_matrix((np.ones(strong.sum()), (off.row[strong], off.col[strong])), (n, n))
    graph = graph.tocsr()
    graph = graph.multiply(graph.T)  # strong both ways
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return [
        order[starts[c] : starts[c + 1]] for c in np.nonzero((sizes >= 2) & (sizes <= max_size))[0]
    ]


def cluster_blocks(stencil: Tensor, periodic: bool, theta: float, max_size: int) -> ClusterBlocks:
    """Find the clusters of every sample's operator and invert their diagonal blocks."""
    matrices = stencil_to_scipy(stencil, periodic)
    per_sample = [_clusters(m, theta, max_size) for m in matrices]
    groups: dict[int, list[list[tuple[np.ndarray, np.ndarray]]]] = {}
    for b, (blocks, matrix) in enumerate(zip(per_sample, matrices, strict=True)):
        for nodes in blocks:
            size = 1 << int(np.ceil(np.log2(len(nodes))))
            dense = np.eye(size)
            dense[: len(nodes), : len(nodes)] = matrix[nodes][:, nodes].toarray()
            groups.setdefault(size, [[] for _ in per_sample])[b].append((nodes, dense))
    index, inverse = [], []
    for size in sorted(groups):
        count = max(len(blocks) for blocks in groups[size])
        idx = np.full((len(per_sample), count, size), -1, dtype=np.int64)
        dense = np.tile(np.eye(size), (len(per_sample), count, 1, 1))
        for b, blocks in enumerate(groups[size]):
            for k, (nodes, block) in enumerate(blocks):
                idx[b, k, : len(nodes)] = nodes
                dense[b, k] = block
        inv = torch.linalg.inv(torch.from_numpy(dense).to(stencil.device, stencil.dtype))
        mask = torch.from_numpy(idx >= 0).to(stencil.device)
        inv = inv * (mask[..., :, None] & mask[..., None, :])
        index.append(torch.from_numpy(idx).to(stencil.device))
        inverse.append(inv)
    return ClusterBlocks(index, inverse)


def relax_clusters(
    blocks: ClusterBlocks, stencil: Tensor, u: Tensor, f: Tensor, periodic: bool
) -> Tensor:
    """One block-Jacobi step over the clusters: ``u_B += A_BB^-1 (f - A u)_B``; a new tensor.

    For symmetric ``A`` the step is self-adjoint in the ``A`` inner product
    (``u += M^-1 r`` with ``M`` the symmetric block diagonal of the clusters).
    """
    if not blocks.index:
        return u
    b, c = u.shape[:2]
    r = (f - apply_stencil(stencil, u, periodic)).reshape(b, c, -1)
    out = u.clone().reshape(b, c, -1)
    for idx, inv in zip(blocks.index, blocks.inverse, strict=True):
        flat = idx.clamp(min=0).reshape(b, 1, -1).expand(-1, c, -1)
        local = r.gather(2, flat).reshape(b, c, *idx.shape[1:])
        correction = torch.einsum("bkij,bckj->bcki", inv, local)  # zero in padding slots
        out.scatter_add_(2, flat, correction.reshape(b, c, -1))
    return out.reshape(u.shape)
