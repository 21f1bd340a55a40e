"""Tree of a prepared feeder: parents, branches, subtrees, trunk and laterals.

Market bus indices (``0 .. B-1``) are used throughout; position 0 is the slack.
A *branch* here is an edge: a line or a two-winding transformer. On a radial
feeder the tree holds every edge; on a meshed (or closed-loop) feeder it is the
breadth-first spanning tree from the slack, and the remaining edges close loops
(``Tree.meshed``; ``Tree.chords`` lists them). The spanning tree serves the
layout and the branch (lateral) numbering; the physics of a meshed feeder comes
from :mod:`gridledger.grid.meshed`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from gridledger.errors import GridError

__all__ = ["Tree", "branch_ids_of_buses", "build_tree", "tree_layout"]


@dataclass(frozen=True, eq=False)
class Tree:
    """A rooted (spanning) tree over market buses.

    ``edge_from``/``edge_to``: market bus ends of each edge (element order, not
    orientation-normalised); ``parent[b]``: parent bus of ``b`` (-1 at the root);
    ``parent_edge[b]``: edge joining ``b`` to its parent (-1 at the root);
    ``order``: buses in breadth-first order from the root; ``depth``: hops from root.
    """

    edge_from: np.ndarray
    edge_to: np.ndarray
    parent: np.ndarray
    parent_edge: np.ndarray
    order: np.ndarray
    depth: np.ndarray

    @property
    def n_buses(self) -> int:
        return int(self.parent.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_from.shape[0])

    @property
    def meshed(self) -> bool:
        """Whether some edges close loops (more edges than a spanning tree has)."""
        return self.n_edges != self.n_buses - 1

    def chords(self) -> list[int]:
        """Edges not in the spanning tree (each closes one loop); empty when radial."""
        in_tree = {int(e) for e in self.parent_edge[1:]}
        return [e for e in range(self.n_edges) if e not in in_tree]

    def children(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.n_buses)]
        for b in self.order[1:]:
            out[int(self.parent[b])].append(int(b))
        return out

    def subtree_matrix(self) -> np.ndarray:
        """``S[e, b] = 1`` if bus ``b`` lies below edge ``e`` (in the child's subtree)."""
        n_edges = self.edge_from.shape[0]
        sub = np.zeros((n_edges, self.n_buses), dtype=np.int8)
        for b in range(1, self.n_buses):
            node = b
            while node != 0:
                sub[int(self.parent_edge[node]), b] = 1
                node = int(self.parent[node])
        return sub

    def path_edges(self) -> np.ndarray:
        """``P[b, e] = 1`` if edge ``e`` lies on the path from the root to bus ``b``."""
        return self.subtree_matrix().T.copy()


def build_tree(n_buses: int, edge_from: np.ndarray, edge_to: np.ndarray, name: str) -> Tree:
    """Root the edge list at bus 0 (breadth-first spanning tree; loops are allowed).

    Raises :class:`GridError` when some bus cannot be reached from bus 0.
    """
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n_buses)]
    for e, (a, b) in enumerate(zip(edge_from.tolist(), edge_to.tolist(), strict=True)):
        adj[a].append((b, e))
        adj[b].append((a, e))
    parent = np.full(n_buses, -1, dtype=np.int64)
    parent_edge = np.full(n_buses, -1, dtype=np.int64)
    depth = np.zeros(n_buses, dtype=np.int64)
    seen = np.zeros(n_buses, dtype=bool)
    seen[0] = True
    order = [0]
    queue = deque([0])
    while queue:
        u = queue.popleft()
        for v, e in adj[u]:
            if not seen[v]:
                seen[v] = True
                parent[v] = u
                parent_edge[v] = e
                depth[v] = depth[u] + 1
                order.append(v)
                queue.append(v)
    if not seen.all():
        missing = np.flatnonzero(~seen).tolist()
        msg = f"feeder {name!r} is not connected: market buses {missing[:10]} are islanded"
        raise GridError(msg)
    return Tree(
        edge_from=edge_from.astype(np.int64),
        edge_to=edge_to.astype(np.int64),
        parent=parent,
        parent_edge=parent_edge,
        order=np.asarray(order, dtype=np.int64),
        depth=depth,
    )


def branch_ids_of_buses(tree: Tree, dist_from_root: np.ndarray) -> np.ndarray:
    """Branch (lateral) id of each bus.

    The *trunk* is the path from the root to the deepest bus (most hops; ties go
    to the larger ``dist_from_root``, then the lower index). Trunk buses, the root
    included, get id 0. Every subtree hanging off a trunk bus through a non-trunk
    child is one lateral; laterals are numbered 1, 2, ... in order of their
    take-off along the trunk (then by the child's index). Sub-laterals belong to
    their lateral.
    """
    n = tree.n_buses
    key = [(int(tree.depth[b]), float(dist_from_root[b]), -b) for b in range(n)]
    end = max(range(n), key=lambda b: key[b])
    on_trunk = np.zeros(n, dtype=bool)
    node = end
    while node != -1:
        on_trunk[node] = True
        node = int(tree.parent[node])
    branch = np.full(n, -1, dtype=np.int64)
    branch[on_trunk] = 0
    children = tree.children()
    trunk_nodes = sorted(np.flatnonzero(on_trunk).tolist(), key=lambda b: int(tree.depth[b]))
    next_id = 1
    for t in trunk_nodes:
        for c in sorted(children[t]):
            if on_trunk[c]:
                continue
            stack = [c]
            while stack:
                u = stack.pop()
                branch[u] = next_id
                stack.extend(children[u])
            next_id += 1
    return branch


def tree_layout(tree: Tree) -> np.ndarray:
    """Generic plot coordinates: x = hops from the root, y = leaf order (children centred)."""
    n = tree.n_buses
    children = tree.children()
    xy = np.zeros((n, 2))
    next_leaf = 0.0

    # iterative post-order so deep feeders do not hit the recursion limit
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        u, done = stack.pop()
        if not done:
            stack.append((u, True))
            for c in reversed(sorted(children[u])):
                stack.append((c, False))
            continue
        xy[u, 0] = float(tree.depth[u])
        if children[u]:
            xy[u, 1] = float(np.mean([xy[c, 1] for c in children[u]]))
        else:
            xy[u, 1] = next_leaf
            next_leaf += 1.0
    xy[:, 1] = -xy[:, 1]
    return xy
