"""On random markets the chain's clearing and settlement equal market/'s to the unit."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import N_MEMBERS, ROUNDS, Market, bids_of, deliver_and_settle
from tests.conftest import bid_rows

from gridledger.ledger.audit import audit
from gridledger.market import clear_uniform

round_rows = bid_rows(
    N_MEMBERS,
    e_wh=st.integers(1, 5_000),
    price_per_kwh_micro=st.integers(50_000, 350_000),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rounds=st.lists(round_rows, min_size=ROUNDS, max_size=ROUNDS),
    readings=st.lists(st.integers(-8_000, 8_000), min_size=N_MEMBERS, max_size=N_MEMBERS),
    cut_seed=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 100)), max_size=3),
)
def test_chain_equals_reference(market: Market, rounds, readings, cut_seed) -> None:
    ledger = market.ledger
    interval = market.take_interval()
    for k, rows in enumerate(rounds):
        ledger.record_round(interval, k, bids_of(rows))
    reference = clear_uniform(bids_of(rounds[-1]))
    onchain = ledger.clear(interval)
    assert onchain == reference
    deliver_and_settle(ledger, interval, reference.trades, readings, cut_seed, "line")


def test_audit_of_the_module_chain(market: Market) -> None:
    report = audit(market.ledger)
    assert report.ok, report.problems
    assert report.intervals_checked == report.intervals_settled
