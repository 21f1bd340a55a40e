"""Deviation rules of the settlement reference: hand cases per branch and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from tests.conftest import SettlementCase, settlement_cases

from gridledger.errors import SettlementError
from gridledger.market import GRID, OPERATOR, Trade
from gridledger.market.settlement import (
    Settlement,
    Tariffs,
    allocate_cumulative,
    settle,
    tolerance_bp_from_pct,
)

RETAIL, FEED_IN = 300_000, 80_000
T0 = Tariffs(RETAIL, FEED_IN)
T10 = Tariffs(RETAIL, FEED_IN, tolerance_bp=1000)  # +-10 % band
B, S = 1, 2  # buyer, seller
PRICE = 150_000


def _trade(e_wh: int = 1000, buyer: int = B, seller: int = S, pb: int = PRICE, ps: int = PRICE):
    return Trade(buyer, seller, e_wh, pb, ps, 1, 2)


def _energy_ok(s: Settlement) -> bool:
    return all(
        m.actual_net_wh == m.p2p_sold_wh - m.p2p_bought_wh + m.grid_export_wh - m.grid_import_wh
        for m in s.members.values()
    )


def test_on_schedule_is_plain_p2p() -> None:
    s = settle([_trade()], {B: -1000, S: 1000}, T0)
    assert s.deltas() == {B: -150_000, S: 150_000, GRID: 0, OPERATOR: 0}
    assert s.imbalance_wh == 0 and s.penalties_micro == 0


def test_seller_short_buyer_pays_its_contract() -> None:
    # Seller delivers 600 of 1000 Wh: the buyer gets 400 Wh from the grid at retail
    # (120,000) and the seller pays it (0.30 - 0.15) * 0.4 kWh = 60,000.
    s = settle([_trade()], {B: -1000, S: 600}, T0)
    b, sel = s.members[B], s.members[S]
    assert b.p2p_paid_micro == 90_000 and b.p2p_bought_wh == 600
    assert b.grid_import_wh == 400 and b.grid_paid_micro == 120_000
    assert b.penalty_received_micro == 60_000 == sel.penalty_paid_micro
    assert b.net_micro == -150_000  # exactly the contract
    assert sel.net_micro == 90_000 - 60_000
    assert sel.imbalance_wh == 400 and sel.imbalance_cost_micro == 60_000
    assert b.imbalance_wh == 0 and b.imbalance_cost_micro == 0
    assert s.conserved() and _energy_ok(s)


def test_seller_short_beyond_its_sale_imports_the_rest() -> None:
    s = settle([_trade()], {B: -1000, S: -200}, T0)
    sel = s.members[S]
    assert sel.penalty_paid_micro == 150_000  # whole 1000 Wh short
    assert sel.grid_import_wh == 200 and sel.grid_paid_micro == 60_000  # own consumption
    assert s.members[B].net_micro == -150_000
    assert s.conserved() and _energy_ok(s)


def test_seller_surplus_at_feed_in() -> None:
    s = settle([_trade()], {B: -1000, S: 1500}, T0)
    sel = s.members[S]
    assert sel.grid_export_wh == 500 and sel.grid_received_micro == 40_000
    assert sel.net_micro == 190_000
    assert sel.imbalance_cost_micro == 75_000 - 40_000
    assert s.conserved() and _energy_ok(s)


def test_buyer_over_consumption_at_retail() -> None:
    s = settle([_trade()], {B: -1500, S: 1000}, T0)
    b = s.members[B]
    assert b.grid_import_wh == 500 and b.grid_paid_micro == 150_000
    assert b.net_micro == -300_000 and b.imbalance_cost_micro == 150_000 - 75_000
    assert s.conserved() and _energy_ok(s)


def test_buyer_under_consumption_take_or_pay_resold_at_feed_in() -> None:
    s = settle([_trade()], {B: -400, S: 1000}, T0)
    b = s.members[B]
    assert b.p2p_paid_micro == 150_000  # pays the whole contract
    assert b.grid_export_wh == 600 and b.grid_received_micro == 48_000
    assert b.imbalance_cost_micro == 90_000 - 48_000
    assert s.members[S].net_micro == 150_000
    # Beyond its whole purchase it injects: exported at feed-in too.
    s = settle([_trade()], {B: 300, S: 1000}, T0)
    assert s.members[B].grid_export_wh == 1300
    assert s.members[B].grid_received_micro == 80_000 + 24_000
    assert s.conserved() and _energy_ok(s)


def test_tolerance_band_settles_at_trade_price() -> None:
    band = 100  # 10 % of 1000 Wh
    # Seller short 400: 100 in band (buyer pays the trade price to the grid), 300 at retail.
    s = settle([_trade()], {B: -1000, S: 600}, T10)
    b, sel = s.members[B], s.members[S]
    assert b.grid_paid_micro == band * PRICE // 1000 + 300 * RETAIL // 1000
    assert sel.penalty_paid_micro == 300 * (RETAIL - PRICE) // 1000
    assert b.net_micro == -150_000
    # Seller surplus 50 (inside the band): sold to the grid at its trade price.
    s = settle([_trade()], {B: -1000, S: 1050}, T10)
    assert s.members[S].grid_received_micro == 50 * PRICE // 1000
    assert s.members[S].imbalance_cost_micro == 0
    # Buyer over 250: 100 at the trade price, 150 at retail.
    s = settle([_trade()], {B: -1250, S: 1000}, T10)
    assert s.members[B].grid_paid_micro == 15_000 + 45_000
    # Buyer under 80 (inside): resold at its trade price, so it pays only what it took.
    s = settle([_trade()], {B: -920, S: 1000}, T10)
    assert s.members[B].net_micro == -150_000 + 12_000 == -920 * PRICE // 1000
    assert s.conserved() and _energy_ok(s)


def test_non_trader_at_tariffs() -> None:
    s = settle([], {5: 1000, 6: -1000, 7: 0}, T10)
    assert s.deltas() == {5: 80_000, 6: -300_000, 7: 0, GRID: 220_000, OPERATOR: 0}
    assert s.imbalance_wh == 0  # no schedule, no imbalance


def test_fees_on_delivered_energy_and_buyer_contract_exact() -> None:
    trade = _trade(pb=170_000, ps=130_000)
    s = settle([trade], {B: -1000, S: 700}, T0)
    assert s.fees_micro == 700 * 40_000 // 1000
    assert s.members[B].net_micro == -170_000
    assert s.conserved()


def test_pro_rata_over_trades_with_cumulative_floors() -> None:
    trades = [_trade(1, buyer=3), _trade(1, buyer=4), _trade(1, buyer=5)]
    s = settle(trades, {3: -1, 4: -1, 5: -1, S: 1}, T0)  # seller short 2 of 3 Wh
    assert [s.members[m].grid_import_wh for m in (3, 4, 5)] == [0, 1, 1]
    assert allocate_cumulative(2, [1, 1, 1]) == [0, 1, 1]
    assert allocate_cumulative(10, [3, 0, 7]) == [3, 0, 7]
    assert allocate_cumulative(5, [0, 0]) == [0, 0]


def test_errors() -> None:
    with pytest.raises(SettlementError, match="no meter reading"):
        settle([_trade()], {B: 0}, T0)
    with pytest.raises(SettlementError, match="both buys and sells"):
        settle([_trade(), _trade(buyer=S, seller=9)], {B: 0, S: 0, 9: 0}, T0)
    with pytest.raises(SettlementError, match="tolerance_bp"):
        Tariffs(RETAIL, FEED_IN, 10_001)
    with pytest.raises(SettlementError, match="tolerance_pct"):
        tolerance_bp_from_pct(150)
    assert tolerance_bp_from_pct(5) == 500


@settings(max_examples=300, deadline=None)
@given(settlement_cases())
def test_conservation_and_energy_balance(case: SettlementCase) -> None:
    trades, readings, tariffs = case
    s = settle(trades, readings, tariffs)
    assert s.conserved()
    assert sum(s.deltas().values()) == 0
    assert _energy_ok(s)
    for m in s.members.values():
        assert min(m.grid_import_wh, m.grid_export_wh, m.penalty_paid_micro) >= 0
        assert m.imbalance_wh in (0, abs(m.deviation_wh))
    # A buyer whose sellers fall short pays exactly its contracts when retail >= its price.
    for member, line in s.members.items():
        own = [t for t in trades if t.buyer == member]
        if (
            own
            and line.deviation_wh == 0
            and all(t.buyer_price_per_kwh_micro <= tariffs.retail_per_kwh_micro for t in own)
        ):
            contract = sum(t.e_wh * t.buyer_price_per_kwh_micro // 1000 for t in own)
            assert contract - len(own) <= -line.net_micro <= contract
