"""Numba kernels of the exact best response: one member's trades and payoff per candidate price.

Exact best response
-------------------
The clearing outcome depends only on how each candidate pair ranks against the
pairs that share a member with it (greedy b-matching: the quantity of a pair is
``min`` of both members' residuals after their higher-ranked pairs). Moving
member ``i``'s price shifts all of ``i``'s pair surpluses equally, so ``i``'s
allocation can only change where one of its pairs (a) appears (surplus reaches
1 micro) or (b) crosses a pair of another member with the same counterpart
(tie-breaks included: fee, then member ids). Between two such breakpoints the
allocation is fixed and the price paid/received is monotone in ``i``'s own
price, so a buyer's best price in a segment is its lowest, a seller's its
highest grid price. The best response enumerates these O(n m) breakpoints
(snapped to the tick grid), clears the market once per breakpoint with a
numba kernel equivalent to ``clear_greedy`` (property-tested against it; the
others' part of the run before the member's first pair is shared by all
candidates, :func:`evaluate_candidates`), and
picks the quantity exactly: ``i``'s trades with quantity ``q`` are the first
``q`` Wh of its trades at full cap (the greedy run is identical until ``i`` is
exhausted) and marginal prices are monotone along them, so the optimum is
where marginal utility (cost) meets the marginal price, in whole Wh.
The result is the exact best response on the tick grid x whole Wh.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gridledger.bidding.game.model import FloatArray, IntArray

__all__ = ["evaluate_candidates", "ranks_above"]


# ---------------------------------------------------------------------------
# numba kernel: player i's trades for candidate prices, exact greedy order


@numba.njit(cache=True)
def ranks_above(s1: int, f1: int, b1: int, j1: int, s2: int, f2: int, b2: int, j2: int) -> bool:
    """Pair key 1 ranks above pair key 2 (surplus desc, fee asc, buyer id, seller id)."""
    if s1 != s2:
        return s1 > s2
    if f1 != f2:
        return f1 < f2
    if b1 != b2:
        return b1 < b2
    return j1 < j2


@numba.njit(cache=True)
def _fill_other(b_rem: IntArray, s_rem: IntArray, k: int, j: int) -> None:
    """Clear another pair (buyer ``k``, seller ``j``) at the min of both residuals, in place."""
    x = min(b_rem[k], s_rem[j])
    if x > 0:
        b_rem[k] -= x
        s_rem[j] -= x


@numba.njit(cache=True)
def _best_quantity(
    e: IntArray, price: IntArray, n: int, cap: int, is_buyer: bool, lin: float, quad: float
) -> tuple[int, float]:
    """Best prefix quantity (Wh) of ``n`` trades and its payoff (micro-tokens).

    Marginal prices are monotone along the trades and the value is concave, so
    the optimum lies where marginal value meets marginal price; whole Wh are
    checked either side.
    """
    best_q = 0
    best_u = 0.0
    done = 0
    money = 0.0  # paid (buyer) or received (seller), micro-tokens
    for t in range(n):
        x = min(e[t], cap - done)
        if x <= 0:
            break
        pr = price[t] / 1000.0  # micro per Wh
        # continuous optimum within [done, done + x]; value'(w) in micro per Wh
        if is_buyer:
            # d/dw [lin*w/1000 - quad/2 (w/1000)^2] * 1e6 = 1000 lin - quad w
            if quad > 0:
                w_star = (1000.0 * lin - pr) / quad * 1.0
            else:
                w_star = 1e300 if 1000.0 * lin > pr else -1e300
        else:
            # received pr per Wh; cost'(w) = (2 quad w/1000 + lin) * 1000 micro per Wh
            if quad > 0:
                w_star = (pr - 1000.0 * lin) / (2.0 * quad)
            else:
                w_star = 1e300 if pr > 1000.0 * lin else -1e300
        lo = float(done)
        hi = float(done + x)
        w_c = min(max(w_star, lo), hi)
        for w_try in (math.floor(w_c), math.ceil(w_c)):
            w = int(min(max(w_try, done), done + x))
            d = w - done
            kwh = w / 1000.0
            if is_buyer:
                u = 1e6 * (lin * kwh - 0.5 * quad * kwh * kwh) - (money + d * pr)
            else:
                u = (money + d * pr) - 1e6 * (quad * kwh * kwh + lin * kwh)
            if u > best_u:
                best_u = u
                best_q = w
        money += x * pr
        done += x
    return best_q, best_u


@numba.njit(cache=True)
def _prefix_payoff(
    e: IntArray, price: IntArray, n: int, q: int, is_buyer: bool, lin: float, quad: float
) -> float:
    """Payoff (micro-tokens) of the first ``q`` Wh of ``n`` trades."""
    done = 0
    money = 0.0
    for t in range(n):
        x = min(e[t], q - done)
        if x <= 0:
            break
        money += x * price[t] / 1000.0
        done += x
    kwh = done / 1000.0
    if is_buyer:
        return 1e6 * (lin * kwh - 0.5 * quad * kwh * kwh) - money
    return money - 1e6 * (quad * kwh * kwh + lin * kwh)


@numba.njit(cache=True)
def _rank_position(
    o_sur: IntArray,
    o_fee: IntArray,
    o_bid: IntArray,
    o_sid: IntArray,
    s: int,
    f: int,
    b: int,
    j: int,
) -> int:
    """Number of the others' pairs that rank above the pair key (s, f, b, j)."""
    lo = 0
    hi = o_sur.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if ranks_above(o_sur[mid], o_fee[mid], o_bid[mid], o_sid[mid], s, f, b, j):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def evaluate_candidates(
    cand: IntArray,
    is_buyer: bool,
    my_id: int,
    my_cap: int,
    lin: float,
    quad: float,
    # my pairs, sorted by rank (independent of my price): counterpart index, base, fee, id
    m_idx: IntArray,
    m_base: IntArray,
    m_fee: IntArray,
    m_cid: IntArray,
    # others' pairs sorted by rank: buyer idx, seller idx, surplus, fee, buyer id, seller id
    o_b: IntArray,
    o_s: IntArray,
    o_sur: IntArray,
    o_fee: IntArray,
    o_bid: IntArray,
    o_sid: IntArray,
    b_cap: IntArray,
    s_cap: IntArray,
    c_price: IntArray,
    num: int,
    den: int,
    cur_c: int,
    cur_q: int,
) -> tuple[IntArray, FloatArray, float]:
    """For each candidate price: my best quantity and payoff under the greedy rule.

    For a buyer my pair surplus with seller l is ``price - m_base[l]`` (base =
    ask + fee); for a seller with buyer k it is ``m_base[k] - price`` (base =
    bid - fee). ``c_price`` holds the counterparts' limit prices.

    Incremental: until my best pair enters, the clearing is the others' alone
    and does not depend on my price. The others' greedy run is made once, in
    rank order, and each candidate starts from its state at the position where
    its first pair enters (candidates taken in order of that position), so only
    the rest of the run is cleared per candidate.
    """
    n_c = cand.shape[0]
    n_m = m_idx.shape[0]
    n_o = o_b.shape[0]
    out_q = np.zeros(n_c, dtype=np.int64)
    out_u = np.zeros(n_c, dtype=np.float64)
    e_buf = np.zeros(n_m, dtype=np.int64)
    p_buf = np.zeros(n_m, dtype=np.int64)
    u_cur = 0.0  # no trade at the current price: payoff 0
    # where each candidate's first pair enters the others' run (-1: it has no surplus)
    pos = np.full(n_c, -1, dtype=np.int64)
    if n_m > 0 and my_cap > 0:
        for c in range(n_c):
            ms = cand[c] - m_base[0] if is_buyer else m_base[0] - cand[c]
            if ms < 1:
                continue
            mb = my_id if is_buyer else m_cid[0]
            mj = m_cid[0] if is_buyer else my_id
            pos[c] = _rank_position(o_sur, o_fee, o_bid, o_sid, ms, m_fee[0], mb, mj)
    visit = np.argsort(pos, kind="mergesort")
    b_run = b_cap.copy()
    s_run = s_cap.copy()
    done_o = 0
    for c in visit:
        if pos[c] < 0:
            continue
        while done_o < pos[c]:  # the others' run, shared by all later candidates
            _fill_other(b_run, s_run, o_b[done_o], o_s[done_o])
            done_o += 1
        p = cand[c]
        b_rem = b_run.copy()
        s_rem = s_run.copy()
        rem = my_cap
        n_tr = 0
        o = done_o
        m = 0
        while m < n_m and rem > 0:
            ms = p - m_base[m] if is_buyer else m_base[m] - p
            if ms < 1:
                break  # pairs are in rank order: no later pair of mine has surplus
            if is_buyer:
                mb, mj = my_id, m_cid[m]
            else:
                mb, mj = m_cid[m], my_id
            if o < n_o and ranks_above(
                o_sur[o], o_fee[o], o_bid[o], o_sid[o], ms, m_fee[m], mb, mj
            ):
                _fill_other(b_rem, s_rem, o_b[o], o_s[o])
                o += 1
                continue
            k = m_idx[m]
            if is_buyer:
                x = min(rem, s_rem[k])
                if x > 0:
                    s_rem[k] -= x
                    seller_price = c_price[k] + (ms * num) // den
                    e_buf[n_tr] = x
                    p_buf[n_tr] = seller_price + m_fee[m]
                    n_tr += 1
                    rem -= x
            else:
                x = min(rem, b_rem[k])
                if x > 0:
                    b_rem[k] -= x
                    e_buf[n_tr] = x
                    p_buf[n_tr] = p + (ms * num) // den
                    n_tr += 1
                    rem -= x
            m += 1
        q, u = _best_quantity(e_buf, p_buf, n_tr, my_cap, is_buyer, lin, quad)
        out_q[c] = q
        out_u[c] = u
        if c == cur_c:
            u_cur = _prefix_payoff(e_buf, p_buf, n_tr, cur_q, is_buyer, lin, quad)
    return out_q, out_u, u_cur
