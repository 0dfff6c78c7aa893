"""The graph algorithms, as pure functions on arrays: Personalized PageRank and the bounded
nearest-neighbour lists behind synonym edges."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Walk:
    """A graph as a random walker sees it: the column-stochastic transition matrix and the
    nodes without edges. Built once per graph, not per query."""

    transition: sparse.csr_matrix
    dangling: np.ndarray

    @classmethod
    def of(cls, adjacency: sparse.csr_matrix, dtype: type = np.float64) -> Walk:
        """From a symmetric weighted adjacency: an edge is followed in proportion to its
        weight among the node's edges. float32 halves the memory each step reads (the
        ranking of a large graph stays the same; the masses agree to ~1e-6)."""
        out_weight = np.asarray(adjacency.sum(axis=1)).ravel()
        dangling = out_weight == 0
        inverse = np.divide(1.0, out_weight, out=np.zeros_like(out_weight), where=~dangling)
        transition = (sparse.diags(inverse) @ adjacency).T.tocsr().astype(dtype)
        return cls(transition, dangling)


def personalized_pagerank(walk: Walk, reset: np.ndarray, damping: float = 0.5,
                          tol: float = 1e-7, max_iter: int = 100) -> np.ndarray:
    """PageRank with teleports to `reset` (networkx's definition, on a sparse matrix).

    A walker follows an edge (chosen by weight) with probability `damping` and otherwise
    jumps back to a seed; a node without edges sends its walker to the seeds. Iterates
    until the L1 change is below `tol`. Returns a distribution summing to 1.
    """
    total = reset.sum()
    if total <= 0:
        raise ValueError("Personalized PageRank needs at least one positive seed")
    seeds = (reset / total).astype(walk.transition.dtype)
    rank = seeds.copy()
    for _ in range(max_iter):
        previous = rank
        rank = damping * (walk.transition @ previous + previous[walk.dangling].sum() * seeds)
        rank += (1 - damping) * seeds
        if np.abs(rank - previous).sum() < tol:
            break
    return rank


def rank_key(similarity: float, name: str) -> tuple[float, str]:
    """Neighbours are ordered by similarity, ties by name, so lists never depend on order."""
    return (-similarity, name)


def insert_neighbour(neighbours: list[tuple[float, str]], similarity: float, name: str,
                     limit: int) -> tuple[str | None, bool]:
    """Add (similarity, name) to a list kept sorted by `rank_key` and at most `limit` long.

    Returns (the name pushed out or None, whether the new one was kept). Keeping the best
    `limit` of everything ever offered is exact: what falls out can never come back.
    """
    position = bisect_left(neighbours, rank_key(similarity, name),
                           key=lambda pair: rank_key(*pair))
    if position >= limit:
        return None, False
    neighbours.insert(position, (similarity, name))
    dropped = neighbours.pop()[1] if len(neighbours) > limit else None
    return dropped, True
