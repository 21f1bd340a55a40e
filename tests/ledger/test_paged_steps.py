"""Bidding rounds and meter readings recorded in pages (``recordRound`` / ``recordReadings``
with ``upTo``).

Every page resubmits the whole list and checks the signatures of its own part; the last
page records the list with the hash an unpaged call would store. Random markets and page
sizes give the unpaged result to the unit; locks, exclusions, expiry in the middle of a
binding round, and every revert path of paging by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import (
    BAND_TARIFFS,
    TIMING,
    ZERO_SIG,
    Market,
    band_bus,
    band_rows,
    lock_of,
    make_market,
)

from gridledger.ledger import encoding as enc
from gridledger.ledger.resume import PHASE_BIDDING, PHASE_DELIVERY, PHASE_SETTLED
from gridledger.market import Bid, Side, clear_uniform, settle

TARIFFS = BAND_TARIFFS
N = 9
SEED = b"paged-steps-tests"
EXPIRED = 6  # Market.Phase.Expired
CLEARING = 2  # Market.Phase.Clearing


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    yield make_market(N, 2, tariffs=TARIFFS, deposit=10**6, bus=band_bus, seed=SEED)


def _events(market: Market, name: str, t: int) -> list:
    """The Market's ``name`` events of interval ``t`` (the open block sealed first)."""
    market.seal()
    return [e for e in market.ledger.events() if e.name == name and e.args["interval"] == t]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=band_rows(N), page=st.integers(1, N), errors=st.lists(st.integers(-50, 50)))
def test_paged_round_and_readings_equal_the_reference(
    market: Market, rows, page: int, errors: list[int]
) -> None:
    ledger = market.ledger
    market.release()
    t = market.take_interval()
    bids = [Bid(m, side, e, p, band_bus(m)) for m, side, e, p in rows]
    market.top_up(bids)
    market.reserve_up()
    ledger.record_page_entries = page
    try:
        ledger.record_round(t, 0, bids)
        ledger.record_round(t, 1, bids)  # the binding round, also paged
        words = [enc.pack_bid(b) for b in sorted(bids, key=lambda b: b.member)]
        assert bytes(market.state(t)[9]) == enc.list_hash(words)  # nobody left out
        assert int(market.state(t)[13]) == 0  # the paging word is cleared
        trades = clear_uniform(bids).trades
        assert ledger.clear(t).trades == trades
        ledger.record_security(t, [])
        scheduled = dict.fromkeys(range(N), 0)
        for tr in trades:
            scheduled[tr.buyer] -= tr.e_wh
            scheduled[tr.seller] += tr.e_wh
        readings = {m: s + (errors[m] if m < len(errors) else 0) for m, s in scheduled.items()}
        ledger.record_readings(t, readings)
    finally:
        ledger.record_page_entries = None
    expected_pages = max(0, -(-len(bids) // page) - 1)
    assert len(_events(market, "RoundPaged", t)) == 2 * expected_pages
    assert len(_events(market, "ReadingsPaged", t)) == -(-N // page) - 1
    (recorded,) = _events(market, "ReadingsRecorded", t)
    assert [enc.unpack_reading(w) for w in recorded.args["readings"]] == sorted(readings.items())
    expected = settle(list(trades), readings, TARIFFS).deltas()
    assert ledger.settle(t) == expected
    ledger.end_interval(t)
    assert market.phase(t) == PHASE_SETTLED
    assert ledger.conserved()


def _binding_round(market: Market) -> tuple[int, list[Bid], list[int], list[bytes]]:
    """A fresh interval past its round 0 (non-binding, recorded whole), with round 1's
    signed list of every member's bid; the deadline of round 1 has passed."""
    ledger = market.ledger
    market.release()
    t = market.take_interval()
    bids = [
        Bid(m, Side.BUY if m % 2 else Side.SELL, 1_000 + 10 * m, 150_000 + 1_000 * m, band_bus(m))
        for m in range(N)
    ]
    market.top_up(bids)
    ledger.record_round(t, 0, bids)
    ledger.txq.flush()
    words, sigs = market.signed_bids(t, 1, bids)
    return t, bids, words, sigs


def test_round_page_revert_paths(market: Market) -> None:
    t, _bids, words, sigs = _binding_round(market)

    def page(up_to: int, w: list[int] = words, binding: bool = True) -> str | None:
        return market.market_call("recordRound", t, 1, binding, w, sigs, up_to)

    assert page(3) == "RoundStillOpen"  # pages wait for the round's deadline
    market.seal(TIMING.round_blocks)
    assert page(0) == "BadPage"
    assert page(N + 1) == "BadPage"
    assert market.market_call("recordRound", t, 1, True, words, sigs[:-2], 3) == "LengthMismatch"
    assert page(3) is None
    st_ = market.state(t)
    assert int(st_[0]) == PHASE_BIDDING and int(st_[13]) == 3 and st_[17]
    assert bytes(st_[9]) == enc.list_hash(words)  # the whole list's hash, for the next pages
    assert market.ledger.view("hasPendingInterval")[0]
    locked = [int(market.ledger.view("lockedMicro", m)[0]) for m in range(N)]
    assert all(x > 0 for x in locked[:3]) and locked[3:] == [0] * (N - 3)
    assert page(3) == "BadPage"  # already checked
    other = [words[0] + (1 << 152), *words[1:]]  # another list than the first page's
    assert page(5, w=other) == "HashMismatch"
    bad = list(sigs)
    bad[8], bad[9] = sigs[10], sigs[11]  # bid 4 carries bid 5's signature
    assert market.market_call("recordRound", t, 1, True, words, bad, 5) == "BadSignature"
    (first,) = _events(market, "RoundPaged", t)
    assert (int(first.args["fromIndex"]), int(first.args["upTo"])) == (0, 3)
    assert page(N) is None
    assert market.phase(t) == CLEARING
    assert int(market.state(t)[13]) == 0
    (rec,) = [e for e in _events(market, "RoundRecorded", t) if e.args["round"] == 1]
    assert list(rec.args["bids"]) == words and rec.args["binding"]
    market.expire(t)


def test_round_pages_keep_the_binding_flag(market: Market) -> None:
    ledger = market.ledger
    market.release()
    t = market.take_interval()
    bids = [Bid(m, Side.BUY, 100, 150_000, band_bus(m)) for m in range(N)]
    market.top_up(bids)
    market.market_call("openInterval", t)
    words, sigs = market.signed_bids(t, 0, bids)
    market.seal(TIMING.round_blocks)
    assert market.market_call("recordRound", t, 0, False, words, sigs, 2) is None
    assert market.market_call("recordRound", t, 0, True, words, sigs, N) == "BadPage"
    assert not ledger.view("hasPendingInterval")[0]  # a non-binding page locks nothing
    assert market.market_call("recordRound", t, 0, False, words, sigs, N) is None
    assert int(market.state(t)[1]) == 1 and market.phase(t) == PHASE_BIDDING


def test_round_pages_keep_order_across_pages(market: Market) -> None:
    t, _bids, words, sigs = _binding_round(market)
    market.seal(TIMING.round_blocks)
    swapped = [*words[:3], words[4], words[3], *words[5:]]
    ssigs = [*sigs[:6], *sigs[8:10], *sigs[6:8], *sigs[10:]]
    assert market.market_call("recordRound", t, 1, True, swapped, ssigs, 4) is None
    # the next page starts at index 4 (member 3), after member 4: not ascending
    assert market.market_call("recordRound", t, 1, True, swapped, ssigs, N) == "NotAscending"
    market.expire(t)


def test_binding_pages_exclude_and_expire(market: Market) -> None:
    ledger = market.ledger
    t, bids, words, sigs = _binding_round(market)
    market.seal(TIMING.round_blocks)
    poor = 6  # a buyer whose escrow cannot cover its lock
    free = int(ledger.view("freeMicro", poor)[0])
    assert market.market_call("withdraw", poor, free, key=market.member_key(poor)) is None
    assert lock_of(bids[poor], TARIFFS) > 0
    assert market.market_call("recordRound", t, 1, True, words, sigs, 4) is None
    assert market.market_call("recordRound", t, 1, True, words, sigs, N) is None
    (ex,) = _events(market, "BidExcluded", t)
    assert int(ex.args["member"]) == poor
    admitted = [w for w in words if w >> 224 != poor]
    assert bytes(market.state(t)[9]) == enc.list_hash(admitted)
    assert int(market.state(t)[4]) == N - 1
    market.expire(t)

    # a binding round abandoned between pages: anyone expires it after its settle
    # deadline, and every lock is released
    t, bids, words, sigs = _binding_round(market)
    market.seal(TIMING.round_blocks)
    assert market.market_call("recordRound", t, 1, True, words, sigs, 5) is None
    assert int(ledger.view("lockedMicro", 0)[0]) > 0
    assert market.market_call("expireInterval", t, key=market.outsider_key) == "NotExpirable"
    market.expire(t)
    assert market.phase(t) == EXPIRED
    assert [int(ledger.view("lockedMicro", m)[0]) for m in range(N)] == [0] * N
    assert market.market_call("recordRound", t, 1, True, words, sigs, N) == "WrongPhase"


def _delivery(market: Market) -> int:
    """A fresh interval in delivery (a cleared binding round, a secure verdict)."""
    ledger = market.ledger
    market.release()
    t = market.take_interval()
    bids = [Bid(m, Side.BUY if m % 2 else Side.SELL, 500, 150_000, band_bus(m)) for m in range(N)]
    market.top_up(bids)
    market.reserve_up()
    ledger.record_round(t, 0, bids)
    ledger.record_round(t, 1, bids)
    ledger.clear(t)
    ledger.record_security(t, [])
    ledger.txq.flush()
    return t


def test_readings_page_revert_paths(market: Market) -> None:
    ledger = market.ledger
    t = _delivery(market)
    words, sigs = market.signed_readings(t, {m: 10 * m - 40 for m in range(N)})

    def page(up_to: int, w: list[int] = words, s: list[bytes] = sigs) -> str | None:
        return market.market_call("recordReadings", t, w, s, up_to)

    assert page(0) == "BadPage"
    assert page(N + 1) == "BadPage"
    assert page(4, s=sigs[:-2]) == "LengthMismatch"
    assert page(4) is None
    assert int(market.state(t)[15]) == 4 and int(market.state(t)[16]) == 4
    assert not market.state(t)[2]
    # a meter's own reading is refused once the pages have started
    late = enc.pack_reading(7, 3)
    assert market.market_call("submitReading", t, late, key=market.meter_key(7)) == (
        "ReadingsAlreadyRecorded"
    )
    assert market.market_call("settle", t, [], words, [], N) == "WrongPhase"
    other, osigs = market.signed_readings(t, {m: 10 * m - 41 for m in range(N)})
    assert page(6, w=other, s=osigs) == "HashMismatch"
    assert page(4) == "BadPage"
    # a member of a checked page suspended before the last: the readings no longer hold
    # one per active member
    assert market.market_call("setMemberActive", 1, False) is None
    try:
        assert page(N) == "ReadingsIncomplete"
    finally:
        assert market.market_call("setMemberActive", 1, True) is None
    assert page(N) is None
    assert market.state(t)[2] and int(market.state(t)[15]) == 0
    assert market.phase(t) == PHASE_DELIVERY
    (rec,) = _events(market, "ReadingsRecorded", t)
    assert list(rec.args["readings"]) == words
    assert bytes(rec.args["readingsHash"]) == enc.list_hash(words)
    assert page(N) == "ReadingsAlreadyRecorded"
    ledger._interval(t).readings = words
    market.expire(t)


def test_defaults_are_announced_once_per_page(market: Market) -> None:
    t = _delivery(market)
    values = {m: 10 * m for m in range(N) if m != 2}
    words, sigs = market.signed_readings(t, values)
    limit = int(market.ledger.members[2].limit_wh)
    default = enc.pack_reading(2, -limit)
    words = [*words[:2], default, *words[2:]]
    sigs = [*sigs[:4], ZERO_SIG, ZERO_SIG, *sigs[4:]]
    assert market.market_call("recordReadings", t, words, sigs, 5) == "ReadingWindowOpen"
    market.seal(TIMING.reading_blocks)
    assert market.market_call("recordReadings", t, words, sigs, 1) is None
    assert market.market_call("recordReadings", t, words, sigs, 5) is None
    assert market.market_call("recordReadings", t, words, sigs, N) is None
    (d,) = _events(market, "ReadingDefaulted", t)
    assert int(d.args["member"]) == 2
    market.expire(t)
