"""Attacks on the market, one test per class, with real signed transactions on the
embedded chain: each asserts the named revert, or the audit's finding where the attack
cannot be refused on chain (docs/trust.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from eth_utils import to_checksum_address
from ledgerkit import (
    DEPOSIT,
    LIMIT_WH,
    TARIFFS,
    ZERO_SIG,
    Market,
    bus_of,
    lock_of,
    make_market,
)

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.ledger.audit import audit
from gridledger.ledger.deploy import ChainTiming, NetworkCommitment
from gridledger.ledger.network_data import check_recorded, pack_margin, pack_network
from gridledger.ledger.resume import ResumeGuard
from gridledger.market import Bid, Side, Tariffs, settle
from gridledger.market.justification import (
    RULE_IDS,
    LinearNetwork,
    RowMargin,
    UnjustifiedCurtailment,
)
from gridledger.market.orders import Curtailment, Trade
from gridledger.security.justification import justify

U64 = (1 << 64) - 1
RETAIL = TARIFFS.retail_per_kwh_micro
BUY, SELL = Side.BUY, Side.SELL
PHASE_EXPIRED = 6


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    yield make_market(n_members=6, rounds=1)


@pytest.fixture(autouse=True)
def _no_pending(market: Market) -> Iterator[None]:
    """Each test starts with no interval pending (a failed one may leave one behind)."""
    market.release()
    yield


def _bid(member: int, side: Side = BUY, e_wh: int = 100, price: int = 100_000) -> Bid:
    return Bid(member, side, e_wh, price, bus_of(member))


def _open(market: Market, interval: int) -> None:
    assert market.market_call("openInterval", interval) is None


def _binding(market: Market, interval: int, bids: list[Bid]) -> tuple[list[int], list[bytes]]:
    """Open ``interval``, pass the round's deadline and record ``bids`` as binding."""
    _open(market, interval)
    market.seal(2)
    words, sigs = market.signed_bids(interval, 0, bids)
    assert market.market_call("recordRound", interval, 0, True, words, sigs, len(words)) is None
    return words, sigs


def _free(market: Market, member: int) -> int:
    return int(market.ledger.view("freeMicro", member)[0])


def _healthy(market: Market) -> None:
    ledger = market.ledger
    assert ledger.view("solvent")[0]
    assert ledger.conserved()
    held = ledger.view("heldMicro")[0]
    token = ledger.token_view("balanceOf", to_checksum_address(ledger.market))[0]
    assert token >= held


# ---------------------------------------------------------------- escrow attacks
def _excluded(market: Market, interval: int) -> set[int]:
    """Members whose binding bid of ``interval`` the chain left out (BidExcluded)."""
    market.seal()  # the embedded chain's logs are read from sealed blocks
    return {
        int(e.args["member"])
        for e in market.ledger.events()
        if e.name == "BidExcluded" and int(e.args["interval"]) == interval
    }


def test_bidding_beyond_escrow_cap_or_limit_reverts(market: Market) -> None:
    """A buyer with no deposit bidding huge, a colluding seller at price 0 (its shortfall
    penalty would drain the pool), prices above the cap, energy above the limit."""
    ledger = market.ledger
    t = market.take_interval()
    poor = 5
    balance = int(ledger.view("balanceMicro", poor)[0])
    assert market.market_call("withdraw", poor, balance, key=market.member_key(poor)) is None
    assert _free(market, poor) == 0
    _open(market, t)
    attacks = [
        (_bid(1, BUY, 10, RETAIL + 1), "PriceAboveCap"),
        (_bid(2, SELL, 10, RETAIL + 1), "PriceAboveCap"),
        (_bid(1, BUY, LIMIT_WH + 1, 1), "AboveLimit"),
        (_bid(1, BUY, U64, U64), "PriceAboveCap"),
        (_bid(1, BUY, U64, RETAIL), "AboveLimit"),
    ]
    # The member sending them itself (while the round is open) is refused at once.
    for bid, error in attacks:
        word = enc.pack_bid(bid)
        key = market.member_key(bid.member)
        assert market.market_call("submitBid", t, 0, word, key=key) == error, bid
    rich = _bid(1, BUY, 10_000, RETAIL)
    huge = _bid(poor, BUY, 10_000, RETAIL)
    word = enc.pack_bid(huge)
    assert market.market_call("submitBid", t, 0, word, key=market.member_key(poor)) is None
    market.seal(2)
    # Relayed by the operator (with the poor member's direct bid, unsigned), alike.
    for bid, error in attacks:
        words, sigs = market.signed_bids(t, 0, [bid])
        words, sigs = [*words, word], [*sigs, ZERO_SIG, ZERO_SIG]
        got = market.market_call("recordRound", t, 0, True, words, sigs, len(words))
        assert got == error, (bid, got)
    # Bids the member's escrow cannot cover are left out of the clearing, never locked:
    # the poor buyer's huge bid (sent directly) and the colluding seller's price-0 offer.
    words, sigs = market.signed_bids(t, 0, [rich, huge])
    sigs[2], sigs[3] = ZERO_SIG, ZERO_SIG
    assert market.market_call("recordRound", t, 0, True, words, sigs, len(words)) is None
    assert _excluded(market, t) == {poor}
    assert int(ledger.view("lockedMicro", poor)[0]) == 0
    assert int(ledger.view("lockedMicro", 1)[0]) == lock_of(rich)
    # The clearing sees only the admitted bids.
    assert market.market_call("clear", t, words, [0, 1], 2) == "HashMismatch"
    assert market.market_call("clear", t, words[:1], [0], 1) is None
    market.expire(t)
    u = market.take_interval()
    _open(market, u)
    market.seal(2)
    colluding = _bid(poor, SELL, 10_000, 0)
    words, sigs = market.signed_bids(u, 0, [rich, colluding])
    assert market.market_call("recordRound", u, 0, True, words, sigs, len(words)) is None
    assert _excluded(market, u) == {poor}
    assert market.market_call("clear", u, words[:1], [0], 1) is None
    assert _trades_of(market, u) == ()
    market.expire(u)
    _healthy(market)
    market.deposit(poor, DEPOSIT)


def test_max_width_bid_does_not_overflow() -> None:
    """A member registered with the largest limit bids 2**64-1 Wh at the cap: the lock is
    computed exactly (no wrap) and the bid left out for lack of escrow."""
    m = make_market(n_members=2, rounds=1, limit_wh=U64)
    t = m.take_interval()
    _open(m, t)
    m.seal(2)
    bids = [Bid(0, BUY, U64, RETAIL, bus_of(0)), Bid(1, SELL, U64, 0, bus_of(1))]
    words, sigs = m.signed_bids(t, 0, bids)
    assert m.market_call("recordRound", t, 0, True, words, sigs, len(words)) is None
    assert _excluded(m, t) == {0, 1}
    assert all(lock_of(b) > DEPOSIT for b in bids)
    assert m.market_call("clear", t, [], [], 0) is None
    _healthy(m)


def test_withdrawing_locked_escrow_reverts_until_settled(market: Market) -> None:
    ledger = market.ledger
    t = market.take_interval()
    buyer, seller = 1, 2
    bids = [_bid(buyer, BUY, 2_000, 200_000), _bid(seller, SELL, 2_000, 100_000)]
    _binding(market, t, bids)
    for member, bid in zip((buyer, seller), bids, strict=True):
        balance = int(ledger.view("balanceMicro", member)[0])
        assert int(ledger.view("lockedMicro", member)[0]) == lock_of(bid)
        free = _free(market, member)
        assert free == balance - lock_of(bid)
        key = market.member_key(member)
        assert market.market_call("withdraw", member, free + 1, key=key) == (
            "InsufficientFreeBalance"
        )
        assert market.market_call("withdraw", member, balance, key=key) == (
            "InsufficientFreeBalance"
        )
        assert market.market_call("withdraw", member, free - 10, key=key) is None
    # Finish the interval honestly; then the rest can be withdrawn.
    words = [enc.pack_bid(b) for b in bids]
    assert market.market_call("clear", t, words, [0, 1], 1) is None
    trades = enc.pack_trades(_trades_of(market, t))
    proof = market.security_proof(t, trades)
    assert market.market_call("recordSecurity", t, 0, trades, proof, 1) is None
    values = dict.fromkeys(market.member_ids, 0) | {buyer: -2_000, seller: 2_000}
    rw, rs = market.signed_readings(t, values)
    assert market.market_call("recordReadings", t, rw, rs, len(rw)) is None
    parties = [(buyer << 128) | seller]  # reading index = member id here
    assert market.market_call("settle", t, trades, rw, parties, 2 * len(rw)) is None
    for member in (buyer, seller):
        balance = int(ledger.view("balanceMicro", member)[0])
        assert int(ledger.view("lockedMicro", member)[0]) == 0
        assert market.market_call("withdraw", member, balance, key=market.member_key(member)) is (
            None
        )
        assert int(ledger.view("balanceMicro", member)[0]) == 0
        market.deposit(member, DEPOSIT)
    _healthy(market)


def _trades_of(market: Market, interval: int) -> tuple[Trade, ...]:
    market.seal()
    events = [
        e
        for e in market.ledger.events()
        if e.name == "IntervalCleared" and int(e.args["interval"]) == interval
    ]
    return enc.unpack_trades(events[-1].args["trades"])


def test_unbacked_grid_and_operator_withdrawals_revert() -> None:
    """Member debt is owed to GRID + OPERATOR: credit backed only by that debt cannot leave."""
    m = make_market(n_members=2, rounds=1, grid_deposit=10**9, limit_wh=10**8)
    ledger = m.ledger
    ledger.record_round(0, 0, [])
    ledger.clear(0)
    ledger.record_security(0, [])
    ledger.record_readings(0, {0: -5_000_000, 1: 0})  # 1.5e9 bought from the grid
    ledger.settle(0)
    ledger.end_interval(0)
    debt = int(ledger.view("memberDebtMicro")[0])
    grid = int(ledger.view("gridBalanceMicro")[0])
    operator = int(ledger.view("operatorBalanceMicro")[0])
    assert debt == 500_000_000 and grid == 2_500_000_000
    backed = grid + operator - debt
    assert int(ledger.view("gridWithdrawableMicro")[0]) == min(grid, backed)
    to = to_checksum_address(m.outsider)
    assert m.market_call("withdrawGrid", to, grid, key=m.grid_key) == "UnbackedWithdrawal"
    assert m.market_call("withdrawGrid", to, backed + 1, key=m.grid_key) == "UnbackedWithdrawal"
    assert m.market_call("withdrawGrid", to, backed) == "NotGrid"  # the operator
    assert m.market_call("withdrawGrid", to, backed, key=m.member_key(0)) == "NotGrid"
    assert m.market_call("withdrawOperator", to, operator + 1) == "UnbackedWithdrawal"
    assert m.market_call("withdrawOperator", to, 1, key=m.grid_key) == "NotOperator"
    assert m.market_call("withdrawGrid", to, backed, key=m.grid_key) is None
    assert int(ledger.view("gridBalanceMicro")[0]) == debt - operator
    assert m.market_call("withdrawGrid", to, 1, key=m.grid_key) == "UnbackedWithdrawal"
    _healthy(m)
    report = audit(ledger)
    assert not [f for f in report.findings if f.kind in ("unbacked_withdrawal", "solvency_breach")]


# ------------------------------------------------------------ curtailment attacks
NET = LinearNetwork(
    n_buses=4,
    n_bus_rows=3,
    n_line_rows=3,
    n_trafo_rows=0,
    interval_s=900,
    relief=np.array(
        [
            [0, 100, 100, 100],
            [0, 100, 300, 300],
            [0, 100, 300, 600],
            [0, 50, 50, 50],
            [0, 0, 50, 50],
            [0, 0, 0, 50],
        ],
        dtype=np.int64,
    ),
)


def _bus4(member: int) -> int:
    return member % 4


@pytest.fixture(scope="module")
def grid_market() -> Iterator[Market]:
    """Members on the 4 buses of NET; the DSO's network committed at setup."""
    network = NetworkCommitment(RULE_IDS["greedy"], pack_network(NET))
    m = make_market(n_members=8, rounds=1, bus=_bus4, network=network)
    yield m


def test_curtailments_need_the_dsos_signature_and_the_network(grid_market: Market) -> None:
    m = grid_market
    ledger = m.ledger
    t = m.take_interval()
    bids = [Bid(1, BUY, 1_000, 200_000, 1), Bid(3, SELL, 1_000, 100_000, 3)]
    ledger.record_round(t, 0, bids, binding=True)
    (trade,) = ledger.clear(t).trades
    margin = np.array([5, -30_000, -90_000, 1, 1, 1], dtype=np.int64)
    j = justify("greedy", NET, [trade], margin, np.zeros(6, dtype=np.int64))
    assert j.curtailments
    words = enc.pack_trades([trade])
    curts = [enc.pack_curtailment(c) for c in j.curtailments]
    margins = [pack_margin(x) for x in j.margins]
    cert = [int(y) for y in j.certificate]

    def record(curt_words, margin_words, key=None) -> str | None:
        ev = (curt_words, margin_words, cert)
        sig = m.verdict_sig(t, words, 1, ev, key)
        end = len(margin_words) + len(words) // 2 + 1
        return m.market_call(
            "recordSecurity", t, 1, words, (curt_words, margin_words, cert, sig), end
        )

    # Not signed by the DSO (the operator, the GRID account, a member).
    for key in (enc.derive_key(m.seed, "operator"), m.grid_key, m.member_key(1)):
        assert record(curts, margins, key) == "BadDsoSignature"
    # Signed by the DSO over other evidence than relayed.
    sig = m.verdict_sig(t, words, 1, (curts, margins, cert))
    assert m.market_call("recordSecurity", t, 1, words, (curts, [], cert, sig), 2) == (
        "BadDsoSignature"
    )
    # DSO-signed, but naming an element the network does not have, or one not violated.
    c0 = j.curtailments[0]
    ghost = enc.pack_curtailment(Curtailment(c0.trade_index, c0.cut_wh, c0.element, 99))
    assert record([ghost], margins) == "UnknownElement"
    m0 = j.margins[0]
    ghost_margin = pack_margin(RowMargin(m0.element, 99, m0.margin_npct, m0.allowance_npct))
    assert record(curts, [ghost_margin]) == "BadMargin"  # a margin of no committed row
    unviolated = [pack_margin(RowMargin(x.element, x.element_index, 1, 0)) for x in j.margins]
    assert record(curts, unviolated) == "NotViolated"
    ledger.record_security(t, j.curtailments, j.margins, j.certificate)
    assert m.phase(t) == 4
    m.release()


def _curtailed_interval(m: Market) -> tuple[int, list[int], Any]:
    """A binding round of one trade across NET whose flow violates two rows; the DSO's
    justified verdict of it."""
    t = m.take_interval()
    bids = [Bid(1, BUY, 1_000, 200_000, 1), Bid(3, SELL, 1_000, 100_000, 3)]
    m.ledger.record_round(t, 0, bids, binding=True)
    (trade,) = m.ledger.clear(t).trades
    margin = np.array([5, -30_000, -90_000, 1, 1, 1], dtype=np.int64)
    j = justify("greedy", NET, [trade], margin, np.zeros(6, dtype=np.int64))
    assert len(j.margins) == 2 and j.curtailments
    return t, enc.pack_trades([trade]), j


def test_a_verdict_in_pages(grid_market: Market) -> None:
    """recordSecurity in pages over a curtailed verdict's entries (its margin rows, its
    trades, the final entry): each page resubmits the DSO-signed verdict, whose struct hash
    the first page fixed; a page out of order or past the end is BadPage, another signed
    verdict HashMismatch; the final page records it like one call; the Ledger pages it when
    told to, and on resume goes on from the entries already checked."""
    m = grid_market
    ledger = m.ledger
    t, words, j = _curtailed_interval(m)
    curts = [enc.pack_curtailment(c) for c in j.curtailments]
    margins = [pack_margin(x) for x in j.margins]
    end = len(margins) + 1 + 1

    def page(margin_words: list[int], up_to: int) -> str | None:
        ev = (curts, margin_words, [])
        sig = m.verdict_sig(t, words, 1, ev)
        return m.market_call("recordSecurity", t, 1, words, (*ev, sig), up_to)

    assert page(margins, end + 1) == "BadPage"
    assert page(margins, 1) is None
    state = m.state(t)
    assert state[0] == 3 and state[13] == 1  # still Security, one entry checked
    assert page(margins, 1) == "BadPage"
    assert page(margins[:1], 2) == "HashMismatch"  # signed too, but not the verdict begun
    assert page(margins, 3) is None
    assert page(margins, end) is None
    state = m.state(t)
    assert state[0] == 4 and state[13] == 0 and state[12] == bytes(32)
    m.seal()
    paged = [e for e in ledger.events() if e.name == "SecurityPaged" and e.args["interval"] == t]
    assert [(e.args["fromEntry"], e.args["upTo"]) for e in paged] == [(0, 1), (1, 3)]
    m.release()
    # the Ledger, reattached after a first page (a resume), pages the rest one entry at a time
    t, words, j = _curtailed_interval(m)
    assert page(margins, 1) is None
    guard = ledger.resume
    ledger.resume = ResumeGuard(ledger.view, ledger.events, active=True)
    ledger.record_page_entries = 1
    try:
        ledger.record_security(t, j.curtailments, j.margins, j.certificate)
    finally:
        ledger.record_page_entries = None
        ledger.resume = guard
    assert m.phase(t) == 4
    m.seal()
    paged = [e for e in ledger.events() if e.name == "SecurityPaged" and e.args["interval"] == t]
    assert [(e.args["fromEntry"], e.args["upTo"]) for e in paged] == [(0, 1), (1, 2), (2, 3)]
    m.release()


def test_curtailment_on_a_market_without_network(market: Market) -> None:
    t = market.take_interval()
    bids = [_bid(1, BUY, 1_000, 200_000), _bid(2, SELL, 1_000, 100_000)]
    ledger = market.ledger
    ledger.record_round(t, 0, bids, binding=True)
    (trade,) = ledger.clear(t).trades
    words = enc.pack_trades([trade])
    cut = [enc.pack_curtailment(Curtailment(0, 10, "line", 0))]
    proof = market.security_proof(t, words, 1, cut)
    assert market.market_call("recordSecurity", t, 1, words, proof, 1) == "NetworkNotConfigured"
    market.expire(t)


# ------------------------------------------------------------ operator vs members
def test_operator_cannot_drop_or_replace_direct_bids(market: Market) -> None:
    ledger = market.ledger
    t = market.take_interval()
    # Clearing before the binding round.
    assert market.market_call("clear", t, [], [], 0) == "WrongPhase"
    _open(market, t)
    assert market.market_call("clear", t, [], [], 0) == "WrongPhase"
    own = _bid(3, BUY, 500, 150_000)
    own_word = enc.pack_bid(own)
    # Sent by another member's account, by the operator, for another round: refused.
    assert market.market_call("submitBid", t, 0, own_word, key=market.member_key(2)) == (
        "NotMemberAccount"
    )
    assert market.market_call("submitBid", t, 0, own_word) == "NotMemberAccount"
    assert market.market_call("submitBid", t, 1, own_word, key=market.member_key(3)) == (
        "WrongRound"
    )
    for bad, error in (
        (own_word | 1, "MalformedBid"),
        (enc.pack_bid(_bid(3, price=RETAIL + 1)), "PriceAboveCap"),
        (enc.pack_bid(_bid(3, e_wh=LIMIT_WH + 1)), "AboveLimit"),
        (enc.pack_bid(Bid(3, BUY, 5, 5, bus_of(3) + 1)), "BusMismatch"),
    ):
        assert market.market_call("submitBid", t, 0, bad, key=market.member_key(3)) == error
    assert market.market_call("submitBid", t, 0, own_word, key=market.member_key(3)) is None
    assert ledger.view("directSubmission", t, 0, 3)[0] == own_word
    other = [_bid(1, BUY, 200, 120_000), _bid(4, SELL, 300, 90_000)]
    # Closing the round before its deadline with not every member in it.
    w, s = market.signed_bids(t, 0, other)
    assert market.market_call("recordRound", t, 0, True, w, s, len(w)) == "RoundStillOpen"
    market.seal(2)
    # Dropping the member's direct bid.
    assert market.market_call("recordRound", t, 0, True, w, s, len(w)) == "DirectEntryMissing"
    # Replacing it by a (member-signed) other bid of the same member.
    replaced = [other[0], _bid(3, BUY, 1, 1), other[1]]
    w, s = market.signed_bids(t, 0, replaced)
    assert market.market_call("recordRound", t, 0, True, w, s, len(w)) == "DirectEntryIgnored"
    # An unsigned entry that is not the member's direct bid.
    w, s = market.signed_bids(t, 0, [other[0], _bid(3, BUY, 501, 150_000), other[1]])
    s[2], s[3] = ZERO_SIG, ZERO_SIG
    assert market.market_call("recordRound", t, 0, True, w, s, len(w)) == "DirectEntryMismatch"
    # An unsigned entry for a member who sent nothing.
    w, s = market.signed_bids(t, 0, [other[0], own, other[1]])
    s[2], s[3] = ZERO_SIG, ZERO_SIG
    s[0], s[1] = ZERO_SIG, ZERO_SIG
    assert market.market_call("recordRound", t, 0, True, w, s, len(w)) == "DirectEntryMismatch"
    # The honest batch: the direct bid unsigned, the others signed.
    w, s = market.signed_bids(t, 0, [other[0], own, other[1]])
    s[2], s[3] = ZERO_SIG, ZERO_SIG
    assert market.market_call("recordRound", t, 0, True, w, s, len(w)) is None
    assert market.market_call("submitBid", t, 0, own_word, key=market.member_key(3)) == (
        "WrongPhase"
    )
    market.expire(t)


def test_bids_signed_by_another_member_or_replayed_revert(market: Market) -> None:
    t = market.take_interval()
    _open(market, t)
    market.seal(2)
    bid = _bid(1, BUY, 100, 100_000)
    cases = [
        market.signed_bids(t, 0, [bid], keys={1: market.member_key(2)}),  # member 2 forges
        market.signed_bids(t, 0, [bid], keys={1: market.meter_key(1)}),  # its meter key
        market.signed_bids(t, 0, [bid], keys={1: enc.derive_key(market.seed, "operator")}),
        market.signed_bids(t + 7, 0, [bid]),  # replay: another interval
        market.signed_bids(t, 1, [bid]),  # replay: another round
    ]
    for words, sigs in cases:
        assert (
            market.market_call("recordRound", t, 0, True, words, sigs, len(words)) == "BadSignature"
        )
    # Another chain or another market (EIP-712 domain) does not verify either.
    ledger = market.ledger
    word = enc.pack_bid(bid)
    for domain in (
        enc.domain_separator(ledger.backend.chain_id + 1, ledger.market),
        enc.domain_separator(ledger.backend.chain_id, bytes(20)),
    ):
        r, vs = enc.sign_compact(market.member_key(1), enc.bid_digest(domain, t, 0, word))
        assert (
            market.market_call("recordRound", t, 0, True, [word], [r, vs], len([word]))
            == "BadSignature"
        )
    words, sigs = market.signed_bids(t, 0, [bid])
    assert market.market_call("recordRound", t, 0, True, words, sigs, len(words)) is None
    market.expire(t)


def test_domain_separator_follows_chain_and_contract(market: Market) -> None:
    ledger = market.ledger
    onchain = bytes(ledger.view("domainSeparator")[0])
    assert onchain == enc.domain_separator(ledger.backend.chain_id, ledger.market)
    assert onchain == ledger.keys.domain
    assert onchain != enc.domain_separator(ledger.backend.chain_id + 1, ledger.market)
    # The embedded chain cannot change its chain id mid-run: the recomputation branch of
    # domainSeparator() (block.chainid != cached) is checked by the formula above, which
    # is the one the contract recomputes from block.chainid and address(this).


# ------------------------------------------------------------------ readings attacks
def _to_delivery(market: Market, t: int) -> None:
    ledger = market.ledger
    ledger.record_round(t, 0, [], binding=True)
    ledger.clear(t)
    ledger.record_security(t, [])


def test_readings_batch_rules(market: Market) -> None:
    """Left-out members, default readings before the window, direct meter readings."""
    t = market.take_interval()
    ids = market.member_ids
    word = enc.pack_reading(2, 700)
    assert market.market_call("submitReading", t, word, key=market.meter_key(2)) == "WrongPhase"
    _to_delivery(market, t)
    # A meter reporting for another member; a member's account instead of its meter.
    assert market.market_call("submitReading", t, word, key=market.meter_key(3)) == (
        "NotMemberMeter"
    )
    assert market.market_call("submitReading", t, word, key=market.member_key(2)) == (
        "NotMemberMeter"
    )
    assert market.market_call("submitReading", t, word | 1, key=market.meter_key(2)) == (
        "MalformedBid"
    )
    too_big = enc.pack_reading(2, LIMIT_WH + 1)
    assert market.market_call("submitReading", t, too_big, key=market.meter_key(2)) == (
        "AboveLimit"
    )
    assert market.market_call("submitReading", t, word, key=market.meter_key(2)) is None
    values = dict.fromkeys(ids, 10)
    # Leaving out members.
    w, s = market.signed_readings(t, {k: v for k, v in values.items() if k != 4})
    assert market.market_call("recordReadings", t, w, s, len(w)) == "DirectEntryIgnored"
    w, s = market.signed_readings(t, {k: v for k, v in values.items() if k not in (2, 4)})
    assert market.market_call("recordReadings", t, w, s, len(w)) == "DirectEntryMissing"
    # The meter's direct reading replaced by a signed or an unsigned other value.
    w, s = market.signed_readings(t, values)
    assert market.market_call("recordReadings", t, w, s, len(w)) == "DirectEntryIgnored"
    w, s = market.signed_readings(t, values | {2: 701})
    s[4], s[5] = ZERO_SIG, ZERO_SIG
    assert market.market_call("recordReadings", t, w, s, len(w)) == "DirectEntryMismatch"
    # The honest batch holds the meter's own reading, unsigned.
    rw, s = market.signed_readings(t, values | {2: 700})
    s[4], s[5] = ZERO_SIG, ZERO_SIG
    assert market.market_call("recordReadings", t, rw, s, len(rw)) is None
    # Too late: one batch per interval; the meter's reading after it.
    assert market.market_call("submitReading", t, word, key=market.meter_key(2)) == (
        "ReadingsAlreadyRecorded"
    )
    trades: list[int] = []
    assert market.market_call("settle", t, trades, rw, [], 2 * len(rw)) is None
    _healthy(market)


def test_default_reading_rules(market: Market) -> None:
    ledger = market.ledger
    t = market.take_interval()
    ids = market.member_ids
    _to_delivery(market, t)
    silent = 4
    values = {k: 0 for k in ids if k != silent}
    w, s = market.signed_readings(t, values)
    default = enc.pack_reading(silent, -LIMIT_WH)
    pos = sorted([*values, silent]).index(silent)
    w.insert(pos, default)
    s[2 * pos : 2 * pos] = [ZERO_SIG, ZERO_SIG]
    # Only the other members: incomplete.
    w0, s0 = market.signed_readings(t, values)
    assert market.market_call("recordReadings", t, w0, s0, len(w0)) == "ReadingsIncomplete"
    # The default before the meters' window closed.
    assert market.market_call("recordReadings", t, w, s, len(w)) == "ReadingWindowOpen"
    market.seal(2)
    # A "default" other than importing at the connection limit.
    kind = list(w)
    kind[pos] = enc.pack_reading(silent, -LIMIT_WH + 1)
    assert market.market_call("recordReadings", t, kind, s, len(kind)) == "DirectEntryMismatch"
    kind[pos] = enc.pack_reading(silent, LIMIT_WH)
    assert market.market_call("recordReadings", t, kind, s, len(kind)) == "DirectEntryMismatch"
    assert market.market_call("recordReadings", t, w, s, len(w)) is None
    assert market.market_call("settle", t, [], w, [], 2 * len(w)) is None
    _healthy(market)
    market.seal()
    report = audit(ledger)
    found = [f for f in report.findings if f.kind == "missing_reading"]
    assert any(f.interval == t for f in found), report.findings


def test_default_reading_never_pays_better_than_a_real_one() -> None:
    """Settle the same trades twice, on two identical chains: once with the member's real
    reading, once with its meter silent (default). The default is never better; and on
    the reference over a grid of readings and trades likewise."""
    outcomes = []
    for silent in (False, True):
        m = make_market(n_members=3, rounds=1, limit_wh=10_000)
        ledger = m.ledger
        bids = [Bid(0, BUY, 4_000, 200_000, bus_of(0)), Bid(1, SELL, 4_000, 100_000, bus_of(1))]
        ledger.record_round(0, 0, bids)
        (trade,) = ledger.clear(0).trades
        ledger.record_security(0, [])
        real = {0: -4_000, 1: 4_500, 2: 9_000}
        w, s = m.signed_readings(0, real)
        if silent:
            m.seal(2)
            for k in (1,):
                w[k] = enc.pack_reading(k, -10_000)
                s[2 * k], s[2 * k + 1] = ZERO_SIG, ZERO_SIG
        assert m.market_call("recordReadings", 0, w, s, len(w)) is None
        assert m.market_call("settle", 0, enc.pack_trades([trade]), w, [1], 2 * len(w)) is None
        outcomes.append(int(ledger.view("balanceMicro", 1)[0]))
    assert outcomes[1] <= outcomes[0]
    limit = 10_000
    trades = [Trade(0, 1, 4_000, 200_000, 100_000, 1, 2)]
    for tariffs in (TARIFFS, Tariffs(300_000, 80_000, tolerance_bp=500)):
        for member in (0, 1, 2):
            for net in range(-limit, limit + 1, 250):
                base = {0: -4_000, 1: 4_000, 2: 0}
                real = settle(trades, base | {member: net}, tariffs).deltas()[member]
                worst = settle(trades, base | {member: -limit}, tariffs).deltas()[member]
                assert worst <= real, (member, net)


# ------------------------------------------------------------------------ stray tokens
def test_stray_tokens_keep_the_books_conserved(market: Market) -> None:
    ledger = market.ledger
    out = to_checksum_address(market.outsider)
    before = int(ledger.view("strayMicro")[0])
    assert market.token_call("mint", out, 12_345) is None
    target = to_checksum_address(ledger.market)
    assert market.token_call("transfer", target, 12_345, key=market.outsider_key) is None
    assert int(ledger.view("strayMicro")[0]) == before + 12_345
    _healthy(market)
    # Stray tokens belong to nobody: no account's withdrawable amount grows.
    assert int(ledger.view("gridWithdrawableMicro")[0]) <= int(ledger.view("gridBalanceMicro")[0])


# ------------------------------------------------------------------------------ expiry
def test_unsettled_interval_expires_and_members_withdraw_everything() -> None:
    m = make_market(n_members=3, rounds=1, timing=ChainTiming(2, 2, 5))
    ledger = m.ledger
    t = 0
    bids = [Bid(0, BUY, 1_000, 200_000, bus_of(0)), Bid(1, SELL, 1_000, 100_000, bus_of(1))]
    ledger.record_round(t, 0, bids)
    ledger.clear(t)  # ... and the operator walks away
    assert int(ledger.view("lockedMicro", 0)[0]) == lock_of(bids[0])
    deadline = int(m.state(t)[7])
    assert m.market_call("expireInterval", t, key=m.outsider_key) == "NotExpirable"
    assert m.market_call("expireInterval", t + 1, key=m.outsider_key) == "NotExpirable"
    m.seal_until(deadline)
    assert m.market_call("expireInterval", t, key=m.member_key(0)) == "NotExpirable"
    m.seal()
    assert m.market_call("expireInterval", t, key=m.member_key(2)) is None  # anyone
    assert m.phase(t) == PHASE_EXPIRED
    for member in m.member_ids:
        assert int(ledger.view("lockedMicro", member)[0]) == 0
        balance = int(ledger.view("balanceMicro", member)[0])
        assert balance == DEPOSIT  # no money moved for the void interval
        assert m.market_call("withdraw", member, balance, key=m.member_key(member)) is None
    for function, args in (
        ("clear", (t, [enc.pack_bid(b) for b in bids], [0, 1], 1)),
        ("recordSecurity", (t, 0, [], ([], [], [], [ZERO_SIG, ZERO_SIG]), 1)),
        ("recordReadings", (t, [], [], 0)),
        ("settle", (t, [], [], [], 0)),
    ):
        assert m.market_call(function, *args) == "WrongPhase", function
    assert int(ledger.view("heldMicro")[0]) == int(ledger.view("gridBalanceMicro")[0])
    _healthy(m)


def test_suspended_member_cannot_bid_and_is_not_counted(market: Market) -> None:
    t = market.take_interval()
    assert market.market_call("setMemberActive", 5, False) is None
    try:
        _open(market, t)
        assert market.market_call(
            "submitBid", t, 0, enc.pack_bid(_bid(5)), key=market.member_key(5)
        ) == ("MemberSuspended")
        # Every active member (all but 5) bids: the round closes before its deadline.
        bids = [_bid(k, BUY, 10, 1_000) for k in market.member_ids if k != 5]
        w, s = market.signed_bids(t, 0, bids)
        assert market.market_call("recordRound", t, 0, True, w, s, len(w)) is None
    finally:
        assert market.market_call("setMemberActive", 5, True) is None
    market.expire(t)


def test_facade_refuses_nothing_the_chain_accepts(market: Market) -> None:
    """A bid above the cap through the facade is the chain's PriceAboveCap."""
    t = market.take_interval()
    with pytest.raises(ChainError, match="PriceAboveCap"):
        market.ledger.record_round(t, 0, [_bid(1, price=RETAIL + 1)], binding=True)
    market.ledger._cache.pop(t, None)
    market.release()


# ------------------------------------------------------ what only the audit can see
def test_operator_dropping_a_signed_bid_is_an_audit_finding(market: Market) -> None:
    """A member hands its signed bid to the operator, who records the round without it:
    the chain cannot know, the member's receipt proves it (dropped_signed_bid)."""
    t = market.take_interval()
    _open(market, t)
    market.seal(2)
    handed = [_bid(1, BUY, 100, 120_000), _bid(2, SELL, 100, 90_000)]
    words, sigs = market.signed_bids(t, 0, handed)
    receipts = {(t, 0): {b.member: w for b, w in zip(handed, words, strict=True)}}
    assert (
        market.market_call("recordRound", t, 0, True, words[:1], sigs[:2], len(words[:1])) is None
    )
    market.seal()
    report = audit(market.ledger, receipts=receipts)
    found = [f for f in report.findings if f.kind == "dropped_signed_bid" and f.interval == t]
    assert len(found) == 1 and "member 2" in found[0].detail
    market.expire(t)


def test_signed_only_network_curtailment_is_an_audit_finding() -> None:
    """A feeder too large to commit (NETWORK_SIGNED_ONLY): the chain checks only the DSO's
    signature, so an unjustified curtailment passes on chain and the audit names it."""
    signed_only = NetworkCommitment((1 << 256) - 1, b"")
    m = make_market(n_members=8, rounds=1, bus=_bus4, network=signed_only)
    ledger = m.ledger
    t = m.take_interval()
    ledger.record_round(t, 0, [Bid(1, BUY, 1_000, 200_000, 1), Bid(3, SELL, 1_000, 100_000, 3)])
    (trade,) = ledger.clear(t).trades
    cut = Curtailment(0, 400, "bus", 2)
    ledger.record_security(t, [cut])  # no margins, nothing violated: unjustified
    values = dict.fromkeys(m.member_ids, 0) | {1: -600, 3: 600}
    ledger.record_readings(t, values)
    ledger.settle(t)
    ledger.end_interval(t)
    table = pack_network(NET)

    def check(interval, words, cuts, margins, certificate) -> str | None:
        try:
            check_recorded(table, "greedy", enc.unpack_trades(words), cuts, margins, certificate)
        except UnjustifiedCurtailment as error:
            return f"{error.error}: {error}"
        return None

    assert not [f for f in audit(ledger).findings if f.kind == "unjustified_curtailment"]
    report = audit(ledger, justify=check)
    found = [f for f in report.findings if f.kind == "unjustified_curtailment"]
    assert [f.interval for f in found] == [t], report.findings
    assert trade.e_wh == 1_000


def test_suspending_a_member_after_its_direct_bid_does_not_block_the_round(
    market: Market,
) -> None:
    """The operator suspends a member after its direct bid: the batch must still hold that
    bid (it cannot be dropped by suspending its member), and it can be recorded."""
    t = market.take_interval()
    _open(market, t)
    word = enc.pack_bid(_bid(4, BUY, 10, 1_000))
    assert market.market_call("submitBid", t, 0, word, key=market.member_key(4)) is None
    assert market.market_call("setMemberActive", 4, False) is None
    try:
        market.seal(2)
        assert (
            market.market_call("recordRound", t, 0, True, [], [], len([])) == "DirectEntryMissing"
        )
        assert (
            market.market_call("recordRound", t, 0, True, [word], [ZERO_SIG, ZERO_SIG], len([word]))
            is None
        )
    finally:
        assert market.market_call("setMemberActive", 4, True) is None
        market.release()


def test_direct_submissions_close_at_the_deadline(market: Market) -> None:
    """A member cannot change its direct bid once the operator may record the round (nor a
    meter its reading once defaults are allowed): else it could race every batch."""
    t = market.take_interval()
    _open(market, t)
    key = market.member_key(4)
    words = [enc.pack_bid(_bid(4, e_wh=10))]
    assert market.market_call("submitBid", t, 0, words[0], key=key) is None
    market.seal(2)  # the round's deadline has passed: the operator may record it now
    late = enc.pack_bid(_bid(4, e_wh=11))
    assert market.market_call("submitBid", t, 0, late, key=key) == "SubmissionClosed"
    assert (
        market.market_call("recordRound", t, 0, True, words, [ZERO_SIG, ZERO_SIG], len(words))
        is None
    )
    assert market.market_call("clear", t, words, [0], 1) is None
    trades: list[int] = []
    proof = market.security_proof(t, trades)
    assert market.market_call("recordSecurity", t, 0, trades, proof, 1) is None
    reading = enc.pack_reading(4, 5)
    assert market.market_call("submitReading", t, reading, key=market.meter_key(4)) is None
    market.seal(2)
    later = enc.pack_reading(4, 6)
    assert market.market_call("submitReading", t, later, key=market.meter_key(4)) == (
        "SubmissionClosed"
    )
    market.release()
