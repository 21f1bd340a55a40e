"""The chain accepts only the canonical welfare optimum (FeeClearing.verifyOptimal).

On tiny tie-heavy markets every other clearing of equal welfare (brute force over all
integer clearings) is rejected with ``NonCanonicalOptimum`` when submitted with the
canonical certificate, and the canonical one is accepted; a listing of the canonical
trades in another order is rejected by the pairing check.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest
from benchmarks.fee_harness import FeeClearingHarness, FeeClearingRejected
from hypothesis import HealthCheck, given, settings
from tests.canonicalkit import all_clearings, tiny_tied_markets
from tests.conftest import FeeMarket

from gridledger.ledger.backends import EmbeddedBackend
from gridledger.ledger.encoding import address_of, derive_key
from gridledger.market.canonical import check_canonical, seller_queue_key
from gridledger.market.greedy import make_trade
from gridledger.market.optimal import solve_optimal
from gridledger.market.orders import Bid, Side, Trade
from gridledger.market.welfare import bid_surplus_wh_micro

KAPPA = Fraction(1, 2)


@pytest.fixture(scope="module")
def harness() -> Iterator[FeeClearingHarness]:
    key = derive_key(b"tests-optimal-canonical", "operator")
    backend = EmbeddedBackend(funded=[address_of(key)])
    yield FeeClearingHarness.deploy(backend, key)


def _listed(x: dict[tuple[Bid, Bid], int], fees: np.ndarray) -> list[Trade]:
    """A clearing's trades in the canonical listing order (bus pair, then queue order)."""
    items = sorted(
        ((b, s, e) for (b, s), e in x.items() if e),
        key=lambda r: (
            r[1].bus,
            r[0].bus,
            seller_queue_key(r[1]),
            -r[0].price_per_kwh_micro,
            r[0].member,
        ),
    )
    return [make_trade(b, s, e, int(fees[s.bus, b.bus]), KAPPA) for b, s, e in items]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(market=tiny_tied_markets())
def test_only_the_canonical_optimum_is_accepted(
    harness: FeeClearingHarness, market: FeeMarket
) -> None:
    bids, fees = market
    sol = solve_optimal(bids, fees, KAPPA)
    duals = (sol.buyer_dual, sol.seller_dual, sol.tie_buyer_dual, sol.tie_seller_dual)
    welfare = {**sol.buyer_dual, **sol.seller_dual}
    tie = {**sol.tie_buyer_dual, **sol.tie_seller_dual}
    harness.set_fee_table(fees)
    assert harness.verify_optimal(bids, fees, sol.trades, *duals) == sol.welfare_wh_micro
    rejected = 0
    for x in all_clearings(bids):
        trades = _listed(x, fees)
        if bid_surplus_wh_micro(trades, bids) != sol.welfare_wh_micro or trades == list(sol.trades):
            continue
        with pytest.raises(FeeClearingRejected) as info:
            harness.verify_optimal(bids, fees, trades, *duals)
        assert info.value.error == "NonCanonicalOptimum", info.value
        problems = check_canonical(bids, fees, trades, welfare, tie)  # the Python mirror agrees
        assert problems and all(name != "welfare" for name, _ in problems)
        rejected += 1
    if len(sol.trades) > 1 and list(reversed(sol.trades)) != list(sol.trades):
        with pytest.raises(FeeClearingRejected) as info:
            harness.verify_optimal(bids, fees, list(reversed(sol.trades)), *duals)
        assert info.value.error == "NonCanonicalOptimum"
        assert info.value.args_[0] == 3


def test_equal_sellers_split_by_id(harness: FeeClearingHarness) -> None:
    """Two sellers with the same ask at one bus: the lower id must sell first."""
    fees = np.zeros((1, 1), dtype=np.int64)
    bids = [
        Bid(1, Side.BUY, 10, 100, 0),
        Bid(2, Side.SELL, 10, 50, 0),
        Bid(3, Side.SELL, 10, 50, 0),
    ]
    sol = solve_optimal(bids, fees, KAPPA)
    assert [(t.buyer, t.seller) for t in sol.trades] == [(1, 2)]
    harness.set_fee_table(fees)
    duals = (sol.buyer_dual, sol.seller_dual, sol.tie_buyer_dual, sol.tie_seller_dual)
    assert harness.verify_optimal(bids, fees, sol.trades, *duals) == 500
    other = [make_trade(bids[0], bids[2], 10, 0, KAPPA)]
    with pytest.raises(FeeClearingRejected) as info:
        harness.verify_optimal(bids, fees, other, *duals)
    assert info.value.error == "NonCanonicalOptimum"
    split = [make_trade(bids[0], bids[1], 5, 0, KAPPA), make_trade(bids[0], bids[2], 5, 0, KAPPA)]
    with pytest.raises(FeeClearingRejected) as info:
        harness.verify_optimal(bids, fees, split, *duals)
    assert info.value.error == "NonCanonicalOptimum"
