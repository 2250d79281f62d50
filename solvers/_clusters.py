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


def _components(matrix: sp.csr_matrix, theta: float) -> np.ndarray:
    """Component label of every node in the graph of couplings strong both ways."""
    n = matrix.shape[0]
    off = (matrix - sp.diags(matrix.diagonal())).tocoo()
    coupling = -off.data
    row_max = np.zeros(n)
    np.maximum.at(row_max, off.row, coupling)
    strong = (coupling > 0) & (coupling >= theta * row_max[off.row])
    graph = sp.coo_matrix((np.ones(strong.sum()), (off.row[strong], off.col[strong])), (n, n))
    graph = graph.tocsr()
    return connected_components(graph.multiply(graph.T), directed=False)[1]


def cluster_blocks(stencil: Tensor, periodic: bool, theta: float, max_size: int) -> ClusterBlocks:
    """Find the clusters of every sample's operator and invert their diagonal blocks.

    Clusters of ``k`` nodes go to the group of padded size ``2^ceil(log2 k)``;
    all blocks are gathered from the matrix entries at once (no loop over blocks).
    """
    samples = []  # per sample: labels, each node's rank in its cluster, cluster sizes, entries
    for matrix in stencil_to_scipy(stencil, periodic):
        labels = _components(matrix, theta)
        sizes = np.bincount(labels)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.empty_like(labels)
        rank[order] = np.arange(labels.size) - starts[labels[order]]
        samples.append((labels, rank, sizes, matrix.tocoo()))
    # Padded block size of every cluster (0: not relaxed as a block).
    groups = [
        np.where(
            (sizes >= 2) & (sizes <= max_size),
            np.left_shift(1, np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64)),
            0,
        )
        for _, _, sizes, _ in samples
    ]
    index, inverse = [], []
    for size in sorted(set(np.concatenate(groups).tolist()) - {0}):
        chosen = [np.nonzero(group == size)[0] for group in groups]
        count = max(len(c) for c in chosen)
        idx = np.full((len(samples), count, size), -1, dtype=np.int64)
        dense = np.tile(np.eye(size), (len(samples), count, 1, 1))
        for b, ((labels, rank, _, coo), components) in enumerate(zip(samples, chosen, strict=True)):
            block_of = np.full(labels.max() + 1, -1)
            block_of[components] = np.arange(len(components))
            nodes = np.nonzero(block_of[labels] >= 0)[0]
            idx[b, block_of[labels[nodes]], rank[nodes]] = nodes
            blk = block_of[labels[coo.row]]
            inside = (blk >= 0) & (labels[coo.row] == labels[coo.col])
            dense[b, blk[inside], rank[coo.row[inside]], rank[coo.col[inside]]] = coo.data[inside]
        inv = torch.linalg.inv(torch.from_numpy(dense).to(stencil.device, stencil.dtype))
        mask = torch.from_numpy(idx >= 0).to(stencil.device)
        index.append(torch.from_numpy(idx).to(stencil.device))
        inverse.append(inv * (mask[..., :, None] & mask[..., None, :]))
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
