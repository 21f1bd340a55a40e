"""A settlement paged over several transactions (``Market.settle(.., upTo)``).

A settlement of n readings has 2n entries: n checks, then n bookings. The money is the
one-transaction settlement's to the unit (random markets and page sizes), and the pages'
events add up to it; the reserve the whole settlement leaves is checked by the last check,
before anything is booked; while pages are outstanding nobody deposits or withdraws, the
interval cannot expire once a member is booked (it can while only checks are done), the
accounting identity holds (``settlingMicro``), and anyone may send the remaining pages;
every revert path of paging by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import BAND_TARIFFS, Market, band_bus, band_rows, make_market, market_keys

from gridledger.ledger import EmbeddedBackend, Ledger, LedgerMember
from gridledger.ledger import encoding as enc
from gridledger.ledger.reference import settlement_parties
from gridledger.ledger.resume import PHASE_SETTLED
from gridledger.ledger.txqueue import StepTooLarge
from gridledger.market import Bid, Side, clear_uniform, settle

TARIFFS = BAND_TARIFFS
N = 9
SEED = b"paged-settle-tests"

_bus = band_bus


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    yield make_market(N, 1, tariffs=TARIFFS, deposit=10**6, bus=_bus, seed=SEED)


def _deliver(market: Market, rows: list[tuple[int, object, int, int]], errors: list[int]) -> int:
    """Clear a round of ``rows`` and record the readings (schedule + ``errors`` percent);
    returns the interval, ready to settle."""
    market.release()
    ledger = market.ledger
    t = market.take_interval()
    bids = [Bid(m, side, e, p, _bus(m)) for m, side, e, p in rows]  # type: ignore[arg-type]
    market.top_up(bids)
    market.reserve_up()
    ledger.record_round(t, 0, bids)
    trades = clear_uniform(bids).trades
    assert ledger.clear(t).trades == trades
    ledger.record_security(t, [])
    scheduled = dict.fromkeys(range(N), 0)
    for tr in trades:
        scheduled[tr.buyer] -= tr.e_wh
        scheduled[tr.seller] += tr.e_wh
    readings = {
        m: s + s * err // 100 if s else err * 10
        for (m, s), err in zip(scheduled.items(), errors, strict=True)
    }
    ledger.record_readings(t, readings)
    return t


round_rows = band_rows(N)
error_lists = st.lists(st.integers(-150, 150), min_size=N, max_size=N)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=round_rows, errors=error_lists, page=st.integers(1, N))
def test_paged_settlement_equals_reference(market: Market, rows, errors, page: int) -> None:
    ledger = market.ledger
    t = _deliver(market, rows, errors)
    cache = ledger._interval(t)
    metered = dict(enc.unpack_reading(w) for w in cache.readings)
    expected = settle(list(cache.delivery), metered, TARIFFS).deltas()
    ledger.settle_page_members = page
    try:
        assert ledger.settle(t) == expected
    finally:
        ledger.settle_page_members = None
    pages = [e for e in ledger.events() if e.name == "SettlementPaged" and e.args["interval"] == t]
    assert len(pages) == -(-2 * N // page) - 1
    assert [int(e.args["upTo"]) for e in pages] == list(range(page, 2 * N, page))
    for e in pages:  # a page books the readings of its entries past the n checks
        first, last = max(int(e.args["fromEntry"]) - N, 0), max(int(e.args["upTo"]) - N, 0)
        assert list(e.args["members"]) == list(range(first, last))
    ledger.end_interval(t)
    (whole,) = [
        e for e in ledger.events() if e.name == "IntervalSettled" and e.args["interval"] == t
    ]
    assert list(whole.args["members"]) == list(range(N))  # the pages' members merged in
    assert ledger.conserved()
    assert ledger.view("solvent")[0]
    assert ledger.view("settlingMicro")[0] == 0
    assert not ledger.view("settlementPaging")[0]


def _args(market: Market, t: int) -> tuple[list[int], list[int], list[int]]:
    cache = market.ledger._interval(t)
    trades = enc.pack_trades(cache.delivery)
    return trades, cache.readings, settlement_parties(t, cache.delivery, cache.readings)


def test_pages_hold_withdrawals_and_expiry_and_anyone_may_finish(market: Market) -> None:
    ledger = market.ledger
    rows = [
        (m, Side.BUY if m % 2 else Side.SELL, 1_000 + 10 * m, 150_000 + 1_000 * m) for m in range(N)
    ]
    t = _deliver(market, rows, [20 * (m % 3) - 20 for m in range(N)])
    trades, readings, parties = _args(market, t)
    metered = dict(enc.unpack_reading(w) for w in readings)
    cache = ledger._interval(t)
    expected = settle(list(cache.delivery), metered, TARIFFS).deltas()
    before = {m: int(ledger.view("balanceMicro", m)[0]) for m in range(N)}
    outsider = market.outsider_key

    def page(up_to: int, key: bytes | None = None) -> str | None:
        return market.market_call("settle", t, trades, readings, parties, up_to, key=key)

    assert page(3, key=outsider) == "NotOperator"  # only the operator starts a settlement
    assert page(0) == "BadPage"
    assert page(2 * N + 1) == "BadPage"
    assert page(3) is None  # checks readings [0, 3), books nothing
    assert int(market.state(t)[8]) == 3
    assert int(market.state(t)[15]) == 3  # pagedReadings: the readings checked
    assert ledger.view("settlementPaging")[0]
    assert ledger.view("settlingMicro")[0] == 0
    assert {m: int(ledger.view("balanceMicro", m)[0]) for m in range(N)} == before
    assert page(N + 3) is None  # checks [3, N) and the reserve, books readings [0, 3)
    assert int(market.state(t)[8]) == N + 3
    assert ledger.conserved()  # the booked part is held in settlingMicro
    booked = sum(expected[m] for m in metered if list(metered).index(m) < 3)
    assert ledger.view("settlingMicro")[0] == booked
    for m in range(N):
        booked_now = int(ledger.view("balanceMicro", m)[0]) - before[m]
        assert booked_now == (expected[m] if list(metered).index(m) < 3 else 0)
    a = to_checksum_address(market.outsider)
    assert market.market_call("withdraw", 0, 1, key=market.member_key(0)) == "SettlementPaging"
    assert market.market_call("withdrawGrid", a, 1, key=market.grid_key) == "SettlementPaging"
    assert market.market_call("withdrawOperator", a, 1) == "SettlementPaging"
    assert market.market_call("deposit", 0, 0) == "SettlementPaging"  # balances stay as checked
    market.seal_until(int(market.state(t)[7]) + 1)
    assert market.market_call("expireInterval", t, key=outsider) == "SettlementUnderway"
    assert page(N + 3) == "BadPage"  # already booked
    assert page(2, key=outsider) == "BadPage"
    assert page(N + 6, key=outsider) is None  # anyone may go on: the inputs are hash-checked
    assert page(2 * N, key=market.member_key(4)) is None
    assert market.phase(t) == PHASE_SETTLED
    assert {m: int(ledger.view("balanceMicro", m)[0]) - before[m] for m in range(N)} == {
        m: expected[m] for m in range(N)
    }
    assert not ledger.view("settlementPaging")[0]
    assert ledger.view("settlingMicro")[0] == 0
    assert ledger.conserved()
    assert market.market_call("withdraw", 0, 1, key=market.member_key(0)) is None
    ledger._cache.pop(t, None)


def test_the_last_check_verifies_the_reserve_of_the_whole_settlement() -> None:
    """Every member exports at its limit into an empty GRID account: the whole settlement
    would leave GRID negative. In one call it reverts ReserveShort; in pages the first check
    page passes (books nothing) and the page that ends the checks reverts ReserveShort, so
    nothing is ever booked; a settlement of checks only does not hold the interval, which
    then expires as an unpaged one would, and deposits and withdrawals resume."""
    m = make_market(4, 1, tariffs=TARIFFS, deposit=10**6, grid_deposit=0, seed=SEED)
    ledger = m.ledger
    t = m.take_interval()
    ledger.record_round(t, 0, [])
    ledger.clear(t)
    ledger.record_security(t, [])
    limit = int(ledger.members[0].limit_wh)
    ledger.record_readings(t, dict.fromkeys(range(4), limit))
    trades, readings, parties = _args(m, t)
    before = [int(ledger.view("balanceMicro", k)[0]) for k in range(4)]
    assert m.market_call("settle", t, trades, readings, parties, 8) == "ReserveShort"
    assert m.market_call("settle", t, trades, readings, parties, 2) is None
    assert ledger.view("settlementPaging")[0]
    assert m.market_call("settle", t, trades, readings, parties, 4) == "ReserveShort"
    assert m.market_call("settle", t, trades, readings, parties, 6) == "ReserveShort"
    assert [int(ledger.view("balanceMicro", k)[0]) for k in range(4)] == before
    assert int(m.state(t)[8]) == 2
    m.expire(t)
    assert not ledger.view("settlementPaging")[0]
    assert ledger.conserved()
    m.deposit(0, 1)


@pytest.mark.slow
def test_a_settlement_larger_than_a_block_is_paged_by_the_estimates() -> None:
    """No page cap: 400 members with empty escrow (every booking a first write) on a chain
    of 8M-gas blocks, where the whole settlement does not fit one block but every other
    step does. The ledger pages it from the node's estimates, every page fits its block,
    and the money is the reference's."""
    n, block_gas = 400, 8_000_000
    ring = market_keys(SEED, range(n))
    backend = EmbeddedBackend(funded=ring.addresses(), block_gas_limit=block_gas)
    ledger = Ledger(backend, "embedded", None, keys=ring)
    ledger.setup([LedgerMember(i, band_bus(i), 2) for i in range(n)], TARIFFS, 1, 0, 10**12)
    ledger.record_round(0, 0, [])
    ledger.clear(0)
    ledger.record_security(0, [])
    readings = {m: (m % 7 - 3) * 100 + 1 for m in range(n)}
    ledger.record_readings(0, readings)
    with pytest.raises(StepTooLarge, match="needs more gas than a block's gas limit"):
        ledger.settle_gas(0)  # one transaction would not fit
    assert ledger.settle(0) == settle([], readings, TARIFFS).deltas()
    pages = [e for e in ledger.events() if e.name == "SettlementPaged"]
    assert pages and int(pages[0].args["fromEntry"]) == 0
    assert sum(len(e.args["members"]) for e in pages) < n  # the last page booked some
    ledger.end_interval(0)
    assert ledger.conserved()
    assert ledger.view("solvent")[0]
