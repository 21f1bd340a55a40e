"""Deviation settlement on chain: equal to market/settlement.py to the unit (with a tolerance
band, readings around the schedule so every branch runs), and the meter-reading rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import (
    BAND_TARIFFS,
    FEEDER_COMMITMENT,
    Market,
    band_bus,
    band_rows,
    justified,
    make_market,
    margins_npct,
)

from gridledger.ledger import Ledger
from gridledger.ledger import encoding as enc
from gridledger.ledger.audit import audit
from gridledger.market import Bid, Side, clear_uniform, settle
from gridledger.market.orders import apply_curtailments

TARIFFS = BAND_TARIFFS
N = 10
SEED = b"settlement-tests"

_bus = band_bus


@pytest.fixture(scope="module")
def band_market() -> Iterator[Market]:
    # Small escrow: members go into debt; bids are topped up so that none is left out.
    yield make_market(
        N, 1, tariffs=TARIFFS, deposit=10**6, bus=_bus, network=FEEDER_COMMITMENT, seed=SEED
    )


round_rows = band_rows(N)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=round_rows,
    errors=st.lists(st.integers(-150, 150), min_size=N, max_size=N),
    margins=margins_npct,
)
def test_chain_equals_reference_with_band(band_market: Market, rows, errors, margins) -> None:
    market = band_market
    market.release()  # a failed example (while shrinking) may leave its interval pending
    ledger = market.ledger
    t = market.take_interval()
    bids = [Bid(m, side, e, p, _bus(m)) for m, side, e, p in rows]
    market.top_up(bids)
    market.reserve_up()
    ledger.record_round(t, 0, bids)
    reference = clear_uniform(bids)
    assert ledger.clear(t) == reference
    cut = justified(reference.trades, margins)
    ledger.record_security(
        t, cut.curtailments, cut.margins, cut.certificate, unresolved=bool(cut.unresolvable)
    )
    delivered = apply_curtailments(reference.trades, cut.curtailments)
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
    assert ledger.conserved() and ledger.view("solvent")[0]


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
    market = band_market
    market.release()
    ledger = market.ledger
    t = market.take_interval()
    honest = [(m, -100 if m == 1 else 0, m) for m in range(N)]
    words, sigs = _readings(ledger, t, honest)
    assert market.market_call("recordReadings", t, words, sigs, len(words)) == "WrongPhase"
    bid = Bid(1, Side.BUY, 100, 200_000, _bus(1))
    market.top_up([bid])
    ledger.record_round(t, 0, [bid])
    ledger.clear(t)
    assert market.market_call("recordReadings", t, words, sigs, len(words)) == "WrongPhase"
    ledger.record_security(t, [])
    # Member 2's meter reports for member 1: rejected by name, whatever it signs.
    forged = [(1, -100, 2) if m == 1 else row for m, row in enumerate(honest)]
    bad, bad_sigs = _readings(ledger, t, forged)
    assert market.market_call("recordReadings", t, bad, bad_sigs, len(bad)) == "NotMemberMeter"
    # The same member twice in one batch.
    dup, dup_sigs = _readings(ledger, t, [*honest[:2], (1, -90, 1), *honest[2:]])
    assert market.market_call("recordReadings", t, dup, dup_sigs, len(dup)) == "DuplicateReading"
    # A reading signed for another interval (replayed) does not verify.
    old, old_sigs = _readings(ledger, t + 5, honest)
    assert market.market_call("recordReadings", t, old, old_sigs, len(old)) == "NotMemberMeter"
    assert market.market_call("recordReadings", t, words, sigs, len(words)) is None
    # A second batch for the interval (another reading of member 1, or anyone).
    again, again_sigs = _readings(ledger, t, [(1, -50, 1)])
    assert market.market_call("recordReadings", t, again, again_sigs, len(again)) == (
        "ReadingsAlreadyRecorded"
    )
    assert market.market_call("settle", t, [], words, [], 2 * len(words)) is None
    assert (
        market.market_call("recordReadings", t, again, again_sigs, len(again)) == "WrongPhase"
    )  # settled
