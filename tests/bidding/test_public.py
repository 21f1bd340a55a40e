"""The array form of the round summaries equals their per-view definition, bit for bit.

``bidding.public.round_infos`` and ``own_results`` compute every (side, bus) view of a
round at once. The oracle below is the per-view definition they replaced (one Python
pass over the book per view), kept here so that the two can be compared on random
books, asymmetric fee tables included: a different float anywhere would change AA's
bids and hence every figure of a run.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import MarketWithDistance, fee_markets

from gridledger.bidding.base import NOT_MATCHED, RATIONED, RoundInfo
from gridledger.bidding.public import own_results, round_info, round_infos
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import micro_to_price


def _view_oracle(
    bids: list[Bid], result: ClearingResult, side: Side | None, bus: int | None, fees: np.ndarray
) -> RoundInfo:
    fee = fees if bus is not None else None
    buys = [b.price_per_kwh_micro for b in bids if b.side == Side.BUY]
    sells = [b.price_per_kwh_micro for b in bids if b.side == Side.SELL]
    trades = result.trades
    if side == Side.BUY:
        if fee is not None:
            sells = [
                b.price_per_kwh_micro + int(fee[b.bus, bus]) for b in bids if b.side == Side.SELL
            ]
            micro = [t.seller_price_per_kwh_micro + int(fee[t.seller_bus, bus]) for t in trades]
        else:
            micro = [t.buyer_price_per_kwh_micro for t in trades]
    elif side == Side.SELL:
        if fee is not None:
            buys = [
                b.price_per_kwh_micro - int(fee[bus, b.bus]) for b in bids if b.side == Side.BUY
            ]
            micro = [t.buyer_price_per_kwh_micro - int(fee[bus, t.buyer_bus]) for t in trades]
        else:
            micro = [t.seller_price_per_kwh_micro for t in trades]
    else:
        micro = [(t.buyer_price_per_kwh_micro + t.seller_price_per_kwh_micro) // 2 for t in trades]
    return RoundInfo(
        best_bid=micro_to_price(max(buys)) if buys else None,
        best_ask=micro_to_price(min(sells)) if sells else None,
        trade_prices=tuple(micro_to_price(m) for m in micro),
        trade_e_wh=tuple(t.e_wh for t in trades),
    )


def _margin_oracle(bids: list[Bid], result: ClearingResult, fees: np.ndarray) -> list[bool]:
    """Per bid without a trade: at the margin (rationed) or not; None for traded bids."""
    price = {(b.member, b.side): b.price_per_kwh_micro for b in bids}
    ask_at: dict[int, int] = {}
    bid_at: dict[int, int] = {}
    for t in result.trades:
        ask, bid = price[(t.seller, Side.SELL)], price[(t.buyer, Side.BUY)]
        ask_at[t.seller_bus] = min(ask_at.get(t.seller_bus, ask), ask)
        bid_at[t.buyer_bus] = max(bid_at.get(t.buyer_bus, bid), bid)
    out = []
    for b in bids:
        if b.side == Side.BUY:
            reach = [a + int(fees[p, b.bus]) for p, a in ask_at.items()]
            out.append(bool(reach) and b.price_per_kwh_micro >= min(reach))
        else:
            reach = [v - int(fees[b.bus, q]) for q, v in bid_at.items()]
            out.append(bool(reach) and b.price_per_kwh_micro <= max(reach))
    return out


@settings(max_examples=150, deadline=None)
@given(market=fee_markets(max_buses=6, max_bids=24), skew=st.integers(0, 7))
def test_every_view_equals_the_per_view_definition(market: MarketWithDistance, skew: int) -> None:
    book, fees, _ = market
    fees = fees + np.triu(np.full_like(fees, skew), 1)  # asymmetric: c[p, q] != c[q, p]
    n_buses = fees.shape[0]
    keys = [(side, bus) for side in (Side.BUY, Side.SELL, None) for bus in (*range(n_buses), None)]
    for scale in (1, 997):  # small prices tie often; scaled ones do not divide 10**6
        bids = [Bid(b.member, b.side, b.e_wh, b.price_per_kwh_micro * scale, b.bus) for b in book]
        result = clear_greedy(bids, fees)
        infos = round_infos(bids, result, keys, fees)
        assert set(infos) == set(keys)
        for side, bus in keys:
            expected = _view_oracle(bids, result, side, bus, fees)
            assert infos[(side, bus)] == expected
            assert round_info(bids, result, side, bus, fees) == expected
            unadjusted = _view_oracle(bids, result, side, None, fees)
            assert round_info(bids, result, side, bus, None) == unadjusted
        margin = _margin_oracle(bids, result, fees)
        traded = {t.buyer for t in result.trades} | {t.seller for t in result.trades}
        owns = own_results(bids, result, fees)
        no_fee = own_results(bids, result, None)
        assert no_fee == own_results(bids, result, np.zeros_like(fees))
        for bid, own, at_margin in zip(bids, owns, margin, strict=True):
            if bid.member not in traded:
                assert own.outcome == (RATIONED if at_margin else NOT_MATCHED)


def test_no_trades_and_empty_sides() -> None:
    fees = np.array([[0, 5], [5, 0]], dtype=np.int64)
    bids = [Bid(1, Side.BUY, 100, 10, 0), Bid(2, Side.BUY, 100, 12, 1)]
    result = clear_greedy(bids, fees)
    infos = round_infos(bids, result, [(Side.BUY, 0), (Side.SELL, 1)], fees)
    assert infos[(Side.BUY, 0)] == RoundInfo(12 / 1e6, None, (), ())
    assert infos[(Side.SELL, 1)] == RoundInfo(12 / 1e6, None, (), ())
    assert all(own.outcome == NOT_MATCHED for own in own_results(bids, result, fees))
