"""Surplus-ranked clearing with fees: equivalence with a slow reference, properties, ties.

Also covers the fee-blind merit-order baseline.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import FeeMarket, MarketWithDistance, check_fee_trades, fee_markets

from gridledger.errors import ClearingError
from gridledger.market.greedy import clear_greedy, make_trade
from gridledger.market.merit_order import clear_merit_order
from gridledger.market.orders import Bid, Side, Trade


def buy(member: int, e_wh: int, price: int, bus: int) -> Bid:
    return Bid(member, Side.BUY, e_wh, price, bus)


def sell(member: int, e_wh: int, price: int, bus: int) -> Bid:
    return Bid(member, Side.SELL, e_wh, price, bus)


def reference_greedy(
    bids: list[Bid],
    fees: np.ndarray,
    kappa: Fraction = Fraction(1, 2),
    tie_distance: np.ndarray | None = None,
) -> tuple[Trade, ...]:
    """The rule as written, over all pairs, O(trades * n * m)."""
    buys = [b for b in bids if b.side == Side.BUY]
    sells = [b for b in bids if b.side == Side.SELL]
    left = {b.member: b.e_wh for b in bids}
    out = []
    while True:
        best = None
        for b in buys:
            for s in sells:
                if left[b.member] == 0 or left[s.member] == 0:
                    continue
                fee = int(fees[s.bus, b.bus])
                surplus = b.price_per_kwh_micro - s.price_per_kwh_micro - fee
                if surplus <= 0:
                    continue
                dist = 0.0 if tie_distance is None else float(tie_distance[s.bus, b.bus])
                key = (-surplus, fee, dist, b.member, s.member)
                if best is None or key < best[0]:
                    best = (key, b, s, fee)
        if best is None:
            return tuple(out)
        _, b, s, fee = best
        e_wh = min(left[b.member], left[s.member])
        left[b.member] -= e_wh
        left[s.member] -= e_wh
        out.append(make_trade(b, s, e_wh, fee, kappa))


@settings(max_examples=400, deadline=None)
@given(fee_markets(), st.sampled_from([Fraction(1, 2), Fraction(0), Fraction(1), Fraction(1, 3)]))
def test_equals_slow_reference(market: MarketWithDistance, kappa: Fraction) -> None:
    bids, fees, _ = market
    assert clear_greedy(bids, fees, kappa).trades == reference_greedy(bids, fees, kappa)


@settings(max_examples=200, deadline=None)
@given(fee_markets())
def test_equals_slow_reference_with_tie_distance(market: MarketWithDistance) -> None:
    bids, fees, dist = market
    flat = np.full_like(fees, 2)
    got = clear_greedy(bids, flat, tie_distance=dist).trades
    assert got == reference_greedy(bids, flat, tie_distance=dist)


@settings(max_examples=200, deadline=None)
@given(fee_markets(max_buses=8, max_bids=40), st.fractions(0, 1, max_denominator=7))
def test_properties(market: MarketWithDistance, kappa: Fraction) -> None:
    bids, fees, _ = market
    check_fee_trades(clear_greedy(bids, fees, kappa).trades, bids, fees)
    check_fee_trades(clear_merit_order(bids, fees, kappa).trades, bids, fees)


def test_prices_split_surplus() -> None:
    fees = np.array([[0, 10], [10, 0]])
    (t,) = clear_greedy([buy(1, 500, 101, 0), sell(2, 500, 40, 1)], fees).trades
    # s = 101 - 40 - 10 = 51; seller gets 40 + 51 // 2 = 65, buyer pays 75
    assert (t.seller_price_per_kwh_micro, t.buyer_price_per_kwh_micro) == (65, 75)
    (t,) = clear_greedy([buy(1, 500, 101, 0), sell(2, 500, 40, 1)], fees, Fraction(1, 3)).trades
    assert (t.seller_price_per_kwh_micro, t.fee_per_kwh_micro) == (40 + 17, 10)


def test_nearby_seller_wins_tie_on_fee() -> None:
    fees = np.array([[0, 5, 9], [5, 0, 4], [9, 4, 0]])
    bids = [buy(7, 300, 100, 0), sell(1, 300, 41, 2), sell(2, 300, 45, 1), sell(3, 300, 50, 0)]
    # surpluses: seller 1: 100-41-9 = 50, seller 2: 100-45-5 = 50, seller 3: 100-50-0 = 50
    (t,) = clear_greedy(bids, fees).trades
    assert t.seller == 3  # smallest fee wins the tie, despite the highest ask and id


def test_nearby_wins_tie_on_distance_under_flat_fee() -> None:
    flat = np.full((3, 3), 5)
    dist = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    bids = [buy(9, 300, 100, 0), sell(1, 300, 40, 2), sell(2, 300, 40, 1)]
    assert clear_greedy(bids, flat).trades[0].seller == 1  # ids decide without distance
    assert clear_greedy(bids, flat, tie_distance=dist).trades[0].seller == 2


def test_nearby_wins_outright_when_fee_gap_exceeds_price_gap() -> None:
    fees = np.array([[0, 30], [30, 0]])
    # the far seller is 20 cheaper, but its trade pays 30 more in fees
    bids = [buy(1, 300, 100, 0), sell(2, 300, 40, 1), sell(3, 300, 60, 0)]
    assert clear_greedy(bids, fees).trades[0].seller == 3
    # the fee-blind merit order picks the far seller
    assert clear_merit_order(bids, fees).trades[0].seller == 2


def test_merit_order_cancels_segments_that_cannot_pay_the_fee() -> None:
    fees = np.array([[0, 50], [50, 0]])
    bids = [buy(1, 300, 100, 0), sell(2, 300, 60, 1)]
    assert clear_merit_order(bids, fees).trades == ()
    assert clear_greedy(bids, fees).trades == ()


@settings(max_examples=150, deadline=None)
@given(fee_markets(max_buses=6, max_bids=30), st.integers(0, 20))
def test_same_as_merit_order_under_a_uniform_fee(market: MarketWithDistance, fee: int) -> None:
    # with the same fee on every bus pair the surplus ranking is the price ranking
    bids, _, _ = market
    n = max((b.bus for b in bids), default=0) + 1
    flat = np.full((n, n), fee)
    assert clear_greedy(bids, flat).trades == clear_merit_order(bids, flat).trades


def test_no_orders_or_one_side() -> None:
    assert clear_greedy([]).trades == ()
    assert clear_greedy([buy(1, 100, 5, 0)]).trades == ()


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ClearingError, match="bus 3"):
        clear_greedy([buy(1, 100, 5, 3), sell(2, 100, 1, 0)], np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ClearingError, match="kappa"):
        clear_greedy([buy(1, 100, 5, 0)], None, 1.5)
    with pytest.raises(ClearingError, match="more than one order"):
        clear_greedy([buy(1, 100, 5, 0), sell(1, 100, 1, 0)])


def test_large_market_is_valid(large_fee_market: FeeMarket) -> None:
    """10,000 orders on 33 buses (its speed is measured by benchmarks/bench_clearing.py)."""
    bids, fees = large_fee_market
    trades = clear_greedy(bids, fees).trades
    check_fee_trades(trades, bids, fees)
    assert len(trades) > 1_000
