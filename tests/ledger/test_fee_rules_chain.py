"""Fee-aware clearing rules on the Market (clearGreedy / clearOptimal) through the Ledger facade.

Differential on random markets: the chain's clearing equals market/greedy.py and
market/optimal.py to the unit, settlement equals market/settlement.py, money is conserved
after every interval; wrong-rule calls and tampered submissions revert with named errors;
the audit re-derives everything from chain data (fee table from its data contract).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import (
    FEEDER_COMMITMENT,
    N_MEMBERS,
    ROUNDS,
    TARIFFS,
    Market,
    bids_of,
    bus_of,
    deliver_and_settle,
    deploy_market,
    make_market,
    margins_npct,
)
from tests.conftest import bid_rows

from gridledger.errors import ChainError
from gridledger.ledger import Ledger, LedgerMember
from gridledger.ledger import encoding as enc
from gridledger.ledger.audit import audit
from gridledger.ledger.fee_clearing import (
    dual_words,
    greedy_entries,
    greedy_order,
    optimal_parties,
    pack_fee_table,
)
from gridledger.ledger.reference import unpack_fee_table
from gridledger.market import Bid, Side, Trade
from gridledger.market.greedy import clear_greedy
from gridledger.market.optimal import OptimalSolution, clear_optimal, solve_optimal

KAPPA = Fraction(1, 3)
# 6 buses (members sit at 1..5), asymmetric, coarse values so that surpluses tie often.
FEES = (np.random.default_rng(5).integers(0, 7, (6, 6)) * 5_000).astype(np.int64)
REFERENCE = {"greedy": clear_greedy, "optimal": clear_optimal}


@pytest.fixture(scope="module")
def greedy_market() -> Iterator[Market]:
    yield make_market(clearing="greedy", fees=FEES, kappa=KAPPA, network=FEEDER_COMMITMENT)


@pytest.fixture(scope="module")
def optimal_market() -> Iterator[Market]:
    yield make_market(clearing="optimal", fees=FEES, kappa=KAPPA, network=FEEDER_COMMITMENT)


round_rows = bid_rows(
    N_MEMBERS,
    e_wh=st.sampled_from([1, 7, 100, 250, 1_000, 4_000]),
    price_per_kwh_micro=st.integers(5, 30).map(lambda p: p * 10_000),  # <= retail (cap)
)


def _run_interval(market: Market, rule: str, rounds, readings, margins) -> None:
    market.release()  # a failed example (while shrinking) may leave its interval pending
    ledger = market.ledger
    interval = market.take_interval()
    for k, rows in enumerate(rounds):
        ledger.record_round(interval, k, bids_of(rows))
    reference = REFERENCE[rule](bids_of(rounds[-1]), FEES, KAPPA)
    assert ledger.clear(interval) == reference
    deliver_and_settle(ledger, interval, reference.trades, readings, margins)


interval_data = {
    "rounds": st.lists(round_rows, min_size=ROUNDS, max_size=ROUNDS),
    "readings": st.lists(st.integers(-8_000, 8_000), min_size=N_MEMBERS, max_size=N_MEMBERS),
    "margins": margins_npct,
}
fast = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@fast
@given(**interval_data)
def test_greedy_chain_equals_reference(greedy_market: Market, rounds, readings, margins) -> None:
    _run_interval(greedy_market, "greedy", rounds, readings, margins)


@fast
@given(**interval_data)
def test_optimal_chain_equals_reference(optimal_market: Market, rounds, readings, margins) -> None:
    _run_interval(optimal_market, "optimal", rounds, readings, margins)


# ------------------------------------------------------------ configuration
@pytest.mark.parametrize("rule", ["greedy", "optimal"])
def test_configuration_on_chain(rule: str, request: pytest.FixtureRequest) -> None:
    market: Market = request.getfixturevalue(f"{rule}_market")
    ledger = market.ledger
    packed = pack_fee_table(FEES)
    assert ledger.view("clearingRule")[0] == {"greedy": 1, "optimal": 2}[rule]
    code = ledger.backend.code(bytes.fromhex(ledger.view("feeTableData")[0][2:]))
    assert code == b"\x00" + packed
    assert bytes(ledger.view("feeTableHash")[0]) == keccak(packed)
    assert ledger.view("feeBuses")[0] == 6
    assert (ledger.view("kappaNum")[0], ledger.view("kappaDen")[0]) == (1, 3)
    (event,) = [e for e in ledger.events() if e.name == "ClearingConfigured"]
    assert bytes(event.args["feeTable"]) == packed
    assert np.array_equal(unpack_fee_table(bytes(event.args["feeTable"]), 6), FEES)
    # set once
    name = market.market_call("configureClearing", 6, 1, 2, packed)
    assert name == "ClearingAlreadyConfigured"


def test_desk_events_are_the_markets(greedy_market: Market) -> None:
    """The configuration events the desk (contracts/MarketDesk.sol) emits through the
    Market's fallback are logged at the Market's address; the desk's own address has none."""
    ledger = greedy_market.ledger
    topics = {log.topics[0] for log in ledger.backend.logs(ledger.market)}
    assert keccak(b"NetworkConfigured(uint256,bytes32,address,bytes)") in topics
    assert keccak(b"ClearingConfigured(uint8,uint16,uint64,uint64,bytes32,address,bytes)") in topics
    (desk,) = ledger.view("desk")
    assert not ledger.backend.logs(bytes.fromhex(desk[2:]))


def test_setup_rejects_bad_configurations() -> None:
    ledger = Ledger.connect("embedded")
    members = [LedgerMember(0, 7, 0)]
    with pytest.raises(ChainError, match="merit_order"):
        ledger.setup(members, TARIFFS, 1, 10, clearing="merit_order")
    with pytest.raises(ChainError, match="covers buses"):
        ledger.setup(members, TARIFFS, 1, 10, clearing="greedy", fees=FEES)
    with pytest.raises(ChainError, match="needs more than 64 shard contracts"):
        ledger.setup(members, TARIFFS, 1, 10, clearing="greedy", fees=np.zeros((628, 628)))
    with pytest.raises(ChainError, match="uniform"):
        ledger.setup(members, TARIFFS, 1, 10, fees=np.ones((8, 8)))


# --------------------------------------------------------------- wrong rule
def _round(market: Market) -> tuple[int, list[Bid], list[int]]:
    """Record ROUNDS rounds of a fixed book on a fresh interval; last bids and words."""
    market.release()  # the binding round needs no other interval pending
    ledger = market.ledger
    interval = market.take_interval()
    bids = [
        Bid(m, Side(m % 2), 500 + 37 * m, 100_000 + 17_000 * ((m * 7) % 11), bus_of(m))
        for m in range(N_MEMBERS)
    ]
    for k in range(ROUNDS):
        ledger.record_round(interval, k, bids)
    ledger.txq.flush()
    return interval, bids, [enc.pack_bid(b) for b in bids]


def test_wrong_rule_calls_revert(
    market: Market, greedy_market: Market, optimal_market: Market
) -> None:
    interval, _, words = _round(greedy_market)
    n = len(words)
    assert greedy_market.market_call("clear", interval, words, list(range(n)), 0) == (
        "WrongClearingRule"
    )
    assert greedy_market.market_call("clearOptimal", interval, words, [], [], [0] * n, 1) == (
        "WrongClearingRule"
    )
    interval, _, words = _round(optimal_market)
    assert optimal_market.market_call("clearGreedy", interval, words, [], 0, [], 0) == (
        "WrongClearingRule"
    )
    # the uniform market (module fixture of conftest) has neither entry point's rule
    assert market.market_call("clearGreedy", 0, [], [], 0, [], 0) == "WrongClearingRule"
    assert market.market_call("configureClearing", 1, 1, 2, b"\0" * 4) == (
        "UnsupportedClearingRule"
    )


def test_fee_rule_before_configuration_reverts(greedy_market: Market) -> None:
    market = greedy_market
    ledger = market.ledger
    error, fresh = deploy_market(market)  # the same Config, fee table not configured yet
    assert error is None
    for call in (("openInterval", 0), ("recordRound", 0, 0, True, [], [], 0)):
        assert market.send_raw(fresh, ledger.market_abi.encode_call(*call)) is None  # no members
    data = ledger.market_abi.encode_call("clearGreedy", 0, [], [], 0, [], 0)
    assert market.send_raw(fresh, data) == "ClearingNotConfigured"
    bad = ledger.market_abi.encode_call("configureClearing", 2, 3, 2, b"\0" * 16)
    assert market.send_raw(fresh, bad) == "BadFeeConfig"
    short = ledger.market_abi.encode_call("configureClearing", 2, 1, 2, b"\0" * 15)
    assert market.send_raw(fresh, short) == "FeeTableLength"


# ----------------------------------------------------------------- tampered
def test_greedy_tampered_submissions_revert(greedy_market: Market) -> None:
    ledger = greedy_market.ledger
    interval, bids, words = _round(greedy_market)
    trades = list(clear_greedy(bids, FEES, KAPPA).trades)
    assert trades
    order, n_buys = greedy_order(bids)

    def submit(w: list[int], o: list[int], tr: list) -> str | None:
        packed, up_to = enc.pack_trades(tr), greedy_entries(bids, tr)  # to the end
        return greedy_market.market_call("clearGreedy", interval, w, o, n_buys, packed, up_to)

    t = trades[0]
    assert submit(words, order, [dataclasses.replace(t, e_wh=t.e_wh + 1), *trades[1:]]) == (
        "WrongQuantity"
    )
    repriced = dataclasses.replace(t, seller_price_per_kwh_micro=t.seller_price_per_kwh_micro - 1)
    assert submit(words, order, [repriced, *trades[1:]]) == "WrongPrice"
    assert submit(words, order, trades[:-1]) == "SurplusLeft"
    assert submit(words, [order[1], order[0], *order[2:]], trades) == "BadQueueOrder"
    other = [*words[:-1], words[-1] + (1 << 88)]
    assert submit(other, order, trades) == "HashMismatch"
    assert ledger.clear(interval).trades == tuple(trades)  # the honest result still clears
    assert greedy_market.market_call("clearGreedy", interval, words, order, n_buys, [], 0) == (
        "WrongPhase"
    )


def test_greedy_clearing_in_pages(greedy_market: Market) -> None:
    """clearGreedy in pages over its entries (the trades, then the seller buses left, checked
    for surplus left): each page checks [done, upTo) of the list the first page fixed (its
    hash); a page that does not continue where the last ended, a changed list or a page past
    the end is refused by name; the page that checks the last entry records the clearing
    like one call."""
    ledger = greedy_market.ledger
    interval, bids, words = _round(greedy_market)
    trades = list(clear_greedy(bids, FEES, KAPPA).trades)
    n, end = len(trades), greedy_entries(bids, trades)
    assert n >= 3 and end > n  # sellers are left: the final check has entries of its own
    order, n_buys = greedy_order(bids)
    packed = enc.pack_trades(trades)

    def page(tw: list[int], up_to: int) -> str | None:
        return greedy_market.market_call("clearGreedy", interval, words, order, n_buys, tw, up_to)

    assert page(packed, end + 1) == "FeeInputLength"  # past the end
    assert page(packed, 1) is None
    state = ledger.view("intervalState", interval)[0]
    assert state[0] == 2 and state[5] == 1  # still clearing, one entry checked
    assert page(packed, 1) == "BadPage"  # does not go past what is done
    changed = enc.pack_trades([*trades[:-1], dataclasses.replace(trades[-1], e_wh=1)])
    assert page(changed, end) == "HashMismatch"  # not the list the first page fixed
    cuts = [n - 1, n, end]  # the rest of the trades; all of them, no seller; the sellers
    for up_to in cuts:
        assert page(packed, up_to) is None
    greedy_market.seal()
    paged = [e for e in ledger.events() if e.name == "ClearingPaged"]
    assert [(e.args["fromTrade"], e.args["upTo"]) for e in paged[-3:]] == [
        (0, 1),
        (1, n - 1),
        (n - 1, n),
    ]
    (cleared,) = [
        e for e in ledger.events() if e.name == "IntervalCleared" and e.args["interval"] == interval
    ]
    assert list(cleared.args["trades"]) == packed
    assert page(packed, end) == "WrongPhase"


def _certificate(bids: list[Bid]) -> tuple[OptimalSolution, list[int], list[int]]:
    """market/optimal.py's solution of ``bids`` and the certificate the chain checks: the
    duals (with the bus bounds) and the trades' party hints."""
    sol = solve_optimal(bids, FEES, KAPPA)
    duals = dual_words(
        bids,
        sol.buyer_dual,
        sol.seller_dual,
        sol.tie_buyer_dual,
        sol.tie_seller_dual,
        n_buses=len(FEES),
    )
    return sol, duals, optimal_parties(bids, sol.trades)


def test_optimal_tampered_submissions_revert(optimal_market: Market) -> None:
    ledger = optimal_market.ledger
    interval, bids, words = _round(optimal_market)
    sol, duals, parties = _certificate(bids)
    assert sol.trades

    def submit(tr: list, p: list[int], d: list[int]) -> str | None:
        return optimal_market.market_call(
            "clearOptimal", interval, words, enc.pack_trades(tr), p, d, len(p) + len(words) + 1
        )

    trades = list(sol.trades)
    t = trades[0]
    assert submit([dataclasses.replace(t, e_wh=t.e_wh + 10**6), *trades[1:]], parties, duals) == (
        "Overfilled"
    )
    b = next(k for k, bid in enumerate(bids) if bid.member == t.buyer)
    bumped = [*duals[:b], duals[b] + 1, *duals[b + 1 :]]
    assert submit(trades, parties, bumped) == "SlacknessViolated"
    tie = len(bids) + b  # the buyer's tie-break dual
    nudged = [*duals[:tie], (duals[tie] + 1) % 2**256, *duals[tie + 1 :]]
    assert submit(trades, parties, nudged) == "NonCanonicalOptimum"
    assert submit(trades, [parties[0] ^ 1, *parties[1:]], duals) == "BadParty"
    assert submit([], [], dual_words(bids, {}, {}, n_buses=len(FEES))) == "DualInfeasible"
    assert ledger.clear(interval).trades == sol.trades


def test_optimal_clearing_in_pages(optimal_market: Market) -> None:
    """clearOptimal in pages over its entries (the trades, the bids, then one final check):
    each page checks [done, upTo) of the lists the first page fixed (the trades' hash and the
    certificate's); a page that does not go on from where the last ended, a changed list or
    certificate, or a page past the end is refused by name; the page of the final check
    records the clearing and its welfare like one call."""
    ledger = optimal_market.ledger
    interval, bids, words = _round(optimal_market)
    sol, duals, parties = _certificate(bids)
    trades = list(sol.trades)
    n, end = len(trades), len(trades) + len(bids) + 1
    assert n >= 3
    packed = enc.pack_trades(trades)

    def page(tw: list[int], up_to: int, p: list[int] = parties, d: list[int] = duals) -> str | None:
        return optimal_market.market_call("clearOptimal", interval, words, tw, p, d, up_to)

    assert page(packed, end + 1) == "BadPage"  # past the end
    assert page(packed, 0) == "BadPage"  # an empty page
    bad = [dataclasses.replace(trades[1], e_wh=trades[1].e_wh + 1)]
    tampered = enc.pack_trades([trades[0], *bad, *trades[2:]])
    assert page(packed, 1) is None
    state = ledger.view("intervalState", interval)[0]
    assert state[0] == 2 and state[5] == 1  # still clearing, one entry checked
    assert page(packed, 1) == "BadPage"  # does not go past what is done
    assert page(tampered, end) == "HashMismatch"  # not the trades the first page fixed
    bumped = [*duals[:-1], (duals[-1] + 1) % 2**256]
    assert page(packed, end, d=bumped) == "HashMismatch"  # not the certificate it fixed
    # the rest of the trades but one; the last trade and two bids; the other bids; the final
    for up_to in (n - 1, n + 2, end - 1, end):
        assert page(packed, up_to) is None
    optimal_market.seal()
    paged = [e for e in ledger.events() if e.name == "ClearingPaged"]
    assert [(e.args["fromTrade"], e.args["upTo"]) for e in paged[-4:]] == [
        (0, 1),
        (1, n - 1),
        (n - 1, n + 2),
        (n + 2, end - 1),
    ]
    (cleared,) = [
        e for e in ledger.events() if e.name == "IntervalCleared" and e.args["interval"] == interval
    ]
    assert list(cleared.args["trades"]) == packed
    (welfare,) = [
        e for e in ledger.events() if e.name == "ClearingWelfare" and e.args["interval"] == interval
    ]
    assert welfare.args["welfareWhMicro"] == sum(
        (b.price_per_kwh_micro - s.price_per_kwh_micro - int(FEES[s.bus, b.bus])) * t.e_wh
        for t in trades
        for b in bids
        if b.member == t.buyer
        for s in bids
        if s.member == t.seller
    )
    assert ledger.view("intervalState", interval)[0][11] == bytes(32)  # certificate hash gone
    assert page(packed, end) == "WrongPhase"


def test_optimal_page_refuses_its_own_bad_trade(optimal_market: Market) -> None:
    """A page checks its trades in full, with their bids' words and duals: a tampered price
    or a dual out of range is refused by the page that holds it, and nothing is recorded; a
    trade's energy is checked against its bids' orders in the bids' entries."""
    interval, bids, words = _round(optimal_market)
    sol, duals, parties = _certificate(bids)
    trades = list(sol.trades)

    def page(tw: list, up_to: int, d: list[int] = duals) -> str | None:
        packed = enc.pack_trades(tw)
        return optimal_market.market_call(
            "clearOptimal", interval, words, packed, parties, d, up_to
        )

    t = trades[1]
    assert page([trades[0], dataclasses.replace(t, e_wh=t.e_wh + 1), *trades[2:]], 2) is None
    # energy is checked in the bids' entries (Overfilled there); a price is the trade's own
    moved = dataclasses.replace(t, buyer_price_per_kwh_micro=t.buyer_price_per_kwh_micro + 1)
    optimal_market.release()
    interval, bids, words = _round(optimal_market)
    assert page([trades[0], moved, *trades[2:]], 2) == "WrongPrice"
    buyer = next(k for k, b in enumerate(bids) if b.member == t.buyer)
    wild = [*duals[:buyer], 2**64, *duals[buyer + 1 :]]
    assert page(trades, 2, d=wild) == "DualOutOfRange"
    assert optimal_market.ledger.view("intervalState", interval)[0][5] == 0  # nothing checked
    assert page(trades, len(trades) + len(bids) + 1) is None


@pytest.mark.parametrize("page", [1, 2, 5])
def test_optimal_ledger_pages_equal_reference(optimal_market: Market, page: int) -> None:
    """The Ledger pages an optimal clearing when told to (``record_page_entries``) and the
    chain's result equals market/optimal.py, as in one call."""
    interval, bids, _ = _round(optimal_market)
    ledger = optimal_market.ledger
    ledger.record_page_entries = page
    try:
        assert ledger.clear(interval) == clear_optimal(bids, FEES, KAPPA)
    finally:
        ledger.record_page_entries = None
    pages = [
        e for e in ledger.events() if e.name == "ClearingPaged" and e.args["interval"] == interval
    ]
    entries = len(clear_optimal(bids, FEES, KAPPA).trades) + len(bids) + 1
    assert len(pages) == -(-entries // page) - 1


def test_greedy_malformed_submissions_revert(greedy_market: Market) -> None:
    """Malformed words, inconsistent lengths, a trade that is not between the queue heads
    or that has no surplus: each refused by name."""
    interval, bids, words = _round(greedy_market)
    trades = list(clear_greedy(bids, FEES, KAPPA).trades)
    order, n_buys = greedy_order(bids)
    packed = enc.pack_trades(trades)

    def submit(o: list[int], tw: list[int]) -> str | None:
        return greedy_market.market_call(
            "clearGreedy", interval, words, o, n_buys, tw, len(tw) // 2
        )

    low_bits = [*packed[:1], packed[1] | 1, *packed[2:]]
    assert submit(order, low_bits) == "MalformedTrade"
    assert submit(order[:-1], packed) == "FeeInputLength"
    assert submit(order, packed[:-1]) == "FeeInputLength"
    # One more unit traded after the honest trades, between every buyer and seller.
    outcomes = set()
    for b in (x for x in bids if x.side == Side.BUY):
        for s in (x for x in bids if x.side == Side.SELL):
            extra = Trade(
                b.member, s.member, 1, b.price_per_kwh_micro, s.price_per_kwh_micro, b.bus, s.bus
            )
            outcomes.add(submit(order, enc.pack_trades([*trades, extra])))
    assert {"NotQueueHead", "NonPositiveSurplus"} <= outcomes
    assert None not in outcomes
    assert greedy_market.ledger.clear(interval).trades == tuple(trades)


# -------------------------------------------------------------------- audit
def test_audit_of_fee_rule_chains(greedy_market: Market, optimal_market: Market) -> None:
    # settle one interval here too, so the test does not depend on which tests ran
    # before it on this worker (pytest-xdist spreads them)
    rows = [(0, Side.SELL, 400, 90_000), (1, Side.BUY, 300, 250_000), (2, Side.BUY, 200, 200_000)]
    for market, rule in ((greedy_market, "greedy"), (optimal_market, "optimal")):
        _run_interval(market, rule, [rows] * ROUNDS, [0] * 12, None)
    for market in (greedy_market, optimal_market):
        report = audit(market.ledger)
        assert report.ok, report.problems
        assert report.intervals_checked >= report.intervals_settled > 0


def test_resume_and_audit_from_disk_with_fee_rule(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    members = [LedgerMember(i, i % 5 + 1, 2) for i in range(8)]
    first = Ledger.connect("embedded", state_dir=state)
    first.setup(members, TARIFFS, 1, 10**9, clearing="greedy", fees=FEES, kappa=KAPPA)
    bids = [Bid(m.id, Side(m.id % 2), 300 + m.id, 90_000 + 9_000 * m.id, m.bus) for m in members]
    for t in range(2):
        first.record_round(t, 0, bids)
        first.clear(t)
        first.record_security(t, [])
        first.record_readings(t, {m.id: 0 for m in members})
        first.settle(t)
        first.end_interval(t)
    del first
    again = Ledger.connect("embedded", state_dir=state)
    assert again.deployment is not None
    config = again.deployment.clearing
    assert config.rule == "greedy" and config.kappa == KAPPA
    assert config.fees is not None and np.array_equal(config.fees, FEES)
    again.record_round(2, 0, bids)
    assert again.clear(2) == clear_greedy(bids, FEES, KAPPA)
    reader = Ledger.connect("embedded", state_dir=state, read_only=True)
    report = audit(reader)
    assert report.ok, report.problems
    assert report.intervals_settled == 2
