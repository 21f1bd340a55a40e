"""Surplus-ranked double auction with use-of-system fees (docs/methods.md §3).

Rule (integers throughout; this is the specification the contract follows):

1. The net surplus of buyer ``i`` (price ``b_i``, bus ``q``) and seller ``j``
   (price ``a_j``, bus ``p``) is ``s_ij = b_i - a_j - c[p, q]`` with ``c`` the fee
   table in micro-tokens per kWh (``fees[seller_bus, buyer_bus]``).
2. Repeatedly take the pair with the largest ``s_ij > 0`` among orders with
   quantity left. Ties are broken, in this order, by: smaller fee ``c[p, q]``;
   smaller ``tie_distance[p, q]`` (only if a tie-distance table is given, e.g.
   path length, so that nearby trades win ties even under a flat fee); lower
   buyer member id; lower seller member id.
3. The pair trades ``min(remaining buy, remaining sell)`` Wh.
4. Prices per kWh (``kappa = num/den``, the seller's share of the surplus,
   default 1/2): the seller receives ``a_j + (s_ij * num) // den`` and the
   buyer pays that plus ``c[p, q]``. Hence per trade the buyer pays at most
   its bid, the seller receives at least its ask, and buyer price minus seller
   price is exactly the fee (the floor's remainder stays with the buyer).

Implementation: orders are grouped per bus into queues (buyers by price
descending then id, sellers by price ascending then id). For a bus pair the
best order pair is always the two queue heads, so the best pair overall is
the best entry of the seller-bus x buyer-bus matrix of head surpluses. Each
entry is packed with the fee tie-break into one int64,
``K = s * 2**S + (R - 1 - rank(c, d))`` (without a tie distance simply
``s * 2**S + (c_max - c)``, the same order without ranking a million pairs),
so one ``argmax`` finds the best (s, c, d); remaining ties (equal K) are
resolved by member ids. Entries only
get worse as queues advance, so the matrix is never rescanned: each seller bus
keeps its best buyer bus in a lazy heap (``_match``), and a row's argmax is
re-taken only when the head of its best buyer bus has moved and the row reaches
the top. The trades equal those of the former per-trade matrix rescan exactly
(differential test against a copy of it: tests/market/test_greedy_heap.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from gridledger.errors import ClearingError
from gridledger.market.fees import fees_or_zero
from gridledger.market.orders import Bid, ClearingResult, Side, Trade, validate_bids
from gridledger.market.welfare import order_surplus_per_kwh_micro

__all__ = ["Books", "clear_greedy", "kappa_fraction", "make_trade", "split_books"]

IntArray = npt.NDArray[np.int64]


def kappa_fraction(kappa: Fraction | float | int) -> Fraction:
    """The seller's surplus share as an exact fraction in [0, 1].

    Floats are converted with ``Fraction(kappa).limit_denominator(10**6)``.
    """
    frac = kappa if isinstance(kappa, Fraction) else Fraction(kappa).limit_denominator(10**6)
    if not 0 <= frac <= 1:
        message = f"kappa = {kappa} must lie in [0, 1]"
        raise ClearingError(message)
    return frac


def make_trade(buyer: Bid, seller: Bid, e_wh: int, fee: int, kappa: Fraction) -> Trade:
    """A trade of ``e_wh`` priced by the kappa split of the pair's surplus (rule step 4)."""
    surplus = order_surplus_per_kwh_micro(buyer, seller, fee)
    seller_price = seller.price_per_kwh_micro + (surplus * kappa.numerator) // kappa.denominator
    return Trade(
        buyer=buyer.member,
        seller=seller.member,
        e_wh=e_wh,
        buyer_price_per_kwh_micro=seller_price + fee,
        seller_price_per_kwh_micro=seller_price,
        buyer_bus=buyer.bus,
        seller_bus=seller.bus,
    )


@dataclass(frozen=True, slots=True)
class Books:
    """Validated orders split by side and a fee table covering their buses."""

    buys: tuple[Bid, ...]
    sells: tuple[Bid, ...]
    fees: IntArray


def split_books(bids: Sequence[Bid], fees: npt.ArrayLike | None) -> Books:
    """Validate ``bids`` and ``fees`` and split the bids by side (input order kept)."""
    bids = list(bids)
    validate_bids(bids)
    max_bus = max((b.bus for b in bids), default=0)
    table = fees_or_zero(fees, max_bus)
    buys = tuple(b for b in bids if b.side == Side.BUY)
    sells = tuple(b for b in bids if b.side == Side.SELL)
    return Books(buys, sells, table)


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
        top = int(fee_sub.max(initial=0))
        if int(fee_sub.min(initial=0)) >= 0 and top <= 4 * fee_sub.size + 1024:
            # dense rank by counting (the same ranks as np.unique, without its sort)
            present = np.bincount(fee_sub.ravel(), minlength=top + 1) > 0
            dense = np.cumsum(present, dtype=np.int64) - 1
            return dense[fee_sub]
        _, inverse = np.unique(fee_sub.ravel(), return_inverse=True)
    else:
        stacked = np.stack([fee_sub.ravel().astype(np.float64), dist_sub.ravel()], axis=1)
        _, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).reshape(fee_sub.shape)


def clear_greedy(
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
    top_price = max(b.price_per_kwh_micro for b in (*books.buys, *books.sells))
    fee_max = int(fee_sub.max(initial=0))
    fee_min = int(fee_sub.min(initial=0))
    if dist_sub is None and fee_min >= 0 and top_price < 2 ** (60 - fee_max.bit_length()):
        # Without a tie distance the fee itself is the tie-break: packing fee_max - c
        # orders pairs exactly as the dense rank of c does, without computing ranks.
        shift = fee_max.bit_length()
        low = fee_max - fee_sub
    else:
        rank = _tie_rank(fee_sub, dist_sub)
        n_ranks = int(rank.max()) + 1
        shift = (n_ranks - 1).bit_length()
        low = (n_ranks - 1) - rank  # larger is better: smaller (fee, distance)
    limit = 60 - shift  # prices and fees < 2**limit keep every packed key inside int64
    if top_price >= 2**limit or fee_max >= 2**limit:
        message = (
            f"greedy clearing needs prices and fees below 2**{limit} micro-tokens/kWh "
            f"(largest price {top_price})"
        )
        raise ClearingError(message)
    c_term = -(fee_sub << shift) + low  # static part of every packed key
    matched = _match(buy_q, sell_q, qs, ps, fee_sub, c_term, shift)
    num, den = kappa.numerator, kappa.denominator
    trades = []
    for buyer, seller, e_wh, fee in matched:  # make_trade, inlined (5,000 calls cost 15 ms)
        ask = seller.price_per_kwh_micro
        seller_price = ask + ((buyer.price_per_kwh_micro - ask - fee) * num) // den
        trades.append(
            Trade(
                buyer.member,
                seller.member,
                e_wh,
                seller_price + fee,
                seller_price,
                buyer.bus,
                seller.bus,
            )
        )
    return ClearingResult(trades=tuple(trades), price_per_kwh_micro=None)


def _match(
    buy_q: dict[int, list[Bid]],
    sell_q: dict[int, list[Bid]],
    qs: list[int],
    ps: list[int],
    fee_sub: IntArray,
    c_term: IntArray,
    shift: int,
) -> list[tuple[Bid, Bid, int, int]]:
    """The greedy sequence of (buyer, seller, Wh, fee): one lazy heap of seller-bus row bests.

    The packed key of bus pair (p, q) is ``H[q] - A[p] + c_term[p, q]`` with
    ``H = head bid << shift``, ``A = head ask << shift``; pairs rank by (key desc,
    head buyer id asc, head seller id asc), a total order (ids are unique). The
    heap holds one entry per seller bus p: its best buyer bus q, the ranking tuple at
    push time and the version of q's buyer head. Heads only get worse (price falls /
    rises, or equal price and a larger id), so an entry never ranks below its row's
    current best: when the top entry is current it is the best pair overall. A
    stale top (q has a new buyer head) re-takes the row's argmax over all buyer
    buses; after a trade that moves only the seller head the row keeps its column
    (the seller term is common to the row), and the seller head moves only then.
    """
    b_queues = [buy_q[q] for q in qs]
    s_queues = [sell_q[p] for p in ps]
    n_rows = len(ps)
    b_head = [0] * len(qs)
    s_head = [0] * n_rows
    b_rem = [queue[0].e_wh for queue in b_queues]
    s_rem = [queue[0].e_wh for queue in s_queues]
    b_ver = [0] * len(qs)
    h_key = [queue[0].price_per_kwh_micro << shift for queue in b_queues]
    a_key = [queue[0].price_per_kwh_micro << shift for queue in s_queues]
    b_id = [queue[0].member for queue in b_queues]
    s_id = [queue[0].member for queue in s_queues]
    c_at = c_term.item
    fee_at = fee_sub.item
    one = 1 << shift
    top = max(q[0].price_per_kwh_micro for q in b_queues)
    top = max(top, *(q[-1].price_per_kwh_micro for q in s_queues))
    fee_max = int(fee_sub.max(initial=0))
    dead_h = -((top + fee_max + 2) << shift)  # an empty buyer bus: below every live one
    heap: list[tuple[int, int, int, int, int, int]] = []
    heappush = heapq.heappush

    # Row argmax arrays: H[q] + c_term[p, q], with the buyer-id tie-break packed into
    # the low bits when it fits in int64 (then every argmax is unique), else ties
    # are resolved by a second pass.
    all_ids = sorted(b.member for queue in b_queues for b in queue)
    id_bits = len(all_ids).bit_length()
    id_low = {m: len(all_ids) - 1 - k for k, m in enumerate(all_ids)}  # lower id: larger
    packed = ((top + 2 * fee_max + 4) << (shift + id_bits)) < 2**62
    if packed:
        row_terms = c_term << id_bits
        b_low = [id_low[b_id[qi]] for qi in range(len(qs))]
        h_arr = np.array(
            [(h << id_bits) + low for h, low in zip(h_key, b_low, strict=True)], dtype=np.int64
        )
    else:
        row_terms = c_term
        h_arr = np.array(h_key, dtype=np.int64)
    buf = np.empty(len(qs), dtype=np.int64)
    hit = np.empty(len(qs), dtype=np.bool_)
    count_nonzero = np.count_nonzero
    row_views = list(row_terms)  # one view per row, made once

    def recompute(pi: int) -> None:
        """Push row pi's best column (largest key, then lower buyer id)."""
        np.add(h_arr, row_views[pi], out=buf)
        qi = int(buf.argmax())
        if not packed:
            np.equal(buf, buf[qi], out=hit)
            if count_nonzero(hit) > 1:
                qi = min(np.flatnonzero(hit).tolist(), key=b_id.__getitem__)
        key = h_key[qi] + c_at(pi, qi) - a_key[pi]
        if key >= one:
            heappush(heap, (-key, b_id[qi], s_id[pi], pi, qi, b_ver[qi]))

    # initial row bests, all rows at once
    vals = h_arr[None, :] + row_terms
    if packed:
        best = vals.argmax(axis=1)
    else:
        tops = vals.max(axis=1)
        ids = np.array(b_id, dtype=np.int64)
        big = np.iinfo(np.int64).max
        best = np.where(vals == tops[:, None], ids[None, :], big).argmin(axis=1)
    del vals
    for pi, qi in enumerate(best.tolist()):
        key = h_key[qi] - a_key[pi] + c_at(pi, qi)
        if key >= one:
            heap.append((-key, b_id[qi], s_id[pi], pi, qi, b_ver[qi]))
    heapq.heapify(heap)
    matched: list[tuple[Bid, Bid, int, int]] = []

    # Each seller bus has at most one heap entry: its best column and that buyer head's
    # version. It ranks at or above the row's current best, since heads only get worse;
    # so a current top entry is the best pair overall, and a stale one is recomputed.
    while heap:
        _, _, _, pi, qi, bv = heapq.heappop(heap)
        if bv != b_ver[qi]:
            recompute(pi)
            continue
        buyer = b_queues[qi][b_head[qi]]
        seller = s_queues[pi][s_head[pi]]
        e_wh = min(b_rem[qi], s_rem[pi])
        matched.append((buyer, seller, e_wh, fee_at(pi, qi)))
        b_rem[qi] -= e_wh
        s_rem[pi] -= e_wh
        if b_rem[qi] == 0:
            b_head[qi] += 1
            b_ver[qi] += 1
            if b_head[qi] < len(b_queues[qi]):
                nxt = b_queues[qi][b_head[qi]]
                b_rem[qi] = nxt.e_wh
                h_key[qi] = nxt.price_per_kwh_micro << shift
                b_id[qi] = nxt.member
            else:
                h_key[qi] = dead_h
            h_arr[qi] = (h_key[qi] << id_bits) + id_low[b_id[qi]] if packed else h_key[qi]
        if s_rem[pi] == 0:
            s_head[pi] += 1
            if s_head[pi] == len(s_queues[pi]):
                continue  # the row is empty: no entry any more
            nxt = s_queues[pi][s_head[pi]]
            s_rem[pi] = nxt.e_wh
            a_key[pi] = nxt.price_per_kwh_micro << shift
            s_id[pi] = nxt.member
        if bv != b_ver[qi]:
            recompute(pi)
        else:  # only the seller head moved: the row keeps its best column
            key = h_key[qi] + c_at(pi, qi) - a_key[pi]
            if key >= one:
                heappush(heap, (-key, b_id[qi], s_id[pi], pi, qi, bv))
    return matched
