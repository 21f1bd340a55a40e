"""Network fees as sums over branches: the form of the fee that scales to any feeder.

A fee table holds one entry per bus pair, ``B**2`` of them: 120 million bytes at 5,477 buses,
far more than a chain can hold. In the *path form* the fee is defined per branch instead:

- every branch ``e`` (a line or a transformer) has an integer fee ``w_e`` in micro-tokens per
  kWh, the scenario's fee per kWh of that branch rounded half up (:func:`branch_fees_micro`);
- the fee of a trade from bus ``p`` to bus ``q`` is ``flat`` plus the least sum of ``w_e``
  over a path from ``p`` to ``q`` (a shortest path on the feeder's graph, loops included).

It differs from the table form of :mod:`gridledger.market.fees`, which rounds each pair's
total, by at most half a micro-token per branch on the path. The scenario chooses the form
(``market.fee_form``); the ledger commits the path form as the data of
:func:`path_layout`, from which a verifier computes any entry with a few memory reads:

- a spanning tree of the feeder rooted at bus 0 (breadth-first, branches in the given order),
  ``D[b]`` the fee along the tree path from the root to ``b``;
- the Euler tour of that tree (children in ascending bus order), ``level[i] = D[tour[i]]`` and
  ``first[b]`` the first position of ``b`` in the tour. Every bus between positions
  ``first[p]`` and ``first[q]`` lies below the tree's lowest common ancestor of ``p`` and
  ``q`` and the ancestor itself is among them, so with non-negative fees its ``D`` is the
  least ``level`` in that range;
- *portals*: the end buses of the branches outside the tree (the chords that close loops),
  ascending, and ``portal_fee[b, s]``, the least path fee from ``b`` to portal ``s``.

``fee(p, q) = flat + min(level[fp] + level[fq] - 2 min(level[fp..fq]),
min_s portal_fee[p, s] + portal_fee[q, s])`` with ``fp, fq = first[p], first[q]`` in either
order. This is the least path fee exactly: a least path that uses no chord lies in the tree
and is the tree path; one that uses a chord passes through a portal ``s``, and then its fee
is the least fee from ``p`` to ``s`` plus that from ``s`` to ``q``; no term is below the
least path fee. The table is symmetric, non-negative and ``flat`` on its diagonal.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from gridledger.errors import ClearingError
from gridledger.market.fees import HOURS_PER_YEAR, check_fee_params, fee_parameter
from gridledger.market.units import MICRO

__all__ = [
    "FEE_FORMS",
    "PathFees",
    "PathLayout",
    "branch_fees_micro",
    "path_fees",
    "sparse_minima",
    "table_from_layout",
]

#: ``market.fee_form``: "table" rounds each pair's fee; "path" sums rounded branch fees;
#: "auto" is "table" up to :data:`TABLE_MAX_BUSES` buses and "path" beyond.
FEE_FORMS = ("auto", "table", "path")
#: The largest feeder whose fee table the chain holds (64 data shards, 4 bytes per entry).
TABLE_MAX_BUSES = 627

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class PathLayout:
    """What a verifier reads to compute path fees (see the module docstring)."""

    first: IntArray  # (B,) first position of each bus in the Euler tour
    level: IntArray  # (2B - 1,) D of the bus at each tour position
    portals: IntArray  # (S,) portal buses, ascending
    portal_fee: IntArray  # (B, S) least path fee from each bus to each portal
    flat: int
    sparse: IntArray | None = None  # (K, 2B - 1) range minima as committed; None: computed


@dataclass(frozen=True, eq=False)
class PathFees:
    """Fees as least path sums of integer branch fees (micro-tokens per kWh), plus ``flat``.

    ``edge_from[e]``, ``edge_to[e]``: the buses of branch ``e`` (0 .. n_buses - 1, bus 0 the
    root); ``edge_fee_micro[e] >= 0`` its fee.
    """

    n_buses: int
    edge_from: IntArray
    edge_to: IntArray
    edge_fee_micro: IntArray
    flat_micro: int = 0

    def __post_init__(self) -> None:
        n = self.edge_from.shape[0]
        if self.edge_to.shape != (n,) or self.edge_fee_micro.shape != (n,):
            message = (
                f"path fees: branch arrays disagree: {self.edge_from.shape}, "
                f"{self.edge_to.shape}, {self.edge_fee_micro.shape}"
            )
            raise ClearingError(message)
        ends = np.concatenate([self.edge_from, self.edge_to])
        if self.n_buses < 1 or (n and (ends.min() < 0 or ends.max() >= self.n_buses)):
            message = f"path fees: branch ends must be buses 0..{self.n_buses - 1}"
            raise ClearingError(message)
        if np.any(self.edge_fee_micro < 0) or self.flat_micro < 0:
            message = "path fees: branch fees and the flat fee must be >= 0"
            raise ClearingError(message)

    @cached_property
    def layout(self) -> PathLayout:
        """The spanning tree's Euler tour and the portals (see the module docstring)."""
        return path_layout(self)

    @cached_property
    def table(self) -> IntArray:
        """The (B, B) fee table, ``fees[seller_bus, buyer_bus]``."""
        return table_from_layout(self.layout)


def path_layout(fees: PathFees) -> PathLayout:
    """Spanning tree, Euler tour and portals of ``fees``' graph."""
    b = fees.n_buses
    adj: list[list[tuple[int, int]]] = [[] for _ in range(b)]
    weights = fees.edge_fee_micro.tolist()
    for e, (u, v) in enumerate(zip(fees.edge_from.tolist(), fees.edge_to.tolist(), strict=True)):
        adj[u].append((v, e))
        adj[v].append((u, e))
    parent = [-1] * b
    depth_fee = [0] * b
    in_tree = [False] * len(weights)
    seen = [False] * b
    seen[0] = True
    queue = deque([0])
    while queue:
        u = queue.popleft()
        for v, e in adj[u]:
            if not seen[v]:
                seen[v] = True
                parent[v] = u
                in_tree[e] = True
                depth_fee[v] = depth_fee[u] + weights[e]
                queue.append(v)
    if not all(seen):
        missing = [k for k in range(b) if not seen[k]][:10]
        message = f"path fees: buses {missing} cannot be reached from bus 0"
        raise ClearingError(message)
    tour = _euler_tour(parent)
    first = np.full(b, -1, dtype=np.int64)
    for pos, node in enumerate(tour):
        if first[node] < 0:
            first[node] = pos
    chords = [e for e, kept in enumerate(in_tree) if not kept]
    ends = {int(fees.edge_from[e]) for e in chords} | {int(fees.edge_to[e]) for e in chords}
    portals = sorted(ends)
    portal_fee = np.zeros((b, len(portals)), dtype=np.int64)
    for s, bus in enumerate(portals):
        portal_fee[:, s] = _least_fees(adj, weights, bus)
    return PathLayout(
        first=first,
        level=np.asarray([depth_fee[n] for n in tour], dtype=np.int64),
        portals=np.asarray(portals, dtype=np.int64),
        portal_fee=portal_fee,
        flat=int(fees.flat_micro),
    )


def _euler_tour(parent: list[int]) -> list[int]:
    """Buses in Euler-tour order (2B - 1 entries), children visited in ascending order."""
    children: list[list[int]] = [[] for _ in parent]
    for node, up in enumerate(parent):
        if up >= 0:
            children[up].append(node)
    tour = [0]
    stack = [(0, iter(children[0]))]
    while stack:
        node, rest = stack[-1]
        child = next(rest, None)
        if child is None:
            stack.pop()
            if stack:
                tour.append(stack[-1][0])
        else:
            tour.append(child)
            stack.append((child, iter(children[child])))
    return tour


def _least_fees(adj: list[list[tuple[int, int]]], weights: list[int], source: int) -> list[int]:
    """Least path fee from ``source`` to every bus (Dijkstra on integers)."""
    best = [-1] * len(adj)
    heap = [(0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if best[u] >= 0:
            continue
        best[u] = d
        for v, e in adj[u]:
            if best[v] < 0:
                heapq.heappush(heap, (d + weights[e], v))
    return best


def sparse_minima(level: IntArray) -> IntArray:
    """Sparse table ``T[k, i] = min(level[i : i + 2**k])`` for ``i <= E - 2**k`` (else 0),
    ``K = E.bit_length()`` rows of ``E`` entries."""
    e = int(level.shape[0])
    rows = [level.astype(np.int64)]
    for k in range(1, e.bit_length()):
        prev = rows[-1]
        half = 1 << (k - 1)
        row = np.zeros(e, dtype=np.int64)
        n = e - (1 << k) + 1
        row[:n] = np.minimum(prev[:n], prev[half : half + n])
        rows.append(row)
    return np.vstack(rows)


def table_from_layout(layout: PathLayout) -> IntArray:
    """Every pair's fee by the verifier's formula (module docstring), row by row.

    The range minima are ``layout.sparse`` when given (committed data: whatever its rows
    hold, a tree fee below 0 taken as 0, as contracts/PathFees.sol computes it), else
    computed from the levels."""
    first = layout.first
    b = first.shape[0]
    table = sparse_minima(layout.level) if layout.sparse is None else layout.sparse
    log2 = np.zeros(layout.level.shape[0] + 1, dtype=np.int64)
    for k in range(1, table.shape[0]):
        log2[1 << k :] += 1
    out = np.empty((b, b), dtype=np.int64)
    level_at = layout.level[first]
    for p in range(b):
        lo = np.minimum(first, first[p])
        hi = np.maximum(first, first[p])
        k = log2[hi - lo + 1]
        low = np.minimum(table[k, lo], table[k, hi - (1 << k) + 1])
        row = np.maximum(level_at + level_at[p] - 2 * low, 0)
        if layout.portals.shape[0]:
            row = np.minimum(row, (layout.portal_fee + layout.portal_fee[p]).min(axis=1))
        out[p] = row + layout.flat
    return out


def branch_fees_micro(
    method: str,
    params: Mapping[str, float | str] | None,
    *,
    edge_km: npt.ArrayLike,
    edge_ohm: npt.ArrayLike,
    edge_is_line: npt.ArrayLike,
    edge_rating_kw: npt.ArrayLike,
    meshed: bool,
) -> tuple[IntArray, int]:
    """Per-branch fees and the flat fee in micro-tokens per kWh, rounded half up.

    The methods of :mod:`gridledger.market.fees` that are sums along a path: ``none``,
    ``flat`` (every trade pays ``gamma_u``), ``distance`` with metric ``km`` or ``ohm`` (any
    feeder) or ``ptdf`` (radial feeders: the number of lines), ``mw_mile`` (radial feeders:
    ``C_l / F_l`` per line). ``zonal`` and the PTDF-based fees of a meshed feeder are not sums
    along a path and raise :class:`ClearingError`.
    """
    params = check_fee_params(method, params)
    km = np.asarray(edge_km, dtype=np.float64)
    zero = np.zeros(km.shape[0])
    flat = 0.0
    if method == "none":
        per_kwh = zero
    elif method == "flat":
        per_kwh, flat = zero, fee_parameter(method, params, "gamma_u")
    elif method == "distance":
        gamma_d = fee_parameter(method, params, "gamma_d")
        metric = params.get("metric", "km")
        if metric == "ptdf" and not meshed:
            per_kwh = gamma_d * np.asarray(edge_is_line, dtype=np.float64)
        elif metric in ("km", "ohm"):
            per_kwh = gamma_d * (km if metric == "km" else np.asarray(edge_ohm, dtype=np.float64))
        else:
            message = _not_a_path_sum(f"distance with metric {metric!r}", meshed)
            raise ClearingError(message)
    elif method == "mw_mile" and not meshed:
        key = "cost_per_km_year" if "cost_per_km_year" in params else "cost_per_km_hour"
        cost = fee_parameter(method, params, key)
        per_km_hour = cost / HOURS_PER_YEAR if key == "cost_per_km_year" else cost
        rating = np.asarray(edge_rating_kw, dtype=np.float64)
        lines = np.asarray(edge_is_line, dtype=bool)
        per_kwh = np.where(lines, per_km_hour * km / np.where(lines, rating, 1.0), 0.0)
    else:
        raise ClearingError(_not_a_path_sum(method, meshed))
    if not np.all(np.isfinite(per_kwh)) or np.any(per_kwh < 0):
        message = f"path fees {method!r}: branch fees must be finite and >= 0"
        raise ClearingError(message)
    micro = np.floor(per_kwh * MICRO + 0.5).astype(np.int64)
    return micro, int(np.floor(flat * MICRO + 0.5))


def _not_a_path_sum(what: str, meshed: bool) -> str:
    where = "on a meshed feeder " if meshed else ""
    return (
        f"network fee {what} {where}is not a sum over the branches of a path, so it has no "
        'path form (market.fee_form = "path", or "auto" past '
        f"{TABLE_MAX_BUSES} buses): use distance with metric km or ohm, flat or none"
    )


def path_fees(
    method: str,
    params: Mapping[str, float | str] | None,
    *,
    n_buses: int,
    edge_from: npt.ArrayLike,
    edge_to: npt.ArrayLike,
    edge_km: npt.ArrayLike,
    edge_ohm: npt.ArrayLike,
    edge_is_line: npt.ArrayLike,
    edge_rating_kw: npt.ArrayLike,
) -> PathFees:
    """The path-form fees of a feeder (branches in any order; loops allowed)."""
    ends = (np.asarray(edge_from, dtype=np.int64), np.asarray(edge_to, dtype=np.int64))
    meshed = ends[0].shape[0] != n_buses - 1
    micro, flat = branch_fees_micro(
        method,
        params,
        edge_km=edge_km,
        edge_ohm=edge_ohm,
        edge_is_line=edge_is_line,
        edge_rating_kw=edge_rating_kw,
        meshed=meshed,
    )
    return PathFees(n_buses, ends[0], ends[1], micro, flat)
