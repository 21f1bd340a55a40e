"""Deviation settlement on chain: equal to market/settlement.py to the unit (with a tolerance
band, readings around the schedule so every branch runs), and the meter-reading rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import Market
from tests.conftest import bid_rows

from gridledger.ledger import EmbeddedBackend, Ledger, LedgerMember
from gridledger.ledger import encoding as enc
from gridledger.ledger.audit import audit
from gridledger.market import Bid, Side, Tariffs, clear_uniform, settle
from gridledger.market.orders import Curtailment, apply_curtailments

TARIFFS = Tariffs(retail_per_kwh_micro=300_000, feed_in_per_kwh_micro=80_000, tolerance_bp=500)
N = 10
SEED = b"settlement-tests"


def _bus(member: int) -> int:
    return member % 4 + 1


@pytest.fixture(scope="module")
def band_market() -> Iterator[Market]:
    members = [LedgerMember(i, _bus(i), 2) for i in range(N)]
    accounts = [enc.address_of(enc.derive_key(SEED, "operator"))]
    ledger = Ledger(EmbeddedBackend(funded=accounts), "embedded", None, seed=SEED)
    ledger.setup(members, TARIFFS, 1, 10**6)  # small escrow: some members go into debt
    yield Market(ledger, b"", b"")


round_rows = bid_rows(
    N,
    e_wh=st.integers(1, 4_000),
    price_per_kwh_micro=st.integers(60_000, 320_000),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=round_rows,
    errors=st.lists(st.integers(-150, 150), min_size=N, max_size=N),
    cut=st.integers(0, 100),
)
def test_chain_equals_reference_with_band(band_market: Market, rows, errors, cut) -> None:
    ledger = band_market.ledger
    t = band_market.take_interval()
    bids = [Bid(m, side, e, p, _bus(m)) for m, side, e, p in rows]
    ledger.record_round(t, 0, bids)
    reference = clear_uniform(bids)
    assert ledger.clear(t) == reference
    curtailments = []
    if reference.trades and cut:
        curtailments = [Curtailment(0, reference.trades[0].e_wh * cut // 100, "line", 1)]
    ledger.record_security(t, curtailments)
    delivered = apply_curtailments(reference.trades, curtailments)
    scheduled = dict.fromkeys(range(N), 0)
    for tr in delivered:
        scheduled[tr.buyer] -= tr.e_wh
        scheduled[tr.seller] += tr.e_wh
    # Forecast error in percent of the schedule (non-traders: their own net).
    readings = {
        m: s + s * err // 100 if s else err * 10
        for (m, s), err in zip(scheduled.items(), errors, strict=True)
    }
    ledger.record_readings(t, readings)
    expected = settle(delivered, readings, TARIFFS)
    assert ledger.settle(t) == expected.deltas()
    ledger.end_interval(t)
    assert ledger.conserved()


def test_audit_with_band(band_market: Market) -> None:
    report = audit(band_market.ledger)
    assert report.ok, report.problems
    assert band_market.ledger.view("toleranceBp")[0] == 500


def _readings(ledger: Ledger, interval: int, rows: list[tuple[int, int, int]]):
    """rows: (member in the word, net Wh, member whose meter signs)."""
    words, sigs = [], []
    for member, net, signer in rows:
        word = enc.pack_reading(member, net)
        r, vs = enc.sign_compact(
            ledger.signer.meter_key(signer),
            enc.reading_digest(ledger.signer.domain, interval, word),
        )
        words.append(word)
        sigs += [r, vs]
    return words, sigs


def test_meter_reports_only_its_member_once_in_delivery(band_market: Market) -> None:
    ledger = band_market.ledger
    t = band_market.take_interval()
    words, sigs = _readings(ledger, t, [(1, -100, 1), (2, 100, 2)])
    assert band_market.market_call("recordReadings", t, words, sigs) == "WrongPhase"
    ledger.record_round(t, 0, [Bid(1, Side.BUY, 100, 200_000, _bus(1))])
    ledger.clear(t)
    assert band_market.market_call("recordReadings", t, words, sigs) == "WrongPhase"
    ledger.record_security(t, [])
    # Member 2's meter reports for member 1: rejected by name, whatever it signs.
    bad, bad_sigs = _readings(ledger, t, [(1, -100, 2), (2, 100, 2)])
    assert band_market.market_call("recordReadings", t, bad, bad_sigs) == "NotMemberMeter"
    # The same member twice in one batch.
    dup, dup_sigs = _readings(ledger, t, [(1, -100, 1), (1, -90, 1)])
    assert band_market.market_call("recordReadings", t, dup, dup_sigs) == "DuplicateReading"
    assert band_market.market_call("recordReadings", t, words, sigs) is None
    # A second batch for the interval (another reading of member 1, or anyone).
    again, again_sigs = _readings(ledger, t, [(1, -50, 1)])
    assert (
        band_market.market_call("recordReadings", t, again, again_sigs) == "ReadingsAlreadyRecorded"
    )
    assert band_market.market_call("settle", t, [], words, []) is None
    assert (
        band_market.market_call("recordReadings", t, again, again_sigs) == "WrongPhase"
    )  # settled
