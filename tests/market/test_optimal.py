"""Welfare-optimal clearing (HiGHS LP), its dual certificate, and the greedy/merit gaps."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import (
    FeeMarket,
    MarketWithDistance,
    check_fee_trades,
    degenerate_fee_markets,
    fee_markets,
)

from gridledger.market.greedy import clear_greedy
from gridledger.market.merit_order import clear_merit_order
from gridledger.market.optimal import certify, clear_optimal, solve_optimal
from gridledger.market.orders import Bid, Side
from gridledger.market.welfare import bid_surplus_wh_micro as surplus_wh_micro


def brute_force_optimum(bids: list[Bid], fees: np.ndarray) -> int:
    """Best welfare over integer flows in 100 Wh steps (tiny markets only)."""
    buys = [b for b in bids if b.side == Side.BUY]
    sells = [b for b in bids if b.side == Side.SELL]
    pairs = [(b, s) for b in buys for s in sells]
    best = 0
    ranges = [range(0, min(b.e_wh, s.e_wh) + 1, 100) for b, s in pairs]
    for flows in itertools.product(*ranges):
        left = {x.member: x.e_wh for x in bids}
        value = 0
        for (b, s), x in zip(pairs, flows, strict=True):
            left[b.member] -= x
            left[s.member] -= x
            value += (b.price_per_kwh_micro - s.price_per_kwh_micro - fees[s.bus, b.bus]) * x
        if min(left.values(), default=0) >= 0:
            best = max(best, value)
    return best


MYOPIC_FEES = np.array([[0, 1, 10], [1, 0, 19], [10, 19, 0]])
MYOPIC_BIDS = [
    Bid(1, Side.BUY, 300, 100, 0),
    Bid(2, Side.BUY, 300, 100, 1),
    Bid(3, Side.SELL, 300, 90, 0),
    Bid(4, Side.SELL, 300, 81, 2),
]


def test_hand_case_greedy_is_myopic() -> None:
    # s(1,3) = 10 is the best pair; greedy takes it and blocks s(2,3) = 9 and s(1,4) = 9
    # (s(2,4) = 0 cannot trade). The LP takes the two 9s.
    bids, fees = MYOPIC_BIDS, MYOPIC_FEES
    greedy = surplus_wh_micro(clear_greedy(bids, fees).trades, bids)
    sol = solve_optimal(bids, fees)
    assert greedy == 300 * 10
    assert sol.welfare_wh_micro == 300 * 18 == brute_force_optimum(bids, fees)
    cert = certify(bids, fees, sol.trades, sol.buyer_dual, sol.seller_dual)
    assert cert.ok, cert.problems
    greedy_cert = certify(
        bids, fees, clear_greedy(bids, fees).trades, sol.buyer_dual, sol.seller_dual
    )
    assert not greedy_cert.ok


@settings(max_examples=60, deadline=None)
@given(fee_markets(max_buses=3, max_bids=5))
def test_lp_matches_brute_force_on_tiny_markets(market: MarketWithDistance) -> None:
    bids, fees, _ = market
    if sum(b.e_wh for b in bids) > 1500:
        bids = [
            Bid(b.member, b.side, 100 * (1 + b.e_wh // 300), b.price_per_kwh_micro, b.bus)
            for b in bids
        ]
    sol = solve_optimal(bids, fees)
    assert sol.welfare_wh_micro == brute_force_optimum(bids, fees)


@settings(max_examples=150, deadline=None)
@given(fee_markets(max_buses=8, max_bids=40))
def test_certificate_and_integrality(market: MarketWithDistance) -> None:
    bids, fees, _ = market
    sol = solve_optimal(bids, fees)
    check_fee_trades(sol.trades, bids, fees)
    assert sol.welfare_wh_micro == surplus_wh_micro(sol.trades, bids)
    assert sol.welfare_wh_micro == pytest.approx(sol.lp_objective_wh_micro, abs=1e-6)
    cert = certify(bids, fees, sol.trades, sol.buyer_dual, sol.seller_dual)
    assert cert.ok, cert.problems
    assert cert.primal_wh_micro == cert.dual_wh_micro  # strong duality, exact in integers
    greedy = surplus_wh_micro(clear_greedy(bids, fees).trades, bids)
    merit = surplus_wh_micro(clear_merit_order(bids, fees).trades, bids)
    assert merit <= sol.welfare_wh_micro
    assert 2 * greedy >= sol.welfare_wh_micro >= greedy  # greedy is a 1/2-approximation
    assert clear_optimal(bids, fees).trades == sol.trades


def test_certificate_rejects_a_suboptimal_clearing() -> None:
    bids, fees = MYOPIC_BIDS, MYOPIC_FEES
    sol = solve_optimal(bids, fees)
    cert = certify(bids, fees, sol.trades[:1], sol.buyer_dual, sol.seller_dual)
    assert not cert.ok
    zero = dict.fromkeys(sol.buyer_dual, 0)
    cert = certify(bids, fees, sol.trades, zero, dict.fromkeys(sol.seller_dual, 0))
    assert not cert.ok and any("dual infeasible" in p for p in cert.problems)


@pytest.mark.slow  # 1,000 LPs, about 8 s: the fast lane keeps the certificate tests
def test_thousand_markets_greedy_merit_and_lp(small_fee_markets: Sequence[FeeMarket]) -> None:
    """1,000 seeded markets on 33 buses: what holds between greedy, merit order and the LP."""
    greedy_gaps, merit_gaps = [], []
    greedy_below_merit = 0
    total = {"greedy": 0, "merit": 0, "lp": 0}
    for seed, (bids, fees) in enumerate(small_fee_markets):
        sol = solve_optimal(bids, fees)
        cert = certify(bids, fees, sol.trades, sol.buyer_dual, sol.seller_dual)
        assert cert.ok, (seed, cert.problems)
        greedy_trades = clear_greedy(bids, fees).trades
        merit_trades = clear_merit_order(bids, fees).trades
        check_fee_trades(greedy_trades, bids, fees)
        greedy = surplus_wh_micro(greedy_trades, bids)
        merit = surplus_wh_micro(merit_trades, bids)
        best = sol.welfare_wh_micro
        assert merit <= best and greedy <= best and 2 * greedy >= best
        if not np.any(fees):  # without fees both rules are the optimal merit order
            assert greedy == merit == best
        greedy_below_merit += greedy < merit
        total["greedy"] += greedy
        total["merit"] += merit
        total["lp"] += best
        if best > 0:
            greedy_gaps.append(1 - greedy / best)
            merit_gaps.append(1 - merit / best)
    # Greedy is myopic: in a few markets the fee-blind merit order is luckily better
    # (see docs/clearing.md). Observed: 10 of 1,000; mean gap 1.8 %, worst 19.2 %.
    assert greedy_below_merit <= 20
    assert total["greedy"] > total["merit"]
    assert np.mean(greedy_gaps) < 0.03 and max(greedy_gaps) < 0.25
    assert np.mean(merit_gaps) > np.mean(greedy_gaps)


def test_welfare_units() -> None:
    bids = [Bid(1, Side.BUY, 1500, 200_000, 0), Bid(2, Side.SELL, 1500, 100_000, 1)]
    fees = np.array([[0, 20_000], [20_000, 0]])
    trades = clear_greedy(bids, fees).trades
    # (0.20 - 0.10 - 0.02) tokens/kWh * 1.5 kWh = 0.12 tokens = 120,000 micro
    assert surplus_wh_micro(trades, bids) == 120_000_000


@settings(max_examples=60, deadline=None)
@given(degenerate_fee_markets(), st.integers(0, 1000))
def test_optimal_trades_do_not_depend_on_bid_order(market: FeeMarket, perm: int) -> None:
    """Degenerate LPs have several optima; the rule must pick the same one for any listing."""
    bids, fees = market
    shuffled = list(bids)
    random.Random(perm).shuffle(shuffled)
    assert solve_optimal(bids, fees).trades == solve_optimal(shuffled, fees).trades
