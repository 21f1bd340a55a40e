"""The ranked book of the dynamics: every crossing pair, kept sorted as members move.

A best response needs the others' pairs in the clearing's rank order (surplus
descending, fee, buyer id, seller id; ``market.greedy``). Building and sorting
that list for every reply costs ``O(n_b n_s log)`` per member; here it is built
once per run and kept up to date: when a member moves, its pairs are removed,
its new pairs (one side, ``O(n)``) are sorted among themselves and merged into
the list (``O(P)``). A reply reads the list skipping its own pairs, so it needs
no sorting of the others' book at all. :func:`reply` is the whole exact best
response of :mod:`.kernel` in one numba call: the member's own pairs, the
breakpoints, the snapped candidate prices, their evaluation and the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np

from gridledger.bidding.game.kernel import evaluate_candidates, ranks_above
from gridledger.bidding.game.model import Game, IntArray, Strategy
from gridledger.market.orders import Side

__all__ = ["RankedBook", "Reply"]

Reply = tuple[int, int, float, float, int]
"""(price micro/kWh, quantity Wh, payoff micro, current payoff micro, candidates tried)."""


class _BookArrays(NamedTuple):
    """The book as the kernels read it: members (by index) and the ranked pair list."""

    is_buy: np.ndarray  # bool per member
    mid: IntArray  # member id
    bus: IntArray
    price: IntArray  # micro/kWh
    qty: IntArray  # Wh
    fees: IntArray  # fee micro/kWh, [seller bus, buyer bus]
    pb: IntArray  # buyer index of each pair, in rank order
    ps: IntArray  # seller index of each pair
    psur: IntArray  # pair surplus micro/kWh
    pfee: IntArray  # pair fee micro/kWh


@numba.njit(cache=True)
def _own_pairs(
    i: int,
    is_buy: np.ndarray,
    bus: IntArray,
    price: IntArray,
    qty: IntArray,
    fees: IntArray,
) -> tuple[IntArray, IntArray]:
    """Member ``i``'s crossing pairs as (counterpart index, surplus), any order."""
    n = price.shape[0]
    idx = np.empty(n, dtype=np.int64)
    sur = np.empty(n, dtype=np.int64)
    k = 0
    if qty[i] <= 0:
        return idx[:0], sur[:0]
    for c in range(n):
        if c == i or qty[c] <= 0 or is_buy[c] == is_buy[i]:
            continue
        if is_buy[i]:
            s = price[i] - price[c] - fees[bus[c], bus[i]]
        else:
            s = price[c] - price[i] - fees[bus[i], bus[c]]
        if s >= 1:
            idx[k] = c
            sur[k] = s
            k += 1
    return idx[:k], sur[:k]


@numba.njit(cache=True)
def _counterpart_keys(
    i: int, buyer: bool, c_idx: IntArray, mid: IntArray, bus: IntArray, fees: IntArray
) -> tuple[IntArray, IntArray]:
    """Fee and counterpart member id of member ``i``'s pair with each of ``c_idx``."""
    m = c_idx.shape[0]
    fee = np.empty(m, dtype=np.int64)
    cid = np.empty(m, dtype=np.int64)
    for t in range(m):
        c = c_idx[t]
        fee[t] = fees[bus[c], bus[i]] if buyer else fees[bus[i], bus[c]]
        cid[t] = mid[c]
    return fee, cid


@numba.njit(cache=True)
def _rank_order(key: IntArray, fee: IntArray, cid: IntArray) -> IntArray:
    """Indices sorted by ``key``, then fee, then counterpart id, all ascending (stable passes)."""
    order = np.argsort(cid, kind="mergesort")
    order = order[np.argsort(fee[order], kind="mergesort")]
    return order[np.argsort(key[order], kind="mergesort")]


@numba.njit(cache=True)
def _move(
    i: int,
    book: _BookArrays,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The pair list after member ``i`` moved to ``price[i]``, ``qty[i]``."""
    is_buy, mid, bus, price, qty, fees, pb, ps, psur, pfee = book
    c_idx, c_sur = _own_pairs(i, is_buy, bus, price, qty, fees)
    m = c_idx.shape[0]
    c_fee, c_id = _counterpart_keys(i, bool(is_buy[i]), c_idx, mid, bus, fees)
    order = _rank_order(-c_sur, c_fee, c_id)  # surplus desc
    n_old = pb.shape[0]
    size = n_old + m
    nb = np.empty(size, dtype=np.int64)
    ns = np.empty(size, dtype=np.int64)
    nsur = np.empty(size, dtype=np.int64)
    nfee = np.empty(size, dtype=np.int64)
    a = 0
    t = 0
    k = 0
    while True:
        while a < n_old and (pb[a] == i or ps[a] == i):
            a += 1
        if a >= n_old and t >= m:
            break
        take_new = False
        if t < m:
            c = c_idx[order[t]]
            b_new = i if is_buy[i] else c
            s_new = c if is_buy[i] else i
            if a >= n_old:
                take_new = True
            else:
                take_new = ranks_above(
                    c_sur[order[t]],
                    c_fee[order[t]],
                    mid[b_new],
                    mid[s_new],
                    psur[a],
                    pfee[a],
                    mid[pb[a]],
                    mid[ps[a]],
                )
        if take_new:
            nb[k] = b_new
            ns[k] = s_new
            nsur[k] = c_sur[order[t]]
            nfee[k] = c_fee[order[t]]
            t += 1
        else:
            nb[k] = pb[a]
            ns[k] = ps[a]
            nsur[k] = psur[a]
            nfee[k] = pfee[a]
            a += 1
        k += 1
    return nb[:k], ns[:k], nsur[:k], nfee[:k]


@numba.njit(cache=True)
def _snap(x: int, low: int, top: int, tick: int, up: bool) -> int:
    off = x - low
    steps = -((-off) // tick) if up else off // tick
    return min(max(low + steps * tick, low), top)


@numba.njit(cache=True)
def _reply(
    i: int,
    book: _BookArrays,
    cap: int,
    lin: float,
    quad: float,
    low: int,
    high: int,
    top: int,
    tick: int,
    num: int,
    den: int,
) -> tuple[int, int, float, float, int]:
    """Exact best response of member ``i`` (module docstring of :mod:`.kernel`)."""
    is_buy, mid, bus, price, qty, fees, pb, ps, psur, pfee = book
    n = price.shape[0]
    buyer = bool(is_buy[i])
    me = mid[i]
    my_bus = bus[i]
    cur_p = price[i]
    # my pairs with every counterpart that has an order, sorted by rank (price-free)
    c_idx = np.empty(n, dtype=np.int64)
    n_m = 0
    for c in range(n):
        if c != i and qty[c] > 0 and is_buy[c] != buyer:
            c_idx[n_m] = c
            n_m += 1
    c_idx = c_idx[:n_m]
    m_fee, m_cid = _counterpart_keys(i, buyer, c_idx, mid, bus, fees)
    m_base = np.empty(n_m, dtype=np.int64)
    for t in range(n_m):
        if buyer:
            m_base[t] = price[c_idx[t]] + m_fee[t]  # my surplus = my price - base
        else:
            m_base[t] = price[c_idx[t]] - m_fee[t]  # my surplus = base - my price
    order = _rank_order(m_base if buyer else -m_base, m_fee, m_cid)  # surplus desc
    # the others' pairs, in rank order, and the prices where mine overtake them
    n_p = pb.shape[0]
    o_b = np.empty(n_p, dtype=np.int64)
    o_s = np.empty(n_p, dtype=np.int64)
    o_sur = np.empty(n_p, dtype=np.int64)
    o_fee = np.empty(n_p, dtype=np.int64)
    o_bid = np.empty(n_p, dtype=np.int64)
    o_sid = np.empty(n_p, dtype=np.int64)
    raw = np.empty(n_p + n_m + 2, dtype=np.int64)
    n_o = 0
    for a in range(n_p):
        k = pb[a]
        j = ps[a]
        if k == i or j == i:
            continue
        o_b[n_o] = k
        o_s[n_o] = j
        o_sur[n_o] = psur[a]
        o_fee[n_o] = pfee[a]
        o_bid[n_o] = mid[k]
        o_sid[n_o] = mid[j]
        if buyer:
            c_mine = fees[bus[j], my_bus]
            wins = c_mine < pfee[a] or (c_mine == pfee[a] and me < mid[k])
            raw[n_o] = _snap(price[k] - pfee[a] + c_mine + (0 if wins else 1), low, top, tick, True)
        else:
            c_mine = fees[my_bus, bus[k]]
            wins = c_mine < pfee[a] or (c_mine == pfee[a] and me < mid[j])
            raw[n_o] = _snap(
                price[j] + pfee[a] - c_mine - (0 if wins else 1), low, top, tick, False
            )
        n_o += 1
    n_r = n_o
    for t in range(n_m):
        entry = m_base[t] + 1 if buyer else m_base[t] - 1
        raw[n_r] = _snap(entry, low, top, tick, buyer)
        n_r += 1
    raw[n_r] = _snap(low if buyer else high, low, top, tick, buyer)
    raw[n_r + 1] = _snap(cur_p, low, top, tick, buyer)
    n_r += 2
    n_grid = (top - low) // tick + 1
    if n_grid <= 4 * n_r + 64:  # few grid prices: mark them instead of sorting
        mark = np.zeros(n_grid, dtype=np.bool_)
        for t in range(n_r):
            mark[(raw[t] - low) // tick] = True
        srt = low + np.flatnonzero(mark).astype(np.int64) * tick
    else:
        srt = np.sort(raw[:n_r])
    cand = np.empty(n_r + 1, dtype=np.int64)
    n_c = 0
    inserted = False
    for v in srt:
        if not inserted and cur_p <= v:
            if n_c == 0 or cand[n_c - 1] != cur_p:
                cand[n_c] = cur_p
                n_c += 1
            inserted = True
        if n_c == 0 or cand[n_c - 1] != v:
            cand[n_c] = v
            n_c += 1
    if not inserted and (n_c == 0 or cand[n_c - 1] != cur_p):
        cand[n_c] = cur_p
        n_c += 1
    cand = cand[:n_c]
    at_current = 0
    while cand[at_current] != cur_p:
        at_current += 1
    q, u, u_cur = evaluate_candidates(
        cand,
        buyer,
        me,
        cap,
        lin,
        quad,
        c_idx[order],
        m_base[order],
        m_fee[order],
        m_cid[order],
        o_b[:n_o],
        o_s[:n_o],
        o_sur[:n_o],
        o_fee[:n_o],
        o_bid[:n_o],
        o_sid[:n_o],
        qty,
        qty,
        price,
        num,
        den,
        at_current,
        qty[i],
    )
    top_u = u.max()
    tol = 1e-9 * max(1.0, abs(top_u))
    if top_u <= u_cur + tol:  # the current bid is a best response: keep it
        return cur_p, qty[i], u_cur, u_cur, n_c
    best = -1
    for c in range(n_c):
        if u[c] >= top_u - tol and (best < 0 or abs(cand[c] - cur_p) < abs(cand[best] - cur_p)):
            best = c
    return cand[best], q[best], u[best], u_cur, n_c


class RankedBook:
    """A profile's orders and all its crossing pairs in rank order (module docstring).

    ``fees`` is the table the members reason with (default: the game's).
    """

    def __init__(
        self, game: Game, profile: Sequence[Strategy], fees: IntArray | None = None
    ) -> None:
        self.game = game
        self.fees = np.ascontiguousarray(game.fees if fees is None else fees, dtype=np.int64)
        players = game.players
        self.is_buy = np.array([p.side == Side.BUY for p in players], dtype=np.bool_)
        self.mid = np.array([p.member for p in players], dtype=np.int64)
        self.bus = np.array([p.bus for p in players], dtype=np.int64)
        self.price = np.zeros(len(players), dtype=np.int64)
        self.qty = np.zeros(len(players), dtype=np.int64)
        self.reset(profile)

    def reset(self, profile: Sequence[Strategy]) -> None:
        """Load ``profile`` and rank all its pairs (one full sort)."""
        self.price[:] = [s.price_per_kwh_micro for s in profile]
        self.qty[:] = [s.e_wh for s in profile]
        live = self.qty > 0
        buyers = np.flatnonzero(self.is_buy & live)
        sellers = np.flatnonzero(~self.is_buy & live)
        fee = self.fees[self.bus[sellers][None, :], self.bus[buyers][:, None]]
        sur = self.price[buyers][:, None] - self.price[sellers][None, :] - fee
        kb, js = np.nonzero(sur >= 1)
        b, s = buyers[kb], sellers[js]
        o_sur, o_fee = sur[kb, js], fee[kb, js]
        order = np.lexsort((self.mid[s], self.mid[b], o_fee, -o_sur))
        self.pb = np.ascontiguousarray(b[order], dtype=np.int64)
        self.ps = np.ascontiguousarray(s[order], dtype=np.int64)
        self.psur = np.ascontiguousarray(o_sur[order], dtype=np.int64)
        self.pfee = np.ascontiguousarray(o_fee[order], dtype=np.int64)

    def _arrays(self) -> _BookArrays:
        return _BookArrays(
            self.is_buy,
            self.mid,
            self.bus,
            self.price,
            self.qty,
            self.fees,
            self.pb,
            self.ps,
            self.psur,
            self.pfee,
        )

    @property
    def pairs(self) -> int:
        return int(self.pb.shape[0])

    def move(self, index: int, strategy: Strategy) -> None:
        """Member ``index`` now bids ``strategy``: re-rank its pairs only."""
        self.price[index] = strategy.price_per_kwh_micro
        self.qty[index] = strategy.e_wh
        self.pb, self.ps, self.psur, self.pfee = _move(
            index,
            self._arrays(),
        )

    def reply(self, index: int) -> Reply:
        """Exact best response of member ``index`` to the others' orders in the book."""
        game = self.game
        me = game.players[index]
        price, e_wh, u, u_cur, n_c = _reply(
            index,
            self._arrays(),
            me.cap_wh,
            float(me.lin),
            float(me.quad),
            game.low_micro,
            game.high_micro,
            game.high_top,
            game.tick_micro,
            game.kappa.numerator,
            game.kappa.denominator,
        )
        return int(price), int(e_wh), float(u), float(u_cur), int(n_c)
