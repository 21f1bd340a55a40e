"""Oracle for tests/market/test_greedy_heap.py: the B x B matrix-rescan greedy clearing.

A verbatim copy of ``gridledger.market.greedy.clear_greedy`` as it was before the
lazy row-best heap (commit 613733b), renamed ``clear_greedy_matrix``. It rescans
the seller-bus x buyer-bus matrix of head surpluses on every trade: slow at many
buses, but it is the implementation the current one must equal trade for trade.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from gridledger.errors import ClearingError
from gridledger.market.greedy import kappa_fraction, make_trade, split_books
from gridledger.market.orders import Bid, ClearingResult

__all__ = ["clear_greedy_matrix"]

IntArray = npt.NDArray[np.int64]


def _queues(orders: Sequence[Bid], descending: bool) -> dict[int, list[Bid]]:
    queues: dict[int, list[Bid]] = {}
    for bid in orders:
        queues.setdefault(bid.bus, []).append(bid)
    sign = -1 if descending else 1
    for queue in queues.values():
        queue.sort(key=lambda b: (sign * b.price_per_kwh_micro, b.member))
    return queues


def _tie_rank(fee_sub: IntArray, dist_sub: npt.NDArray[np.float64] | None) -> IntArray:
    """Rank of each bus pair by (fee, tie distance) ascending; equal pairs share a rank."""
    if dist_sub is None:
        _, inverse = np.unique(fee_sub.ravel(), return_inverse=True)
    else:
        stacked = np.stack([fee_sub.ravel().astype(np.float64), dist_sub.ravel()], axis=1)
        _, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).reshape(fee_sub.shape)


def clear_greedy_matrix(
    bids: Sequence[Bid],
    fees: npt.ArrayLike | None = None,
    kappa: Fraction | float = Fraction(1, 2),
    *,
    tie_distance: npt.ArrayLike | None = None,
) -> ClearingResult:
    """Clear ``bids`` with the surplus-ranked rule of this module's docstring.

    ``fees[p, q]`` is the fee (micro-tokens per kWh) of a trade from a seller at
    bus ``p`` to a buyer at bus ``q``; None means no fees. ``tie_distance`` is an
    optional (B, B) table used only to break ties between equal (surplus, fee).
    Trades come in clearing order; ``price_per_kwh_micro`` is None (no uniform price).
    """
    kappa = kappa_fraction(kappa)
    books = split_books(bids, fees)
    buy_q = _queues(books.buys, descending=True)
    sell_q = _queues(books.sells, descending=False)
    if not buy_q or not sell_q:
        return ClearingResult(trades=(), price_per_kwh_micro=None)
    qs = sorted(buy_q)  # buyer buses (columns)
    ps = sorted(sell_q)  # seller buses (rows)
    fee_sub = books.fees[np.ix_(ps, qs)]
    dist_sub = None
    if tie_distance is not None:
        dist_all = np.asarray(tie_distance, dtype=np.float64)
        if dist_all.shape != books.fees.shape:
            message = (
                f"tie_distance shape {dist_all.shape} differs from fee table {books.fees.shape}"
            )
            raise ClearingError(message)
        dist_sub = dist_all[np.ix_(ps, qs)]
    rank = _tie_rank(fee_sub, dist_sub)
    n_ranks = int(rank.max()) + 1
    shift = (n_ranks - 1).bit_length()
    limit = 60 - shift  # prices and fees < 2**limit keep every packed key inside int64
    top_price = max(b.price_per_kwh_micro for b in (*books.buys, *books.sells))
    if top_price >= 2**limit or int(fee_sub.max(initial=0)) >= 2**limit:
        message = (
            f"greedy clearing needs prices and fees below 2**{limit} micro-tokens/kWh "
            f"(largest price {top_price})"
        )
        raise ClearingError(message)
    low = (n_ranks - 1) - rank  # larger is better: smaller (fee, distance)
    c_term = -(fee_sub << shift) + low
    one = 1 << shift
    min_key = np.iinfo(np.int64).min

    b_queues = [buy_q[q] for q in qs]
    s_queues = [sell_q[p] for p in ps]
    b_head = [0] * len(qs)
    s_head = [0] * len(ps)
    b_rem = [queue[0].e_wh for queue in b_queues]
    s_rem = [queue[0].e_wh for queue in s_queues]
    hb = [queue[0].price_per_kwh_micro for queue in b_queues]
    ha = [queue[0].price_per_kwh_micro for queue in s_queues]
    hb_arr = np.array(hb, dtype=np.int64)
    ha_arr = np.array(ha, dtype=np.int64)
    sentinel = 2**limit
    fee_rows = fee_sub.tolist()
    low_rows = low.tolist()
    n_cols = len(qs)
    matched: list[tuple[Bid, Bid, int, int]] = []

    while True:
        # head surplus b - a - c of every bus pair, packed with the tie rank
        keys = ((hb_arr[None, :] - ha_arr[:, None]) << shift) + c_term
        flat = int(keys.argmax())
        k_max = int(keys.flat[flat])
        if k_max < one:
            break
        keys.flat[flat] = min_key
        k_second = int(keys.max()) if keys.size > 1 else min_key
        if k_second == k_max:
            tied = [flat, *np.flatnonzero(keys == k_max).tolist()]
            flat = min(
                tied,
                key=lambda f: (
                    b_queues[f % n_cols][b_head[f % n_cols]].member,
                    s_queues[f // n_cols][s_head[f // n_cols]].member,
                ),
            )
        pi, qi = divmod(flat, n_cols)
        fee = fee_rows[pi][qi]
        while True:
            buyer = b_queues[qi][b_head[qi]]
            seller = s_queues[pi][s_head[pi]]
            e_wh = min(b_rem[qi], s_rem[pi])
            matched.append((buyer, seller, e_wh, fee))
            b_rem[qi] -= e_wh
            s_rem[pi] -= e_wh
            if b_rem[qi] == 0:
                b_head[qi] += 1
                if b_head[qi] < len(b_queues[qi]):
                    nxt = b_queues[qi][b_head[qi]]
                    b_rem[qi] = nxt.e_wh
                    hb[qi] = nxt.price_per_kwh_micro
                else:
                    hb[qi] = -sentinel
                hb_arr[qi] = hb[qi]
            if s_rem[pi] == 0:
                s_head[pi] += 1
                if s_head[pi] < len(s_queues[pi]):
                    nxt = s_queues[pi][s_head[pi]]
                    s_rem[pi] = nxt.e_wh
                    ha[pi] = nxt.price_per_kwh_micro
                else:
                    ha[pi] = sentinel
                ha_arr[pi] = ha[pi]
            # the heads' order_surplus_per_kwh_micro, inlined in this hot loop
            surplus = hb[qi] - ha[pi] - fee
            # Every other entry only fell since k_second was taken, so the pair
            # stays the unique best while its key is strictly above k_second.
            if surplus < 1 or (surplus << shift) + low_rows[pi][qi] <= k_second:
                break

    trades = tuple(make_trade(b, s, e, c, kappa) for b, s, e, c in matched)
    return ClearingResult(trades=trades, price_per_kwh_micro=None)
