"""The canonical tie-break of the welfare-optimal rule (market/canonical.py).

On tie-heavy markets (equal prices, equal fees, several orders per bus): the rule's result
is unique (brute force over every integer clearing of tiny markets), independent of the
listing of the bids and of the optimum the solver starts from, certified by the perturbed
duals the chain checks, and has the welfare of the plain LP.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from tests.canonicalkit import all_clearings, tiny_tied_markets
from tests.conftest import FeeMarket, degenerate_fee_markets, fee_markets, tied_fee_markets

from gridledger.market.canonical import (
    CanonicalFlow,
    canonical_flow,
    check_canonical,
    member_weight,
    nw_pieces,
    pair_weight,
)
from gridledger.market.greedy import make_trade, split_books
from gridledger.market.optimal import certify, solve_optimal
from gridledger.market.orders import Bid, Side, Trade
from gridledger.market.welfare import bid_surplus_wh_micro

KAPPA = Fraction(1, 2)  # solve_optimal's default
Volumes = tuple[dict[int, int], dict[int, int], dict[tuple[int, int], int]]


def _volumes(x: dict[tuple[Bid, Bid], int]) -> Volumes:
    sellers: dict[int, int] = {}
    buyers: dict[int, int] = {}
    pairs: dict[tuple[int, int], int] = {}
    for (b, s), e in x.items():
        if e:
            sellers[s.member] = sellers.get(s.member, 0) + e
            buyers[b.member] = buyers.get(b.member, 0) + e
            pairs[s.bus, b.bus] = pairs.get((s.bus, b.bus), 0) + e
    return sellers, buyers, pairs


def _brute_force_canonical(bids: Sequence[Bid], fees: np.ndarray) -> tuple[int, list[Volumes]]:
    """Best welfare and the volume vectors of every optimum with the least tie penalty."""
    scored = []
    for x in all_clearings(bids):
        welfare = sum(
            (b.price_per_kwh_micro - s.price_per_kwh_micro - int(fees[s.bus, b.bus])) * e
            for (b, s), e in x.items()
        )
        sellers, buyers, pairs = _volumes(x)
        penalty = sum(member_weight(m) * e for m, e in (*sellers.items(), *buyers.items()))
        penalty += sum(pair_weight(p, q, len(fees)) * e for (p, q), e in pairs.items())
        scored.append((welfare, -penalty, (sellers, buyers, pairs)))
    best = max(s[:2] for s in scored)
    winners = []
    for welfare, neg_penalty, vol in scored:
        if (welfare, neg_penalty) == best and vol not in winners:
            winners.append(vol)
    return best[0], winners


def _trades_of(bids: Sequence[Bid], fees: np.ndarray, flow: CanonicalFlow) -> list[Trade]:
    books = split_books(bids, fees)
    return [
        make_trade(b, s, e, int(fees[s.bus, b.bus]), KAPPA)
        for b, s, e in nw_pieces(books.buys, books.sells, flow)
    ]


def _flow_of(vol: Volumes) -> CanonicalFlow:
    return CanonicalFlow(vol[0], vol[1], vol[2], {}, {}, {}, {})


@settings(max_examples=150, deadline=None)
@given(tiny_tied_markets())
def test_canonical_is_the_unique_brute_force_choice(market: FeeMarket) -> None:
    bids, fees = market
    sol = solve_optimal(bids, fees)
    best, winners = _brute_force_canonical(bids, fees)
    assert sol.welfare_wh_micro == best
    assert len(winners) == 1  # the tie-break leaves no choice
    assert _trades_of(bids, fees, _flow_of(winners[0])) == list(sol.trades)


@settings(max_examples=80, deadline=None)
@given(tiny_tied_markets())
def test_every_optimum_as_start_gives_the_same_result(market: FeeMarket) -> None:
    """Solver-path independence: start the tie-break from each welfare optimum."""
    bids, fees = market
    sol = solve_optimal(bids, fees)
    books = split_books(bids, fees)
    prices = (sol.seller_bus_price, sol.buyer_bus_price)
    for x in all_clearings(bids):
        if bid_surplus_wh_micro(_pair_trades(x, fees), bids) != sol.welfare_wh_micro:
            continue
        flow = canonical_flow(books.buys, books.sells, books.fees, _volumes(x), prices)
        assert _trades_of(bids, fees, flow) == list(sol.trades)


def _pair_trades(x: dict[tuple[Bid, Bid], int], fees: np.ndarray) -> list[Trade]:
    return [make_trade(b, s, e, int(fees[s.bus, b.bus]), KAPPA) for (b, s), e in x.items() if e]


def _check(bids: Sequence[Bid], fees: np.ndarray) -> None:
    sol = solve_optimal(bids, fees)
    welfare = {**sol.buyer_dual, **sol.seller_dual}
    tie = {**sol.tie_buyer_dual, **sol.tie_seller_dual}
    assert check_canonical(bids, fees, sol.trades, welfare, tie) == []
    cert = certify(bids, fees, sol.trades, sol.buyer_dual, sol.seller_dual)
    assert cert.ok, cert.problems
    assert cert.primal_wh_micro == cert.dual_wh_micro == sol.welfare_wh_micro
    assert sol.welfare_wh_micro == pytest.approx(sol.lp_objective_wh_micro, abs=1e-6)
    for t in sol.trades:
        assert t.e_wh > 0
    shuffled = list(bids)
    random.Random(len(bids)).shuffle(shuffled)
    assert solve_optimal(shuffled, fees).trades == sol.trades


@settings(max_examples=100, deadline=None)
@given(tied_fee_markets())
def test_tied_markets_certified_and_order_free(market: FeeMarket) -> None:
    _check(*market)


@settings(max_examples=60, deadline=None)
@given(degenerate_fee_markets())
def test_degenerate_markets_certified_and_order_free(market: FeeMarket) -> None:
    _check(*market)


@settings(max_examples=60, deadline=None)
@given(fee_markets(max_buses=6, max_bids=30))
def test_fee_markets_certified_and_order_free(market: tuple) -> None:
    _check(market[0], market[1])


def test_duplicate_orders_pair_by_id() -> None:
    """Two identical sellers and two identical buyers at one bus: the lower ids trade."""
    fees = np.zeros((1, 1), dtype=np.int64)
    bids = [
        Bid(7, Side.SELL, 10, 50, 0),
        Bid(3, Side.SELL, 10, 50, 0),
        Bid(9, Side.BUY, 10, 80, 0),
        Bid(4, Side.BUY, 5, 80, 0),
        Bid(5, Side.BUY, 10, 80, 0),
    ]
    sol = solve_optimal(bids, fees)
    assert [(t.buyer, t.seller, t.e_wh) for t in sol.trades] == [
        (4, 3, 5),
        (5, 3, 5),
        (5, 7, 5),
        (9, 7, 5),
    ]


def test_six_cycle_of_tied_bus_pairs_is_decided() -> None:
    """Three seller buses and three buyer buses joined by a 6-cycle of free pairs (the
    other three pairs are dear): both perfect matchings of the cycle have the same welfare
    and the same sum of (p + 1)(q + 1); the B**p weights still tell them apart."""
    fees = np.full((6, 6), 50, dtype=np.int64)
    for p, q in ((0, 3), (1, 3), (1, 5), (2, 5), (2, 4), (0, 4)):
        fees[p, q] = 0
    bids = [Bid(p, Side.SELL, 1, 10, p) for p in range(3)]
    bids += [Bid(q, Side.BUY, 1, 100, q) for q in range(3, 6)]
    sol = solve_optimal(bids, fees)
    assert sol.welfare_wh_micro == 3 * 90
    best, winners = _brute_force_canonical(bids, fees)
    assert best == sol.welfare_wh_micro and len(winners) == 1
    assert _trades_of(bids, fees, _flow_of(winners[0])) == list(sol.trades)
    assert sorted((t.seller_bus, t.buyer_bus) for t in sol.trades) == [(0, 3), (1, 5), (2, 4)]
