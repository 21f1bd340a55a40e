"""The committed network of a radial feeder in O(buses) integers (SecurityVerifier data v2).

On a radial feeder the relief of every committed row follows from the tree:

- a bus row's relief at bus ``b`` depends only on the lowest common ancestor of its bus and
  ``b`` (LinDistFlow: the resistance shared by the two paths from the substation), so one
  integer per bus, ``bus_value[v]``, gives the whole row: ``relief = bus_value[lca(k, b)]``;
- a branch row relieves only cuts below the branch, all by the same amount (its PTDF is 1
  there): ``relief = branch_value[r]`` if ``branch_child[r]`` is ``b`` or an ancestor of
  ``b``, else 0.

A :class:`RadialTree` holds those integers plus each bus's parent and depth (bus 0 is the
root: its own parent at depth 0; every other bus one deeper than its parent, so every walk
to the root ends). :meth:`RadialTree.problem` names the first entry the contract would
reject (``BadNetworkTree``), and :meth:`RadialTree.relief` expands the rows to the dense
matrix the reference checks use, equal entry by entry to what the contract computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.errors import SecurityError

__all__ = ["RadialTree"]


@dataclass(frozen=True, eq=False)
class RadialTree:
    """Parent, depth and relief value of every bus; child bus and value of every branch row."""

    parent: np.ndarray
    depth: np.ndarray
    bus_value: np.ndarray
    branch_child: np.ndarray
    branch_value: np.ndarray

    @property
    def n_buses(self) -> int:
        return int(self.parent.shape[0])

    def problem(self) -> int | None:
        """Index the contract's ``BadNetworkTree`` would name (bus ``v``, or ``n_buses + r``
        for branch row ``r``), None for a valid tree; checked in the contract's order."""
        n = self.n_buses
        for v in range(n):
            p, d = int(self.parent[v]), int(self.depth[v])
            ok = (p == 0 and d == 0) if v == 0 else (0 <= p < n and d == int(self.depth[p]) + 1)
            if not ok:
                return v
        for r, child in enumerate(self.branch_child.tolist()):
            if not 0 < child < n:
                return n + r
        return None

    def ancestors(self) -> np.ndarray:
        """``(B, B)`` bool: ``[v, b]`` when ``v`` is ``b`` or an ancestor of ``b``."""
        if self.problem() is not None:
            msg = f"RadialTree: entry {self.problem()} is not a valid tree node or branch"
            raise SecurityError(msg)
        n = self.n_buses
        out = np.zeros((n, n), dtype=bool)
        for b in range(n):
            v = b
            out[v, b] = True
            while v != 0:
                v = int(self.parent[v])
                out[v, b] = True
        return out

    def preorder(self) -> tuple[np.ndarray, np.ndarray]:
        """Depth-first preorder of the buses from the root, and each bus's subtree size:
        the subtree of ``v`` is ``order[pos[v] : pos[v] + size[v]]``."""
        n = self.n_buses
        children: list[list[int]] = [[] for _ in range(n)]
        for v in range(1, n):
            children[int(self.parent[v])].append(v)
        order: list[int] = []
        stack = [0]
        while stack:
            v = stack.pop()
            order.append(v)
            stack.extend(reversed(children[v]))
        size = np.ones(n, dtype=np.int64)
        for v in reversed(order[1:]):
            size[int(self.parent[v])] += size[v]
        return np.asarray(order, dtype=np.int64), size

    def relief(self) -> np.ndarray:
        """Dense ``(B - 1 + branches, B)`` relief: bus rows of buses ``1..B-1``, then the
        branch rows, as the contract computes them (integers throughout, O(B^2))."""
        if self.problem() is not None:
            msg = f"RadialTree: entry {self.problem()} is not a valid tree node or branch"
            raise SecurityError(msg)
        n = self.n_buses
        order, size = self.preorder()
        pos = np.empty(n, dtype=np.int64)
        pos[order] = np.arange(n)
        value = self.bus_value.astype(np.int64)
        # in preorder columns, the subtree of v is one slice; bus_value[lca(v, b)] is v's own
        # value inside it and its parent's row elsewhere
        lca_value = np.empty((n, n), dtype=np.int64)
        lca_value[0] = value[0]
        for v in order[1:].tolist():
            lca_value[v] = lca_value[int(self.parent[v])]
            lca_value[v, pos[v] : pos[v] + size[v]] = value[v]
        n_branches = int(self.branch_child.shape[0])
        rows = np.zeros((n - 1 + n_branches, n), dtype=np.int64)
        rows[: n - 1] = lca_value[1:][:, pos]
        for r, (child, v) in enumerate(
            zip(self.branch_child.tolist(), self.branch_value.tolist(), strict=True)
        ):
            below = np.zeros(n, dtype=np.int64)
            below[pos[child] : pos[child] + size[child]] = v
            rows[n - 1 + r] = below[pos]
        return rows
