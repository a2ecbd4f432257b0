"""A coarse vector index for large agents: score only the rules near the message (sublinear retrieval).

Exact cosine over every rule costs time linear in the rules; past COARSE_MIN_ROWS rows the rule
vectors are grouped around about √n centroids (a few rounds of spherical k-means, once per
published version), and a turn scores exactly only the rules of the `probe` nearest groups. The
others score 0 on the vector side: they are far from the message by construction, and the hybrid
score still counts their lexical overlap. Each group keeps its own contiguous copy of its rows,
so scoring it is one small mat-vec with no gather. Below COARSE_MIN_ROWS the exact path is as
fast and nothing changes. Pure numpy; deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from chalicelib.providers.llm import Vectors

COARSE_MIN_ROWS = 4096
_ROUNDS = 4
_PROBE_SHARE = 0.12  # share of the groups scored exactly per query
_MIN_PROBE = 8

IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class CoarseIndex:
    centroids: Vectors  # (groups, dims), unit rows
    members: tuple[IntArray, ...]  # row positions of each group
    blocks: tuple[Vectors, ...]  # each group's rows, contiguous
    probe: int

    def nearest_groups(self, query: npt.NDArray[np.float32]) -> list[int]:
        """The `probe` groups whose centroids are nearest to the (unit) query vector."""
        closeness = self.centroids @ query
        return np.argpartition(-closeness, self.probe - 1)[: self.probe].tolist()  # type: ignore[no-any-return]

    def similarity(self, query: npt.NDArray[np.float32], rows: int) -> npt.NDArray[np.float32]:
        """Cosine with the rows of the nearest groups (the query is a unit vector); 0 elsewhere."""
        scores = np.zeros(rows, dtype=np.float32)
        for group in self.nearest_groups(query):
            scores[self.members[group]] = self.blocks[group] @ query
        return scores


def build_coarse(vectors: Vectors) -> CoarseIndex | None:
    """The coarse index of a rule matrix, or None when it is small enough for exact scoring."""
    rows = vectors.shape[0]
    if rows < COARSE_MIN_ROWS:
        return None
    groups = round(math.sqrt(rows))
    # Deterministic start: evenly spaced rows (bundle order mixes topics well enough for a seed).
    centroids = vectors[np.linspace(0, rows - 1, groups).astype(np.int64)].copy()
    assignment = np.zeros(rows, dtype=np.int32)
    for _ in range(_ROUNDS):
        assignment = np.argmax(vectors @ centroids.T, axis=1).astype(np.int32)
        for group in range(groups):
            rows_of_group = vectors[assignment == group]
            if rows_of_group.shape[0]:
                centre = rows_of_group.sum(axis=0)
                norm = float(np.linalg.norm(centre))
                if norm > 0:
                    centroids[group] = centre / norm
    members = tuple(np.flatnonzero(assignment == group).astype(np.int32) for group in range(groups))
    blocks = tuple(np.ascontiguousarray(vectors[rows_of_group]) for rows_of_group in members)
    probe = max(_MIN_PROBE, math.ceil(groups * _PROBE_SHARE))
    return CoarseIndex(centroids=centroids, members=members, blocks=blocks, probe=min(probe, groups))
