"""On random markets the chain's clearing and settlement equal market/'s to the unit, with
random DSO margins whose justified curtailments the chain checks against the committed
feeder network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ledgerkit import (
    FEEDER_COMMITMENT,
    N_MEMBERS,
    ROUNDS,
    TARIFFS,
    Market,
    bids_of,
    deliver_and_settle,
    justified,
    make_market,
    margins_npct,
)
from tests.conftest import bid_rows

from gridledger.ledger.audit import audit
from gridledger.market import clear_uniform

round_rows = bid_rows(
    N_MEMBERS,
    e_wh=st.integers(1, 5_000),
    price_per_kwh_micro=st.integers(50_000, TARIFFS.retail_per_kwh_micro),
)


@pytest.fixture(scope="module")
def feeder_market() -> Iterator[Market]:
    yield make_market(network=FEEDER_COMMITMENT)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rounds=st.lists(round_rows, min_size=ROUNDS, max_size=ROUNDS),
    readings=st.lists(st.integers(-8_000, 8_000), min_size=N_MEMBERS, max_size=N_MEMBERS),
    margins=margins_npct,
)
def test_chain_equals_reference(feeder_market: Market, rounds, readings, margins) -> None:
    market = feeder_market
    market.release()  # a failed example (while shrinking) may leave its interval pending
    ledger = market.ledger
    interval = market.take_interval()
    for k, rows in enumerate(rounds):
        ledger.record_round(interval, k, bids_of(rows))
    reference = clear_uniform(bids_of(rounds[-1]))
    onchain = ledger.clear(interval)
    assert onchain == reference
    cut = justified(reference.trades, margins)
    event("curtailed" if cut.curtailments else "not curtailed")
    event("unresolvable rows" if cut.unresolvable else "all rows fixable")
    deliver_and_settle(ledger, interval, reference.trades, readings, margins)


def test_audit_of_the_module_chain(feeder_market: Market) -> None:
    market = feeder_market
    ledger = market.ledger
    interval = market.take_interval()
    ledger.record_round(interval, 0, bids_of([]))
    ledger.record_round(interval, 1, bids_of([]))
    ledger.clear(interval)
    deliver_and_settle(ledger, interval, (), [0] * N_MEMBERS)
    report = audit(ledger)
    assert report.ok, (report.problems, report.findings)
    assert report.intervals_checked == report.intervals_settled
