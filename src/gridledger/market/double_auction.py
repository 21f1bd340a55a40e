"""Uniform-price double auction (no network fees): the spine's clearing rule.

Rule, written so that the Solidity contract can follow it step by step:

1. Buy orders are sorted by price descending, sell orders by price ascending;
   ties go to the lower member id.
2. Walk both lists with two cursors. While the current bid price is at least the
   current ask price, trade ``min(remaining buy, remaining sell)`` Wh between them
   and advance whichever side is exhausted (both if equal).
3. All trades settle at one price: the midpoint of the last matched bid and ask,
   floored, ``(b_k + a_k) // 2``. Since every matched bid is >= b_k and every
   matched ask is <= a_k, no buyer pays above its bid and no seller receives
   below its ask. Buyer and seller see the same price, so the budget balances
   exactly per trade.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from gridledger.market.orders import Bid, ClearingResult, Side, Trade, validate_bids

__all__ = ["clear_uniform", "merit_pairs", "sorted_books"]


def sorted_books(bids: Sequence[Bid]) -> tuple[list[Bid], list[Bid]]:
    """Return (buy book, sell book) in clearing priority order."""
    buys = sorted(
        (b for b in bids if b.side == Side.BUY), key=lambda b: (-b.price_per_kwh_micro, b.member)
    )
    sells = sorted(
        (b for b in bids if b.side == Side.SELL), key=lambda b: (b.price_per_kwh_micro, b.member)
    )
    return buys, sells


def merit_pairs(buys: Sequence[Bid], sells: Sequence[Bid]) -> Iterator[tuple[Bid, Bid, int]]:
    """Walk sorted books with two cursors: ``(buy, sell, e_wh)`` while the prices cross."""
    i = j = 0
    rem_buy = buys[0].e_wh if buys else 0
    rem_sell = sells[0].e_wh if sells else 0
    while i < len(buys) and j < len(sells):
        buy, sell = buys[i], sells[j]
        if buy.price_per_kwh_micro < sell.price_per_kwh_micro:
            return
        e_wh = min(rem_buy, rem_sell)
        yield buy, sell, e_wh
        rem_buy -= e_wh
        rem_sell -= e_wh
        if rem_buy == 0:
            i += 1
            rem_buy = buys[i].e_wh if i < len(buys) else 0
        if rem_sell == 0:
            j += 1
            rem_sell = sells[j].e_wh if j < len(sells) else 0


def clear_uniform(bids: Sequence[Bid]) -> ClearingResult:
    """Clear ``bids`` with the uniform-price rule in this module's docstring."""
    validate_bids(list(bids))
    matched = list(merit_pairs(*sorted_books(bids)))
    if not matched:
        return ClearingResult(trades=(), price_per_kwh_micro=None)
    last_buy, last_sell, _ = matched[-1]
    price = (last_buy.price_per_kwh_micro + last_sell.price_per_kwh_micro) // 2
    trades = tuple(
        Trade(
            buyer=b.member,
            seller=s.member,
            e_wh=e,
            buyer_price_per_kwh_micro=price,
            seller_price_per_kwh_micro=price,
            buyer_bus=b.bus,
            seller_bus=s.bus,
        )
        for b, s, e in matched
    )
    return ClearingResult(trades=trades, price_per_kwh_micro=price)
