"""The committed network of a large meshed feeder: spanning tree plus loop correction.

A meshed feeder's dense network (one int32 per row and bus) fills the 64 data contracts a
network may span at 443 buses. Past that, the DSO commits its breadth-first spanning tree
in the radial tree form (one value per bus and per branch) and, for each loop-closing
branch (chord), one complex number per bus and per row, as integers: the correction of rank
k = number of loops that turns the tree's model into the meshed one exactly (the Woodbury
identity; the derivation is in :mod:`gridledger.market.loops`). The relief the chain then
computes differs from the dense form's by at most two units per entry (each form rounds
separately; ``tests/security/test_meshed_network.py``).

Quantities (p.u. on ``net.sn_mva``; ``z`` = r + jx of each branch, ``c`` = npct per Wh per
p.u. of shared resistance, as :func:`~gridledger.security.justification.linear_network`):

- ``zpath[v]``: impedance of the tree path from the substation to ``v``, and
  ``Z_tree[j, v] = zpath[lca(j, v)]``;
- ``W[:, l] = Z_tree[:, f_l] - Z_tree[:, t_l]`` for chord ``l`` from ``f_l`` to ``t_l``;
- ``M = diag(z_chord) + A^T W`` and ``h_b = M^-1 W[b]^T``: the chords' currents per unit
  injected at ``b``;
- row vectors ``g``: bus row ``j``: ``-c W[j]``; tree branch from parent ``p`` to child
  ``u``: ``-(W[u] - W[p]) / z * (per_wh / rating)`` (upward flow); chord ``l``:
  ``e_l * per_wh / rating``.

Both vector sets are scaled to int32 by powers of two chosen from their largest entries;
the sum of the two exponents is the committed shift.
"""

from __future__ import annotations

import math

import numpy as np

from gridledger.errors import SecurityError
from gridledger.grid.catalogue import Feeder
from gridledger.grid.distances import branch_impedances
from gridledger.market.justification import LinearNetwork, linear_network_from_tree
from gridledger.market.loops import LoopCorrection
from gridledger.market.radial import RadialTree

__all__ = ["looped_network"]

SQRT3 = math.sqrt(3.0)
VECTOR_BITS = 30
"""Entries of the integer loop vectors stay below 2**30 in magnitude (int32 with room)."""


def _ratings_kva(feeder: Feeder) -> np.ndarray:
    """Rating of every branch row (lines: sqrt(3) V_n I_max, transformers S_n)."""
    parts = [SQRT3 * feeder.line_vn_kv * feeder.line_max_i_ka * 1000.0]
    if feeder.n_trafos:
        parts.append(np.asarray(feeder.trafo_sn_kva, dtype=float))
    return np.concatenate(parts)


def _tree_columns(parent: np.ndarray, order: np.ndarray, zpath: np.ndarray, bus: int) -> np.ndarray:
    """``Z_tree[:, bus]``: the path impedance of every bus's lowest common ancestor with
    ``bus``."""
    on_path = np.zeros(parent.shape[0], dtype=bool)
    v = bus
    on_path[0] = True
    while v != 0:
        on_path[v] = True
        v = int(parent[v])
    top = np.zeros(parent.shape[0], dtype=np.int64)
    for j in order[1:].tolist():
        top[j] = j if on_path[j] else top[int(parent[j])]
    return np.asarray(zpath[top])


def _scale(vectors: np.ndarray) -> tuple[np.ndarray, int]:
    """``vectors`` as integers times ``2**exponent``, the largest entry below 2**30."""
    largest = float(np.abs(vectors).max(initial=0.0))
    exponent = (
        VECTOR_BITS - 1 if largest == 0.0 else VECTOR_BITS - 1 - math.ceil(math.log2(largest))
    )
    return np.rint(np.ldexp(vectors, exponent)).astype(np.int64), exponent


def looped_network(feeder: Feeder, v0_pu: float, per_wh: float, interval_s: int) -> LinearNetwork:
    """The meshed ``feeder``'s network as spanning tree plus loop correction (data version 3).

    ``per_wh`` converts percent per kW into npct per Wh of one interval, as the dense form.
    """
    tree = feeder.tree
    chords = tree.chords()
    if not chords:
        msg = f"looped_network: feeder {feeder.name!r} is radial (no loop to correct)"
        raise SecurityError(msg)
    imp = branch_impedances(feeder)
    z = imp.r_pu + 1j * imp.x_pu
    parent = np.where(tree.parent < 0, 0, tree.parent).astype(np.int64)
    n = tree.n_buses
    zpath = np.zeros(n, dtype=complex)
    for v in tree.order[1:].tolist():
        zpath[v] = zpath[parent[v]] + z[int(tree.parent_edge[v])]
    ends = [(int(tree.edge_from[e]), int(tree.edge_to[e])) for e in chords]
    w = np.stack(
        [
            _tree_columns(parent, tree.order, zpath, f)
            - _tree_columns(parent, tree.order, zpath, t)
            for f, t in ends
        ],
        axis=1,
    )  # (B, k)
    m = np.diag(z[chords]) + np.stack([w[f] - w[t] for f, t in ends])
    h = np.linalg.solve(m, w.T).T  # (B, k): chord currents per unit injected at each bus
    s_base_kw = float(feeder.net.sn_mva) * 1000.0
    c = per_wh / (v0_pu * s_base_kw)
    per_rating = per_wh / _ratings_kva(feeder)
    n_edges = tree.n_edges
    g = np.zeros((n - 1 + n_edges, len(chords)), dtype=complex)
    g[: n - 1] = -c * w[1:]
    child = np.ones(n_edges, dtype=np.int64)  # a chord's row: value 0 under any valid bus
    value = np.zeros(n_edges, dtype=np.int64)
    for u in range(1, n):
        e = int(tree.parent_edge[u])
        child[e] = u
        value[e] = round(per_rating[e])
        g[n - 1 + e] = -(w[u] - w[parent[u]]) / z[e] * per_rating[e]
    for col, e in enumerate(chords):
        g[n - 1 + e, col] = per_rating[e]
    bus_vec, bus_exp = _scale(np.hstack([h.real, h.imag]))
    row_vec, row_exp = _scale(np.hstack([g.real, -g.imag]))
    shift = bus_exp + row_exp
    if not 0 <= shift <= 255:
        msg = f"looped_network: loop vectors of feeder {feeder.name!r} need shift {shift}"
        raise SecurityError(msg)
    bus_value = np.rint(c * zpath.real).astype(np.int64)
    radial = RadialTree(parent, np.asarray(tree.depth, dtype=np.int64), bus_value, child, value)
    loops = LoopCorrection(shift, bus_vec, row_vec)
    return linear_network_from_tree(radial, feeder.n_lines, feeder.n_trafos, interval_s, loops)
