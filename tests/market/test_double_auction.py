"""The spine's uniform-price double auction: hand cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import books

from gridledger.errors import ClearingError
from gridledger.market import Bid, Side, Tariffs, clear_uniform, money_micro, settle


def buy(member: int, e_wh: int, price: int, bus: int = 1) -> Bid:
    return Bid(member, Side.BUY, e_wh, price, bus)


def sell(member: int, e_wh: int, price: int, bus: int = 2) -> Bid:
    return Bid(member, Side.SELL, e_wh, price, bus)


def test_hand_case_partial_fill_and_midpoint_price() -> None:
    # buys: 0 @ 300 (1000 Wh), 1 @ 200 (500 Wh); sells: 2 @ 100 (600 Wh), 3 @ 250 (800 Wh)
    result = clear_uniform(
        [buy(0, 1000, 300), buy(1, 500, 200), sell(2, 600, 100), sell(3, 800, 250)]
    )
    # 0 takes 600 from 2, then 400 from 3 (300 >= 250); buyer 1 @ 200 < 250 stops.
    assert [(t.buyer, t.seller, t.e_wh) for t in result.trades] == [(0, 2, 600), (0, 3, 400)]
    assert result.price_per_kwh_micro == (300 + 250) // 2


def test_no_cross_no_trade() -> None:
    result = clear_uniform([buy(0, 1000, 100), sell(1, 1000, 200)])
    assert result.trades == ()
    assert result.price_per_kwh_micro is None


def test_ties_go_to_lower_member_id() -> None:
    result = clear_uniform([buy(5, 100, 300), buy(3, 100, 300), sell(9, 100, 100)])
    assert result.trades[0].buyer == 3


def test_one_sided_market() -> None:
    assert clear_uniform([buy(0, 10, 1)]).trades == ()
    assert clear_uniform([]).trades == ()


@pytest.mark.parametrize(
    "bad",
    [
        [buy(0, 0, 100)],
        [buy(0, 10, -1)],
        [buy(0, 10, 100), sell(0, 10, 50)],
        [Bid(-1, Side.BUY, 10, 10, 1)],
    ],
)
def test_invalid_bids_are_named(bad: list[Bid]) -> None:
    with pytest.raises(ClearingError, match="bid #"):
        clear_uniform(bad)


@settings(max_examples=300, deadline=None)
@given(books())
def test_properties(bids: list[Bid]) -> None:
    result = clear_uniform(bids)
    by_id = {b.member: b for b in bids}
    bought: dict[int, int] = {}
    sold: dict[int, int] = {}
    for t in result.trades:
        b, s = by_id[t.buyer], by_id[t.seller]
        assert b.side == Side.BUY and s.side == Side.SELL
        # no trade above the bid or below the ask
        assert s.price_per_kwh_micro <= t.seller_price_per_kwh_micro
        assert t.buyer_price_per_kwh_micro <= b.price_per_kwh_micro
        # budget balance: one price for both sides
        assert t.buyer_price_per_kwh_micro == t.seller_price_per_kwh_micro
        assert t.e_wh > 0
        bought[t.buyer] = bought.get(t.buyer, 0) + t.e_wh
        sold[t.seller] = sold.get(t.seller, 0) + t.e_wh
    # supply equals demand and no order is over-filled
    assert sum(bought.values()) == sum(sold.values())
    assert all(v <= by_id[m].e_wh for m, v in bought.items())
    assert all(v <= by_id[m].e_wh for m, v in sold.items())
    # efficiency of the rule: after clearing, no remaining buyer and seller could still cross
    rem_buy = [b for b in bids if b.side == Side.BUY and bought.get(b.member, 0) < b.e_wh]
    rem_sell = [s for s in bids if s.side == Side.SELL and sold.get(s.member, 0) < s.e_wh]
    if rem_buy and rem_sell:
        assert max(b.price_per_kwh_micro for b in rem_buy) < min(
            s.price_per_kwh_micro for s in rem_sell
        )


@settings(max_examples=200, deadline=None)
@given(books(), st.integers(0, 2**16), st.data())
def test_settlement_conserves_money(bids: list[Bid], seed: int, data: st.DataObject) -> None:
    result = clear_uniform(bids)
    readings = {
        b.member: data.draw(st.integers(-60_000, 60_000), label=f"reading {b.member}") for b in bids
    }
    tariffs = Tariffs(300_000, 80_000)
    s = settle(result.trades, readings, tariffs)
    assert s.conserved()
    assert sum(s.deltas().values()) == 0
    for t in result.trades:
        assert money_micro(t.e_wh, t.buyer_price_per_kwh_micro) >= 0
