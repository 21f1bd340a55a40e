"""What a cleared round tells the members: public summaries and each order's own result.

With network fees a trade has two prices: what the buyer pays and what the seller
receives (the difference is the fee). A member on ``side`` at ``bus`` sees the prices
of its side (buyers learn from buyer prices, sellers from seller prices; no side: the
midpoint of the two). With a fee table and a bus, the other side's best quote is the
one *delivered to that bus*: a buyer at q sees ``min_j (a_j + c[bus_j, q])``, a seller
at p sees ``max_i (b_i - c[p, bus_i])``, so that "accepting the best offer" means a
trade that can actually clear; trade prices likewise: the seller's price plus the fee
to this bus for a buyer, the buyer's price minus the fee from this bus for a seller.

:func:`round_infos` computes every view of a round with array operations: on a feeder
with thousands of member buses the per-view loops took minutes per interval. The
values are those of the per-view definition to the last bit (integer micro-tokens
divided by 10**6 once, as :func:`~gridledger.market.units.micro_to_price` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from gridledger.bidding.base import (
    FILLED,
    NOT_MATCHED,
    PARTLY_FILLED,
    RATIONED,
    OwnResult,
    RoundInfo,
)
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import MICRO, micro_to_price

__all__ = ["ViewKey", "own_results", "round_info", "round_infos"]

ViewKey = tuple[Side | None, int | None]
"""The side and bus a member sees a round from (None: no side, or no fee adjustment)."""

IntArray = npt.NDArray[np.int64]

_CHUNK = 256  # buses per array block: bounds the (orders x buses) temporaries


def _array(values: Iterable[int]) -> IntArray:
    return np.fromiter(values, dtype=np.int64)


def _prices(micro: IntArray) -> tuple[float, ...]:
    return tuple((micro / MICRO).tolist())


def _best(values: IntArray, highest: bool) -> float | None:
    if not values.size:
        return None
    return micro_to_price(int(values.max() if highest else values.min()))


def round_infos(
    bids: Sequence[Bid],
    result: ClearingResult,
    keys: Iterable[ViewKey],
    fees: np.ndarray | None = None,
) -> dict[ViewKey, RoundInfo]:
    """The public summary of a cleared round as seen from each ``(side, bus)`` in ``keys``.

    A bus of None, or no fee table, gives the unadjusted prices of that side.
    """
    buy_price = _array(b.price_per_kwh_micro for b in bids if b.side == Side.BUY)
    sell_price = _array(b.price_per_kwh_micro for b in bids if b.side == Side.SELL)
    buy_bus = _array(b.bus for b in bids if b.side == Side.BUY)
    sell_bus = _array(b.bus for b in bids if b.side == Side.SELL)
    trades = result.trades
    e_wh = tuple(t.e_wh for t in trades)
    paid = _array(t.buyer_price_per_kwh_micro for t in trades)
    got = _array(t.seller_price_per_kwh_micro for t in trades)
    best_bid = _best(buy_price, highest=True)
    best_ask = _best(sell_price, highest=False)
    out: dict[ViewKey, RoundInfo] = {}
    by_side: dict[Side, list[int]] = {Side.BUY: [], Side.SELL: []}
    for key in dict.fromkeys(keys):
        side, bus = key
        if side is not None and bus is not None and fees is not None:
            by_side[side].append(bus)
        elif side == Side.BUY:
            out[key] = RoundInfo(best_bid, best_ask, _prices(paid), e_wh)
        elif side == Side.SELL:
            out[key] = RoundInfo(best_bid, best_ask, _prices(got), e_wh)
        else:
            out[key] = RoundInfo(best_bid, best_ask, _prices((paid + got) // 2), e_wh)
    if fees is None:
        return out
    seller_bus = _array(t.seller_bus for t in trades)
    buyer_bus = _array(t.buyer_bus for t in trades)
    for start in range(0, len(by_side[Side.BUY]), _CHUNK):
        qs = np.asarray(by_side[Side.BUY][start : start + _CHUNK], dtype=np.int64)
        # what buyers at q see: asks and the sellers' trade prices delivered to q
        delivered = sell_price[None, :] + fees[np.ix_(sell_bus, qs)].T
        prices = got[None, :] + fees[np.ix_(seller_bus, qs)].T
        for row, q in enumerate(qs.tolist()):
            ask = _best(delivered[row], highest=False)
            out[(Side.BUY, q)] = RoundInfo(best_bid, ask, _prices(prices[row]), e_wh)
    for start in range(0, len(by_side[Side.SELL]), _CHUNK):
        ps = np.asarray(by_side[Side.SELL][start : start + _CHUNK], dtype=np.int64)
        # what sellers at p see: bids and the buyers' trade prices net of the fee from p
        delivered = buy_price[None, :] - fees[np.ix_(ps, buy_bus)]
        prices = paid[None, :] - fees[np.ix_(ps, buyer_bus)]
        for row, p in enumerate(ps.tolist()):
            bid = _best(delivered[row], highest=True)
            out[(Side.SELL, p)] = RoundInfo(bid, best_ask, _prices(prices[row]), e_wh)
    return out


def round_info(
    bids: Sequence[Bid],
    result: ClearingResult,
    side: Side | None = None,
    bus: int | None = None,
    fees: np.ndarray | None = None,
) -> RoundInfo:
    """Public summary of a cleared round, as seen by a member on ``side`` at ``bus``."""
    return round_infos(bids, result, [(side, bus)], fees)[(side, bus)]


def _bars(
    at: dict[int, int], buses: list[int], fees: np.ndarray | None, buyer_side: bool
) -> dict[int, int | None]:
    """Per bus: the best traded price of the other side as it reaches that bus.

    Buyers at q: ``min_p (ask_p + c[p, q])`` over seller buses p with a trade; sellers
    at p: ``max_q (bid_q - c[p, q])`` over buyer buses q with a trade.
    """
    if not at:
        return dict.fromkeys(buses)
    other = _array(at)
    price = _array(at.values())
    out: dict[int, int | None] = {}
    for start in range(0, len(buses), _CHUNK):
        chunk = np.asarray(buses[start : start + _CHUNK], dtype=np.int64)
        if fees is None:
            fee = np.zeros((chunk.size, other.size), dtype=np.int64)
        elif buyer_side:
            fee = fees[np.ix_(other, chunk)].T
        else:
            fee = fees[np.ix_(chunk, other)]
        if buyer_side:
            bar = (price[None, :] + fee).min(axis=1)
        else:
            bar = (price[None, :] - fee).max(axis=1)
        out.update(zip(chunk.tolist(), bar.tolist(), strict=True))
    return out


def own_results(
    bids: Sequence[Bid], result: ClearingResult, fees: np.ndarray | None = None
) -> list[OwnResult]:
    """Each bid's own outcome in the cleared round (same order as ``bids``).

    Filled / partly filled from the trades naming the member; an order with no trade is
    *rationed* if its price is at or through the margin, i.e. it would have had a
    non-negative net surplus ``b - a - c`` with some counterparty that did trade (the
    other side ran out, or it lost a tie), else *not matched* (priced out). Prices are
    the member's own: what a buyer pays (fee included), what a seller receives.
    """
    traded: dict[tuple[int, Side], int] = {}
    paid: dict[tuple[int, Side], int] = {}
    # cheapest traded ask per seller bus, dearest traded bid per buyer bus
    ask_at: dict[int, int] = {}
    bid_at: dict[int, int] = {}
    price_of = {(b.member, b.side): b.price_per_kwh_micro for b in bids}
    for t in result.trades:
        for key, micro in (
            ((t.buyer, Side.BUY), t.buyer_price_per_kwh_micro),
            ((t.seller, Side.SELL), t.seller_price_per_kwh_micro),
        ):
            traded[key] = traded.get(key, 0) + t.e_wh
            paid[key] = paid.get(key, 0) + micro * t.e_wh
        ask = price_of.get((t.seller, Side.SELL))
        bid = price_of.get((t.buyer, Side.BUY))
        if ask is not None:
            ask_at[t.seller_bus] = min(ask_at.get(t.seller_bus, ask), ask)
        if bid is not None:
            bid_at[t.buyer_bus] = max(bid_at.get(t.buyer_bus, bid), bid)
    untraded = [b for b in bids if traded.get((b.member, b.side), 0) == 0]
    buy_buses = sorted({b.bus for b in untraded if b.side == Side.BUY})
    sell_buses = sorted({b.bus for b in untraded if b.side == Side.SELL})
    buy_bar = _bars(ask_at, buy_buses, fees, buyer_side=True)
    sell_bar = _bars(bid_at, sell_buses, fees, buyer_side=False)
    out = []
    for b in bids:
        key = (b.member, b.side)
        got = traded.get(key, 0)
        if got > 0:
            outcome = FILLED if got >= b.e_wh else PARTLY_FILLED
            price = micro_to_price(paid[key] // got)
            out.append(OwnResult(outcome, b.e_wh, got, price))
            continue
        if b.side == Side.BUY:
            bar = buy_bar[b.bus]
            at_margin = bar is not None and b.price_per_kwh_micro >= bar
        else:
            bar = sell_bar[b.bus]
            at_margin = bar is not None and b.price_per_kwh_micro <= bar
        out.append(OwnResult(RATIONED if at_margin else NOT_MATCHED, b.e_wh))
    return out
