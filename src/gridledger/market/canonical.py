"""Canonical tie-break of the welfare-optimal clearing (docs/methods.md §3, "Ties").

Several clearings can reach the same welfare. The rule picks one of them without any
choice left to the operator: among welfare-optimal clearings it takes the one that
minimises the integer penalty

    P = sum_orders w_k * traded_k + sum_(p, q) d_pq * flow_pq,
    w_k  = member id + 1                          (order weight, <= 2**32)
    d_pq = 2**34 * B**p * (q + 1)                 (bus-pair weight; B buses in the fee table,
                                                   seller bus p, buyer bus q)

and splits the bus-pair flows into member trades by the north-west-corner rule
(:func:`nw_pieces`). The optimum of this lexicographic problem (welfare first, then
``P``) is unique: see the docs for the proof. The chain checks it with two dual
certificates: the welfare duals, and duals of the penalty problem on the welfare-optimal
face (:func:`check_canonical` is the Python mirror of that check).

Everything here is exact integer arithmetic on a small bus-level network: node 0 is the
ground, then one node per seller bus and per buyer bus; arcs are the orders (ground ->
seller bus, buyer bus -> ground, capacity = order Wh) and the bus pairs (seller bus ->
buyer bus, uncapacitated). Costs are per Wh in the min-cost sense (sellers ``a``, buyers
``-b``, pairs ``c``). :func:`canonical_flow` starts from any welfare optimum with its bus
prices, keeps the arcs whose welfare reduced cost is zero (the optimal face), cancels
negative-penalty cycles there and returns the canonical flow with penalty potentials that
certify it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ClearingError
from gridledger.market.orders import Bid, Side, Trade

__all__ = [
    "CHAIN_MAX_BUSES",
    "PAIR_UNIT",
    "CanonicalFlow",
    "buyer_queue_key",
    "canonical_flow",
    "check_canonical",
    "member_weight",
    "nw_pieces",
    "pair_weight",
    "seller_queue_key",
    "tie_duals",
    "tie_penalty",
]

PAIR_UNIT = 1 << 34
# Largest fee table the chain checks the optimal rule for: d_pq < 2**34 * 36**36 < 2**221
# keeps the penalty duals well inside a signed 256-bit word.
CHAIN_MAX_BUSES = 36

IntArray = npt.NDArray[np.int64]


def member_weight(member: int) -> int:
    """Tie-break weight of an order per Wh traded (smaller ids trade first)."""
    return member + 1


def pair_weight(seller_bus: int, buyer_bus: int, n_buses: int) -> int:
    """Tie-break weight of a bus pair per Wh: ``2**34 * n_buses**seller_bus * (buyer_bus + 1)``
    (``n_buses``: buses of the fee table)."""
    return PAIR_UNIT * n_buses**seller_bus * (buyer_bus + 1)


def tie_penalty(buyer: Bid, seller: Bid, n_buses: int) -> int:
    """Penalty per Wh of a trade between ``buyer`` and ``seller``: ``w_i + w_j + d_pq``."""
    return (
        member_weight(buyer.member)
        + member_weight(seller.member)
        + pair_weight(seller.bus, buyer.bus, n_buses)
    )


@dataclass(slots=True)
class _Arc:
    tail: int
    head: int
    cap: int | None  # None: uncapacitated
    cost: int  # welfare cost per Wh (min form)
    tie: int  # penalty per Wh
    flow: int


@dataclass(frozen=True, slots=True)
class CanonicalFlow:
    """Canonical order volumes and bus-pair flows (Wh) with certifying bus potentials.

    ``welfare_seller_price`` / ``welfare_buyer_price`` are the welfare bus prices used
    (micro-tokens per kWh); ``seller_price`` / ``buyer_price`` the potentials of the penalty
    problem on the welfare-optimal face (ground at 0).
    """

    seller_wh: dict[int, int]
    buyer_wh: dict[int, int]
    pair_wh: dict[tuple[int, int], int]
    seller_price: dict[int, int]
    buyer_price: dict[int, int]
    welfare_seller_price: dict[int, int]
    welfare_buyer_price: dict[int, int]


def _residual(arcs: Sequence[_Arc]) -> list[tuple[int, int, int, int]]:
    """Residual edges (from, to, arc index, direction +1/-1)."""
    out = []
    for k, a in enumerate(arcs):
        if a.cap is None or a.flow < a.cap:
            out.append((a.tail, a.head, k, 1))
        if a.flow > 0:
            out.append((a.head, a.tail, k, -1))
    return out


def _pred_cycle(
    pred: Sequence[tuple[int, int, int] | None], start: int
) -> list[tuple[int, int]] | None:
    """A cycle of the predecessor graph reached from ``start`` (always negative), or None."""
    seen: set[int] = set()
    node = start
    while node not in seen:
        seen.add(node)
        step = pred[node]
        if step is None:
            return None
        node = step[0]
    cycle: list[tuple[int, int]] = []
    cur = node
    while True:
        step = pred[cur]
        assert step is not None
        cycle.append((step[1], step[2]))
        cur = step[0]
        if cur == node:
            return cycle


def _passes_cycle(
    n_nodes: int, out: Sequence[Sequence[tuple[int, int, int, int]]]
) -> list[tuple[int, int]]:
    """A negative cycle by plain Bellman-Ford passes (the queue's safety net)."""
    dist = [0] * n_nodes
    pred: list[tuple[int, int, int] | None] = [None] * n_nodes
    for _ in range(n_nodes + 1):
        last = -1
        for u in range(n_nodes):
            for v, k, s, w in out[u]:
                if dist[u] + w < dist[v]:
                    dist[v] = dist[u] + w
                    pred[v] = (u, k, s)
                    last = v
        if last < 0:
            raise ClearingError("optimal clearing: internal error, no negative cycle found")
    cycle = _pred_cycle(pred, last)
    if cycle is None:
        raise ClearingError("optimal clearing: internal error, no negative cycle found")
    return cycle


def _bellman_ford(
    n_nodes: int, arcs: Sequence[_Arc], weight: str
) -> tuple[list[int], list[tuple[int, int]] | None]:
    """Potentials ``d`` with ``weight + d[from] - d[to] >= 0`` on every residual edge, or a
    negative cycle as (arc index, direction) steps (queue-based Bellman-Ford from a virtual
    source joined to every node at zero cost)."""
    out: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n_nodes)]
    for u, v, k, s in _residual(arcs):
        out[u].append((v, k, s, s * getattr(arcs[k], weight)))
    dist = [0] * n_nodes
    pred: list[tuple[int, int, int] | None] = [None] * n_nodes
    count = [0] * n_nodes
    queue = deque(range(n_nodes))
    queued = [True] * n_nodes
    budget = n_nodes * (sum(len(edges) for edges in out) + 1)  # plain Bellman-Ford's bound
    while queue:
        u = queue.popleft()
        queued[u] = False
        du = dist[u]
        for v, k, s, w in out[u]:
            if du + w < dist[v]:
                dist[v] = du + w
                pred[v] = (u, k, s)
                count[v] += 1
                budget -= 1
                if count[v] % n_nodes == 0 or budget <= 0:
                    cycle = _pred_cycle(pred, v)
                    if cycle is not None:
                        return dist, cycle
                    if budget <= 0:
                        return dist, _passes_cycle(n_nodes, out)
                if not queued[v]:
                    queued[v] = True
                    queue.append(v)
    return dist, None


def _cancel(n_nodes: int, arcs: list[_Arc]) -> list[int]:
    """Cancel negative-penalty cycles on ``arcs``; returns certifying penalty potentials."""
    while True:
        dist, cycle = _bellman_ford(n_nodes, arcs, "tie")
        if cycle is None:
            return dist
        room = []
        for k, s in cycle:
            a = arcs[k]
            if s < 0:
                room.append(a.flow)
            elif a.cap is not None:
                room.append(a.cap - a.flow)
        if not room:
            raise ClearingError("optimal clearing: unbounded tie-break cycle")
        push = min(room)
        for k, s in cycle:
            arcs[k].flow += s * push


def _network(
    buys: Sequence[Bid],
    sells: Sequence[Bid],
    fees: IntArray,
    seller_wh: dict[int, int],
    buyer_wh: dict[int, int],
    pair_wh: dict[tuple[int, int], int],
) -> tuple[dict[int, int], dict[int, int], list[_Arc]]:
    ps = sorted({s.bus for s in sells})
    qs = sorted({b.bus for b in buys})
    node_p = {p: 1 + k for k, p in enumerate(ps)}
    node_q = {q: 1 + len(ps) + k for k, q in enumerate(qs)}
    arcs = [
        _Arc(0, node_p[s.bus], s.e_wh, s.price_per_kwh_micro, member_weight(s.member), 0)
        for s in sells
    ]
    arcs += [
        _Arc(node_q[b.bus], 0, b.e_wh, -b.price_per_kwh_micro, member_weight(b.member), 0)
        for b in buys
    ]
    for s, a in zip(sells, arcs, strict=False):
        a.flow = seller_wh.get(s.member, 0)
    for b, a in zip(buys, arcs[len(sells) :], strict=True):
        a.flow = buyer_wh.get(b.member, 0)
    for p in ps:
        for q in qs:
            flow = pair_wh.get((p, q), 0)
            weight = pair_weight(p, q, len(fees))
            arcs.append(_Arc(node_p[p], node_q[q], None, int(fees[p, q]), weight, flow))
    return node_p, node_q, arcs


def _potentials_ok(arcs: Sequence[_Arc], phi: Sequence[int]) -> bool:
    """Exact welfare optimality of the arc flows under node prices ``phi``."""
    for a in arcs:
        r = a.cost + phi[a.tail] - phi[a.head]
        if a.flow < 0 or (a.cap is not None and a.flow > a.cap):
            return False
        if (r > 0 and a.flow != 0) or (r < 0 and a.flow != a.cap):
            return False
    return True


def canonical_flow(
    buys: Sequence[Bid],
    sells: Sequence[Bid],
    fees: IntArray,
    start: tuple[dict[int, int], dict[int, int], dict[tuple[int, int], int]],
    prices: tuple[dict[int, int], dict[int, int]],
) -> CanonicalFlow:
    """The canonical clearing's volumes and bus flows, from a welfare optimum ``start``
    (seller Wh, buyer Wh, bus-pair Wh by member / (p, q)) and bus prices ``prices``
    (seller bus, buyer bus; welfare units). Prices that do not certify ``start`` exactly
    (e.g. a floating-point dual) are replaced by shortest-path potentials; a ``start``
    that is not welfare-optimal raises :class:`ClearingError`.
    """
    node_p, node_q, arcs = _network(buys, sells, fees, *start)
    n_nodes = 1 + len(node_p) + len(node_q)
    phi = [0] * n_nodes
    for p, node in node_p.items():
        phi[node] = prices[0].get(p, 0)
    for q, node in node_q.items():
        phi[node] = prices[1].get(q, 0)
    balance = [0] * n_nodes
    for a in arcs:
        balance[a.tail] -= a.flow
        balance[a.head] += a.flow
    if any(balance):
        raise ClearingError("optimal clearing: the LP flow does not balance at every bus")
    if not _potentials_ok(arcs, phi):
        dist, cycle = _bellman_ford(n_nodes, arcs, "cost")
        if cycle is not None:
            raise ClearingError("optimal clearing: the LP solution is not welfare-optimal")
        phi = [d - dist[0] for d in dist]
    face = [a for a in arcs if a.cost + phi[a.tail] - phi[a.head] == 0]
    tie = _cancel(n_nodes, face)
    tie = [t - tie[0] for t in tie]
    sells_wh = {s.member: a.flow for s, a in zip(sells, arcs, strict=False)}
    buys_wh = {b.member: a.flow for b, a in zip(buys, arcs[len(sells) :], strict=False)}
    pair_arcs = arcs[len(sells) + len(buys) :]
    flows = {}
    k = 0
    for p in node_p:
        for q in node_q:
            if pair_arcs[k].flow:
                flows[p, q] = pair_arcs[k].flow
            k += 1
    return CanonicalFlow(
        seller_wh=sells_wh,
        buyer_wh=buys_wh,
        pair_wh=flows,
        seller_price={p: tie[n] for p, n in node_p.items()},
        buyer_price={q: tie[n] for q, n in node_q.items()},
        welfare_seller_price={p: phi[n] for p, n in node_p.items()},
        welfare_buyer_price={q: phi[n] for q, n in node_q.items()},
    )


def seller_queue_key(bid: Bid) -> tuple[int, int]:
    """Order of sellers at a bus in the pairing: ask ascending, then id."""
    return (bid.price_per_kwh_micro, bid.member)


def buyer_queue_key(bid: Bid) -> tuple[int, int]:
    """Order of buyers at a bus in the pairing: bid descending, then id."""
    return (-bid.price_per_kwh_micro, bid.member)


def nw_pieces(
    buys: Sequence[Bid], sells: Sequence[Bid], flow: CanonicalFlow
) -> list[tuple[Bid, Bid, int]]:
    """Split the bus-pair flows into (buyer, seller, Wh) pieces, north-west-corner style.

    Bus pairs are taken in (seller bus, buyer bus) order; at each bus the traded orders
    are used up one after the other in queue order (sellers by ask then id, buyers by
    bid descending then id), and each piece is the minimum of what is left of the pair
    flow, the seller head and the buyer head.
    """
    seller_queue: dict[int, list[list[object]]] = {}
    for s in sorted(sells, key=seller_queue_key):
        if flow.seller_wh.get(s.member, 0):
            seller_queue.setdefault(s.bus, []).append([s, flow.seller_wh[s.member]])
    buyer_queue: dict[int, list[list[object]]] = {}
    for b in sorted(buys, key=buyer_queue_key):
        if flow.buyer_wh.get(b.member, 0):
            buyer_queue.setdefault(b.bus, []).append([b, flow.buyer_wh[b.member]])
    pieces: list[tuple[Bid, Bid, int]] = []
    for (p, q), total in sorted(flow.pair_wh.items()):
        need = total
        while need:
            s_head, b_head = seller_queue[p][0], buyer_queue[q][0]
            left_s, left_b = int(s_head[1]), int(b_head[1])  # type: ignore[call-overload]
            e_wh = min(need, left_s, left_b)
            seller, buyer = s_head[0], b_head[0]
            assert isinstance(seller, Bid) and isinstance(buyer, Bid)
            pieces.append((buyer, seller, e_wh))
            need -= e_wh
            s_head[1] = left_s - e_wh
            b_head[1] = left_b - e_wh
            if left_s == e_wh:
                seller_queue[p].pop(0)
            if left_b == e_wh:
                buyer_queue[q].pop(0)
    return pieces


def tie_duals(
    buys: Sequence[Bid], sells: Sequence[Bid], flow: CanonicalFlow
) -> tuple[dict[int, int], dict[int, int]]:
    """Duals of the penalty problem on the welfare-optimal face, per buyer and seller.

    Orders above (buyers) or below (sellers) their bus's welfare price are full in every
    optimum: their dual is the exact, possibly negative, reduced value ``-w - potential``;
    marginal orders get ``max(0, .)``; orders off the face get 0.
    """
    buyer: dict[int, int] = {}
    for b in buys:
        rho = flow.welfare_buyer_price[b.bus]
        value = -member_weight(b.member) - flow.buyer_price[b.bus]
        if b.price_per_kwh_micro > rho:
            buyer[b.member] = value
        else:
            buyer[b.member] = max(0, value) if b.price_per_kwh_micro == rho else 0
    seller: dict[int, int] = {}
    for s in sells:
        pi = flow.welfare_seller_price[s.bus]
        value = flow.seller_price[s.bus] - member_weight(s.member)
        if s.price_per_kwh_micro < pi:
            seller[s.member] = value
        else:
            seller[s.member] = max(0, value) if s.price_per_kwh_micro == pi else 0
    return buyer, seller


def _bounds(
    bids: Sequence[Bid], welfare: Mapping[int, int], tie: Mapping[int, int]
) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """Per bus: lexicographic max over buyers of (b - u, -w - u') and min over sellers of
    (a + v, w + v')."""
    top: dict[int, tuple[int, int]] = {}
    bottom: dict[int, tuple[int, int]] = {}
    for b in bids:
        w, u, v = member_weight(b.member), welfare.get(b.member, 0), tie.get(b.member, 0)
        if b.side == Side.BUY:
            x = (b.price_per_kwh_micro - u, -w - v)
            top[b.bus] = max(top.get(b.bus, x), x)
        else:
            y = (b.price_per_kwh_micro + u, w + v)
            bottom[b.bus] = min(bottom.get(b.bus, y), y)
    return top, bottom


def check_canonical(
    bids: Sequence[Bid],
    fees: IntArray,
    trades: Sequence[Trade],
    welfare_dual: Mapping[int, int],
    tie_dual: Mapping[int, int],
) -> list[tuple[str, int]]:
    """The chain's canonical-optimum checks in Python; ``[]`` when ``trades`` is canonical.

    ``welfare_dual`` / ``tie_dual``: per member (buyers and sellers) the welfare dual and
    the penalty dual. Each problem is ``(check, index)``: ``"welfare"`` for a failure of
    the welfare certificate (the chain's older named errors), otherwise as in
    ``NonCanonicalOptimum(check, index)`` of contracts/FeeClearing.sol: ``"slackness"`` (0)
    trade ``index``, ``"fill"`` (1) bid ``index``, ``"dual"`` (2) bus pair ``p << 16 | q``,
    ``"pairing"`` (3) trade ``index`` (:func:`nw_pieces` order).
    """
    n_buses = len(fees)
    problems: list[tuple[str, int]] = []
    order = {b.member: b for b in bids}
    traded: dict[int, int] = {}
    for t in trades:
        traded[t.buyer] = traded.get(t.buyer, 0) + t.e_wh
        traded[t.seller] = traded.get(t.seller, 0) + t.e_wh
    heads: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    prev_pair: tuple[int, int] | None = None
    prev_exhausted = True
    for k, t in enumerate(trades):
        buyer, seller = order[t.buyer], order[t.seller]
        fee = int(fees[seller.bus, buyer.bus])
        s = buyer.price_per_kwh_micro - seller.price_per_kwh_micro - fee
        if welfare_dual.get(t.buyer, 0) + welfare_dual.get(t.seller, 0) != s:
            problems.append(("welfare", k))
        if tie_dual.get(t.buyer, 0) + tie_dual.get(t.seller, 0) != -tie_penalty(
            buyer, seller, n_buses
        ):
            problems.append(("slackness", k))
        pair = (seller.bus, buyer.bus)
        ok = prev_pair is None or pair > prev_pair or (pair == prev_pair and prev_exhausted)
        exhausted = False
        for side, bid, key in (
            (1, seller, seller_queue_key(seller)),
            (0, buyer, buyer_queue_key(buyer)),
        ):
            last = heads.get((side, bid.bus))
            if last is not None and last[1] > 0:
                ok = ok and last[0] == key
                left = last[1]
            else:
                ok = ok and (last is None or key > last[0])
                left = traded[bid.member]
            heads[side, bid.bus] = (key, left - t.e_wh)
            exhausted = exhausted or left == t.e_wh
        if not ok:
            problems.append(("pairing", k))
        prev_pair, prev_exhausted = pair, exhausted
    for k, b in enumerate(bids):
        full = traded.get(b.member, 0) == b.e_wh
        u, tie = welfare_dual.get(b.member, 0), tie_dual.get(b.member, 0)
        if u < 0 or (u and not full):
            problems.append(("welfare", k))
        if (tie and not full) or (tie < 0 and u == 0):
            problems.append(("fill", k))
    top, bottom = _bounds(bids, welfare_dual, tie_dual)
    for p in sorted(bottom):
        for q in sorted(top):
            excess = top[q][0] - bottom[p][0] - int(fees[p, q])
            if excess > 0:
                problems.append(("welfare", (p << 16) | q))
            elif excess == 0 and top[q][1] - bottom[p][1] > pair_weight(p, q, n_buses):
                problems.append(("dual", (p << 16) | q))
    return problems
