"""Contract functions, revert paths and access control, checked by custom-error name.

Every custom error the Market can raise has a test asserting it by name (somewhere under
tests/ledger/, checked by ``test_every_market_error_is_asserted``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from eth_utils import to_checksum_address
from ledgerkit import (
    DEPOSIT,
    LIMIT_WH,
    TARIFFS,
    ZERO_ADDRESS,
    ZERO_SIG,
    Market,
    bus_of,
    deploy_market,
    make_market,
)

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.ledger.backends import CallReverted
from gridledger.ledger.contracts import artifact, decode_error
from gridledger.ledger.network_data import pack_tree
from gridledger.market import Bid, Side
from gridledger.market.justification import linear_network_from_tree
from gridledger.market.orders import Curtailment, Trade
from gridledger.market.radial import RadialTree

U64 = (1 << 64) - 1
# A 4-bus radial feeder 0-1-2, 1-3 in tree form (one value per bus and per branch).
FEEDER_TREE = linear_network_from_tree(
    RadialTree(
        parent=np.array([0, 0, 1, 1]),
        depth=np.array([0, 1, 2, 2]),
        bus_value=np.array([0, 40, 90, 70]),
        branch_child=np.array([1, 2, 3]),
        branch_value=np.array([5, 6, 7]),
    ),
    3,
    0,
    900,
)
GRID_ACCOUNT = (1 << 32) - 1
OPERATOR_ACCOUNT = (1 << 32) - 2
# Market errors no test can reach, and why.
UNREACHABLE = {
    "TokenTransferFailed": "SettlementToken returns true or reverts with its own error",
    "MalformedOrder": "FeeClearingVerifier: recorded bids are well formed (recordRound checks)",
    "ZeroQuantity": "FeeClearingVerifier, optimal rule: H2's tests (optimal certificate work)",
}


def _bid(member: int, side: Side = Side.BUY, e_wh: int = 100, price: int = 100_000) -> Bid:
    return Bid(member, side, e_wh, price, bus_of(member))


def _ev(market: Market, t: int, trades: list[int], verdict: int, curts: list[int], key=None):
    return market.security_proof(t, trades, verdict, curts, key)


def test_access_control(market: Market) -> None:
    key = market.outsider_key
    a = to_checksum_address(market.outsider)
    ev = ([], [], [], [ZERO_SIG, ZERO_SIG])
    calls = [
        ("registerMembers", [99], [a], [a], [1], [0], [1]),
        ("setMemberActive", 1, False),
        ("openInterval", 500),
        ("recordRound", 500, 0, False, [], [], 0),
        ("clear", 500, [], [], 0),
        ("clearGreedy", 500, [], [], 0, [], 0),
        ("clearOptimal", 500, [], [], [], [], 1),
        ("configureClearing", 2, 1, 2, b"\0" * 16),
        ("configureNetwork", 0, b"", [ZERO_SIG, ZERO_SIG]),
        ("recordSecurity", 500, 0, [], ev, 1),
        ("recordReadings", 500, [], [], 0),
        ("settle", 500, [], [], [], 0),
        ("withdrawOperator", a, 1),
    ]
    for function, *args in calls:
        assert market.market_call(function, *args, key=key) == "NotOperator", function
        # Neither a member's account nor the GRID account is the operator.
        assert market.market_call(function, *args, key=market.member_key(1)) == "NotOperator"
    assert market.market_call("withdrawGrid", a, 1, key=key) == "NotGrid"
    assert market.market_call("withdrawGrid", a, 1) == "NotGrid"  # the operator
    assert market.market_call("withdrawOperator", a, 1, key=market.grid_key) == "NotOperator"
    assert market.token_call("mint", a, 1, key=key) == "NotMinter"
    assert market.market_call("withdraw", 1, 1, key=key) == "NotMemberAccount"
    assert market.market_call("withdraw", 1, 1, key=market.member_key(2)) == "NotMemberAccount"
    assert market.market_call("withdraw", 1, 1, key=market.meter_key(1)) == "NotMemberAccount"
    assert market.market_call("withdraw", 1, 1) == "NotMemberAccount"  # the operator


def test_registry(market: Market) -> None:
    ledger = market.ledger
    a = to_checksum_address(market.outsider)

    def register(ids, accounts, meters, buses, roles, limits) -> str | None:
        return market.market_call("registerMembers", ids, accounts, meters, buses, roles, limits)

    assert register([1], [a], [a], [1], [0], [1]) == "MemberAlreadyRegistered"
    assert register([90], [a], [a], [1], [0], []) == "LengthMismatch"
    assert register([90], [a], [], [1], [0], [1]) == "LengthMismatch"
    assert register([90], [ZERO_ADDRESS], [a], [1], [0], [1]) == "ZeroAddress"
    assert register([90], [a], [ZERO_ADDRESS], [1], [0], [1]) == "ZeroAddress"
    assert register([90], [a], [a], [1], [0], [0]) == "ZeroLimit"
    assert register([GRID_ACCOUNT], [a], [a], [1], [0], [1]) == "ReservedMemberId"
    assert register([OPERATOR_ACCOUNT], [a], [a], [1], [0], [1]) == "ReservedMemberId"
    assert market.market_call("setMemberActive", 77, False) == "UnknownMember"
    record = ledger.view("member", 3)[0]
    assert record[1] == bus_of(3) and record[3] is True and record[4] == LIMIT_WH
    with pytest.raises(ChainError, match="UnknownMember"):
        ledger.view("member", 77)
    assert ledger.view("memberCount")[0] == 12
    assert ledger.view("activeMemberCount")[0] == 12


def test_bidding_reverts(market: Market) -> None:
    t = market.take_interval()
    good = [_bid(1), _bid(2, Side.SELL)]
    words, sigs = market.signed_bids(t, 0, good)
    assert market.market_call("recordRound", t, 0, True, words, sigs, len(words)) == "WrongPhase"
    assert market.market_call("openInterval", t) is None
    assert market.market_call("openInterval", t) == "WrongPhase"
    assert market.market_call("recordRound", t, 1, True, words, sigs, len(words)) == "WrongRound"
    assert (
        market.market_call("recordRound", t, 0, True, words, sigs[:-1], len(words))
        == "LengthMismatch"
    )
    # Two of twelve members before the round's deadline.
    assert (
        market.market_call("recordRound", t, 0, True, words, sigs, len(words)) == "RoundStillOpen"
    )
    market.seal(2)
    w2, s2 = market.signed_bids(t, 0, [_bid(2), _bid(1)])
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "NotAscending"
    w2, s2 = market.signed_bids(t, 0, [_bid(1), _bid(1, Side.SELL)])
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "NotAscending"
    bad_word = words[0] | 1
    assert (
        market.market_call("recordRound", t, 0, True, [bad_word], sigs[:2], len([bad_word]))
        == "MalformedBid"
    )
    side_two = words[0] | (2 << 216)
    no_energy = words[0] & ~(U64 << 152)
    for malformed in (side_two, no_energy):
        assert market.market_call(
            "recordRound", t, 0, True, [malformed], sigs[:2], len([malformed])
        ) == ("MalformedBid")
    w2, s2 = market.signed_bids(t, 0, [_bid(1, price=TARIFFS.retail_per_kwh_micro + 1)])
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "PriceAboveCap"
    w2, s2 = market.signed_bids(t, 0, [_bid(1, e_wh=LIMIT_WH + 1)])
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "AboveLimit"
    w2, s2 = market.signed_bids(
        t, 0, [Bid(40, Side.BUY, 5, 5, bus_of(40))], keys={40: b"\x01" * 32}
    )
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "UnknownMember"
    w2, s2 = market.signed_bids(t, 0, [Bid(1, Side.BUY, 5, 5, bus_of(1) + 1)])
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "BusMismatch"
    w2, s2 = market.signed_bids(t, 0, [_bid(1)], keys={1: market.member_key(2)})
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "BadSignature"
    w2, s2 = market.signed_bids(t + 1, 0, [_bid(1)])  # signed for another interval
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "BadSignature"
    w2, s2 = market.signed_bids(t, 1, [_bid(1)])  # signed for another round
    assert market.market_call("recordRound", t, 0, True, w2, s2, len(w2)) == "BadSignature"
    assert market.market_call("setMemberActive", 1, False) is None
    assert (
        market.market_call("recordRound", t, 0, True, words, sigs, len(words)) == "MemberSuspended"
    )
    assert market.market_call("setMemberActive", 1, True) is None
    assert market.market_call("recordRound", t, 0, True, words, sigs, len(words)) is None
    # Phase checks after the binding round.
    bids = [enc.unpack_bid(w) for w in words]
    assert bids[0].side == Side.BUY
    assert market.market_call("clear", t, words, [0], 1) == "BadOrder"
    assert market.market_call("clear", t, words, [1, 0], 1) == "BadOrder"  # sides swapped
    assert market.market_call("clear", t, words, [0, 0], 1) == "BadOrder"  # not a permutation
    assert market.market_call("clear", t, words[:1], [0], 1) == "HashMismatch"
    assert market.market_call("clearGreedy", t, words, [0, 1], 1, [], 0) == "WrongClearingRule"
    assert market.market_call("clearOptimal", t, words, [], [], [], 1) == "WrongClearingRule"
    assert market.market_call("clear", t, words, [0, 1], 1) is None
    w3, s3 = market.signed_bids(t, 1, good)
    assert market.market_call("recordRound", t, 1, True, w3, s3, len(w3)) == "WrongPhase"
    assert market.market_call("clear", t, words, [0, 1], 1) == "WrongPhase"
    assert market.market_call("submitBid", t, 1, words[0], key=market.member_key(1)) == (
        "WrongPhase"
    )
    market.expire(t)


def test_order_must_follow_price_priority(market: Market) -> None:
    t = market.take_interval()
    bids = [
        _bid(1, price=100),
        _bid(2, price=200),
        _bid(3, Side.SELL, price=50),
        _bid(4, Side.SELL, price=60),
    ]
    words, sigs = market.signed_bids(t, 0, bids)
    assert market.market_call("openInterval", t) is None
    market.seal(2)
    assert market.market_call("recordRound", t, 0, True, words, sigs, len(words)) is None
    assert market.market_call("clear", t, words, [0, 1, 2, 3], 2) == "BadOrder"  # buys ascending
    assert market.market_call("clear", t, words, [1, 0, 3, 2], 2) == "BadOrder"  # sells desc.
    assert market.market_call("clear", t, words, [1, 0, 2, 3], 2) is None
    market.expire(t)


def test_security_readings_settlement_reverts(market: Market) -> None:
    ledger = market.ledger
    t = market.take_interval()
    proof = ([], [], [], [ZERO_SIG, ZERO_SIG])
    assert market.market_call("recordSecurity", t, 0, [], proof, 1) == "WrongPhase"
    for k in range(2):
        ledger.record_round(
            t, k, [_bid(1, e_wh=1000, price=200_000), _bid(2, Side.SELL, e_wh=600, price=100_000)]
        )
    result = ledger.clear(t)
    assert len(result.trades) == 1 and result.price_per_kwh_micro == 150_000
    trades = enc.pack_trades(result.trades)
    cut_line = enc.pack_curtailment(Curtailment(0, 100, "line", 2))
    too_much = enc.pack_curtailment(Curtailment(0, 700, "line", 2))
    no_trade = enc.pack_curtailment(Curtailment(5, 1, "bus", 2))
    bad_kind = cut_line | (7 << 152)
    low_bits = cut_line | 1

    def security(verdict: int, words: list[int], curts: list[int], key=None) -> str | None:
        return market.market_call(
            "recordSecurity", t, verdict, words, _ev(market, t, words, verdict, curts, key), 1
        )

    assert security(0, trades, [cut_line]) == "BadVerdict"
    assert security(1, trades, []) == "BadVerdict"
    assert security(3, trades, [cut_line]) == "BadVerdict"
    assert security(1, trades, [too_much]) == "BadCurtailment"
    assert security(1, trades, [no_trade]) == "BadCurtailment"
    assert security(1, trades, [bad_kind]) == "BadCurtailment"
    assert security(1, trades, [low_bits]) == "BadCurtailment"
    assert security(1, [], [cut_line]) == "HashMismatch"
    assert security(0, trades, [], key=ledger.member_key(1)) == "BadDsoSignature"
    assert security(1, trades, [cut_line], key=market.grid_key) == "BadDsoSignature"
    # A DSO-signed curtailment, but this market committed no network.
    assert security(1, trades, [cut_line]) == "NetworkNotConfigured"
    # The signature covers the interval: the DSO's verdict of another interval is refused.
    other = market.security_proof(t + 1, trades, 0)
    assert market.market_call("recordSecurity", t, 0, trades, other, 1) == "BadDsoSignature"
    assert market.market_call("recordReadings", t, [], [], len([])) == "WrongPhase"
    ledger.record_security(t, [])
    values = dict.fromkeys(market.member_ids, 0) | {1: -1000, 2: 600}
    words, sigs = market.signed_readings(t, values)
    assert market.market_call("recordReadings", t, words, sigs[:-2], len(words)) == "LengthMismatch"
    w2, s2 = market.signed_readings(t, values, keys={1: ledger.member_key(1)})
    assert market.market_call("recordReadings", t, w2, s2, len(w2)) == "NotMemberMeter"
    w2, s2 = market.signed_readings(t, {55: 1}, keys={55: ledger.member_key(1)})
    assert market.market_call("recordReadings", t, w2, s2, len(w2)) == "UnknownMember"
    w2, s2 = market.signed_readings(t, {1: 0})
    assert (
        market.market_call("recordReadings", t, [w2[0] | 1], s2, len([w2[0] | 1])) == "MalformedBid"
    )
    w2, s2 = market.signed_readings(t, {1: -LIMIT_WH - 1})
    assert market.market_call("recordReadings", t, w2, s2, len(w2)) == "AboveLimit"
    w2, s2 = market.signed_readings(t, {1: LIMIT_WH + 1})
    assert market.market_call("recordReadings", t, w2, s2, len(w2)) == "AboveLimit"
    w2, s2 = market.signed_readings(t, {1: -1000, 2: 600})
    assert market.market_call("recordReadings", t, w2, s2, len(w2)) == "ReadingsIncomplete"
    dup_w, dup_s = market.signed_readings(t, {1: -1000})
    assert (
        market.market_call("recordReadings", t, dup_w * 2, dup_s * 2, len(dup_w * 2))
        == "DuplicateReading"
    )
    w2, s2 = market.signed_readings(t, {1: -1000, 2: 600})
    swapped = [s2[2], s2[3], s2[0], s2[1]]
    assert (
        market.market_call("recordReadings", t, w2[::-1], swapped, len(w2[::-1])) == "NotAscending"
    )
    assert market.market_call("settle", t, [], [], [], 0) == "WrongPhase"
    assert market.market_call("recordReadings", t, words, sigs, len(words)) is None
    assert (
        market.market_call("recordReadings", t, words, sigs, len(words))
        == "ReadingsAlreadyRecorded"
    )
    parties = [(1 << 128) | 2]
    assert (
        market.market_call("settle", t, trades, words, [(2 << 128) | 1], 2 * len(words))
        == "MissingReading"
    )
    assert (
        market.market_call("settle", t, [*trades[:1], 0], words, parties, 2 * len(words))
        == "HashMismatch"
    )
    assert (
        market.market_call("settle", t, trades, words[:-1], parties, 2 * len(words) - 2)
        == "HashMismatch"
    )
    assert market.market_call("settle", t, trades, words, [], 2 * len(words)) == "LengthMismatch"
    assert market.market_call("settle", t, trades, words, parties, 2 * len(words)) is None
    assert market.market_call("settle", t, trades, words, parties, 2 * len(words)) == "WrongPhase"
    assert market.market_call("expireInterval", t, key=market.outsider_key) == "NotExpirable"
    assert ledger.view("solvent")[0] and ledger.conserved()


def test_escrow_withdraw_and_debt(market: Market) -> None:
    ledger = market.ledger
    member_key = ledger.member_key(4)
    balance = ledger.view("balanceMicro", 4)[0]
    assert balance == ledger.view("freeMicro", 4)[0]
    out = to_checksum_address(market.outsider)
    assert (
        market.market_call("withdraw", 4, balance + 1, key=member_key) == "InsufficientFreeBalance"
    )
    assert market.market_call("withdraw", 4, 1000, key=member_key) is None
    assert ledger.token_view("balanceOf", to_checksum_address(ledger.member_address(4)))[0] == (
        1000
    )
    assert ledger.conserved()
    fees = ledger.view("operatorWithdrawableMicro")[0]
    assert market.market_call("withdrawOperator", out, fees + 1) == "UnbackedWithdrawal"
    assert market.market_call("withdrawOperator", ZERO_ADDRESS, 1) == "ZeroAddress"
    grid = ledger.view("gridWithdrawableMicro")[0]
    assert market.market_call("withdrawGrid", out, grid + 1, key=market.grid_key) == (
        "UnbackedWithdrawal"
    )
    assert market.market_call("withdrawGrid", ZERO_ADDRESS, 1, key=market.grid_key) == (
        "ZeroAddress"
    )
    assert market.market_call("withdrawGrid", out, 10, key=market.grid_key) is None
    assert market.market_call("deposit", 77, 10) == "UnknownMember"
    assert market.market_call("depositMany", [1], []) == "LengthMismatch"
    assert market.market_call("depositMany", [77], [1]) == "UnknownMember"
    assert market.market_call("deposit", 4, 10**30) == "InsufficientAllowance"
    # Amounts beyond the signed ranges are refused, not wrapped.
    assert market.market_call("deposit", 4, 1 << 255) == "CastOverflow"
    assert market.market_call("deposit", 4, 1 << 130) == "CastOverflow"  # int128 balance
    assert market.market_call("depositGrid", 1 << 255) == "CastOverflow"
    assert market.market_call("withdraw", 4, 1 << 255, key=member_key) == "CastOverflow"
    outsider = market.outsider_key
    assert market.token_call("transfer", out, 10**20, key=outsider) == "InsufficientTokenBalance"
    assert market.token_call("approve", ZERO_ADDRESS, 10, key=outsider) == "ZeroAddress"
    assert ledger.conserved() and ledger.view("solvent")[0]


def test_debt_is_recorded_not_lost() -> None:
    small = make_market(n_members=3, rounds=1, limit_wh=100_000_000)
    ledger = small.ledger
    # Member 0 deposited 10**9 micro; buying 10 MWh from the grid at 0.3/kWh costs 3e9.
    ledger.record_round(0, 0, [])
    ledger.clear(0)
    ledger.record_security(0, [])
    ledger.record_readings(0, {0: -10_000_000, 1: 0, 2: 0})
    deltas = ledger.settle(0)
    ledger.end_interval(0)
    assert deltas[0] == -3_000_000_000
    balance = ledger.view("balanceMicro", 0)[0]
    assert balance == DEPOSIT - 3_000_000_000 < 0
    assert ledger.view("memberDebtMicro")[0] == -balance
    assert ledger.conserved() and ledger.view("solvent")[0]
    names = [e.name for e in ledger.events()]
    assert "DebtRecorded" in names
    key = ledger.member_key(0)
    assert small.market_call("withdraw", 0, 1, key=key) == "InsufficientFreeBalance"
    assert ledger.last_settled_interval() == 0
    # The debtor can bid nothing that locks escrow.
    small.seal(2)
    assert small.market_call("openInterval", 1) is None
    small.seal(2)
    words, sigs = small.signed_bids(1, 0, [Bid(0, Side.BUY, 10, 1000, bus_of(0))])
    assert small.market_call("recordRound", 1, 0, True, words, sigs, len(words)) is None
    small.seal()
    excluded = [e for e in ledger.events() if e.name == "BidExcluded"]
    assert [int(e.args["member"]) for e in excluded] == [0]
    assert ledger.view("lockedMicro", 0)[0] == 0


def test_reserve_short_when_the_grid_cannot_pay() -> None:
    """A GRID account without funds cannot pay feed-in: settlement reverts ReserveShort."""
    small = make_market(n_members=2, rounds=1, grid_deposit=0)
    ledger = small.ledger
    ledger.record_round(0, 0, [])
    ledger.clear(0)
    ledger.record_security(0, [])
    ledger.record_readings(0, {0: 100_000, 1: 0})
    with pytest.raises(ChainError, match="ReserveShort"):
        ledger.settle(0)
    small.deposit_grid(10**9)
    readings = ledger._interval(0).readings
    parties: list[int] = []
    assert small.market_call("settle", 0, [], readings, parties, 2 * len(readings)) is None
    assert ledger.view("solvent")[0] and ledger.conserved()


def test_constructor_checks(market: Market) -> None:
    zero = bytes(20)
    for changes, name in (
        ({"rounds": 0}, "BadConfig"),
        ({"feedInPerKwhMicro": TARIFFS.retail_per_kwh_micro + 1}, "BadConfig"),
        ({"toleranceBp": 10_001}, "BadConfig"),
        ({"calculator": zero}, "BadConfig"),
        ({"curtailmentVerifier": zero}, "BadConfig"),
        ({"roundBlocks": 0}, "BadConfig"),
        ({"settleBlocks": 0}, "BadConfig"),
        ({"feeVerifier": market.ledger.operator}, "BadConfig"),  # uniform with a fee verifier
        ({"uniformClearing": zero}, "BadConfig"),
        ({"rule": 3}, "UnsupportedClearingRule"),
        ({"operator": zero}, "ZeroAddress"),
        ({"dso": zero}, "ZeroAddress"),
        ({"grid": zero}, "ZeroAddress"),
        ({"token": zero}, "ZeroAddress"),
    ):
        error, _ = deploy_market(market, **changes)
        assert error == name, changes
    error, _ = deploy_market(market)
    assert error is None


def test_configuration_reverts(market: Market) -> None:
    ledger = market.ledger
    assert market.market_call("configureClearing", 2, 1, 2, b"\0" * 16) == (
        "UnsupportedClearingRule"
    )
    table = b"\x01" * 16
    sig = list(enc.sign_compact(market.dso_key, enc.network_digest(market.domain, 0, table)))
    forged = list(enc.sign_compact(market.grid_key, enc.network_digest(market.domain, 0, table)))
    assert market.market_call("configureNetwork", 0, table, forged) == "BadDsoSignature"
    assert market.market_call("configureNetwork", 1, table, sig) == "BadDsoSignature"  # other cfg
    big = b"\x01" * 24_576
    big_sig = list(enc.sign_compact(market.dso_key, enc.network_digest(market.domain, 0, big)))
    assert market.market_call("configureNetwork", 0, big, big_sig) == "FeeTableTooLarge"
    # A fresh market (the module's must keep no network): the data is checked when it is
    # committed (size, a tree's shape, the rule), and it is committed once, never twice.
    error, fresh = deploy_market(market)
    assert error is None
    domain = enc.domain_separator(ledger.backend.chain_id, fresh)

    def commit(cfg: int, raw: bytes) -> str | None:
        sig = list(enc.sign_compact(market.dso_key, enc.network_digest(domain, cfg, raw)))
        return market.send_raw(
            fresh, ledger.market_abi.encode_call("configureNetwork", cfg, raw, sig)
        )

    assert commit(0, table) == "NetworkDataLength"  # 16 bytes of garbage
    tree = bytearray(pack_tree(FEEDER_TREE))
    tree[16:18] = (3).to_bytes(2, "big")  # the root names a parent
    assert commit(1, bytes(tree)) == "BadNetworkTree"
    assert commit(2, pack_tree(FEEDER_TREE)) == "BadSecurityConfig"
    assert commit(1, pack_tree(FEEDER_TREE)) is None
    assert commit(1, pack_tree(FEEDER_TREE)) == "NetworkAlreadyConfigured"


def test_interval_pending_and_expiry(market: Market) -> None:
    ledger = market.ledger
    t, u = market.take_interval(), market.take_interval()
    ledger.record_round(t, 0, [_bid(1)], binding=True)
    assert ledger.view("hasPendingInterval")[0] and ledger.view("pendingInterval")[0] == t
    assert market.market_call("openInterval", u) is None
    market.seal(2)
    words, sigs = market.signed_bids(u, 0, [_bid(3)])
    assert (
        market.market_call("recordRound", u, 0, True, words, sigs, len(words)) == "IntervalPending"
    )
    # A non-binding round of another interval may be recorded meanwhile.
    assert market.market_call("recordRound", u, 0, False, words, sigs, len(words)) is None
    deadline = int(market.state(t)[7])
    assert market.market_call("expireInterval", u, key=market.outsider_key) == "NotExpirable"
    market.seal_until(deadline)
    assert market.market_call("expireInterval", t, key=market.outsider_key) == "NotExpirable"
    market.seal()
    assert market.market_call("expireInterval", t, key=market.outsider_key) is None
    assert market.phase(t) == 6  # Expired
    assert market.market_call("expireInterval", t, key=market.outsider_key) == "NotExpirable"
    assert market.market_call("clear", t, words, [0], 1) == "WrongPhase"
    market.seal(2)
    w2, s2 = market.signed_bids(u, 1, [_bid(3)])
    assert market.market_call("recordRound", u, 1, True, w2, s2, len(w2)) is None
    market.expire(u)
    assert ledger.view("lockedMicro", 3)[0] == 0


def _calculator_error(market: Market, *args: object) -> str | None:
    """The error name of a direct SettlementCalculator.compute call (None: it returns)."""
    ledger = market.ledger
    calc = artifact("SettlementCalculator")
    data = calc.encode_call("compute", *args)
    try:
        ledger.backend.call(ledger.operator, ledger._deployed().helpers.calculator, data)
    except CallReverted as error:
        return decode_error(error.data).split("(")[0]
    return None


def test_settlement_calculator_refuses_a_member_on_both_sides(market: Market) -> None:
    """Unreachable through the Market (one bid per member, so no clearing makes a member
    buyer and seller, and the Market passes spans within the readings), but the calculator
    refuses it by name all the same."""
    tariffs = (TARIFFS.retail_per_kwh_micro << 128) | (TARIFFS.feed_in_per_kwh_micro << 64)
    readings = [enc.pack_reading(m, 0) for m in (1, 2, 3)]
    whole = 3

    def error(trades: list[int], parties: list[int], span: int = whole) -> str | None:
        return _calculator_error(market, tariffs, trades, readings, parties, span)

    self_trade = enc.pack_trades([Trade(1, 1, 10, 100, 100, bus_of(1), bus_of(1))])
    assert error(self_trade, [(0 << 128) | 0]) == "BothSides"
    both = enc.pack_trades(
        [Trade(1, 2, 10, 100, 100, bus_of(1), bus_of(2)), Trade(3, 1, 10, 100, 100, 3, 1)]
    )
    assert error(both, [1, (2 << 128) | 0]) == "BothSides"
    assert error(both[:2], [1]) is None
    assert error(both[:2], [1], (1 << 128) | 3) is None
    assert error(both[:2], [1], (2 << 128) | 1) == "BadSpan"
    assert error(both[:2], [1], 4) == "BadSpan"


def test_every_market_error_is_asserted() -> None:
    """Each custom error of the Market's and its helpers' ABIs (the entry checks, the
    settlement calculator, the uniform clearing) is asserted by name in some ledger test; the fee verifier's and
    the security verifier's errors have their own suites (test_fee_clearing.py,
    test_security_verifier.py), checked here too."""
    names = {
        e["name"]
        for contract in (
            "Market",
            "EntryChecker",
            "SettlementCalculator",
            "UniformClearing",
            "SecurityVerifier",
            "FeeClearingVerifier",
        )
        for e in artifact(contract).abi
        if e["type"] == "error"
    }
    text = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    asserted = set(re.findall(r'"([A-Z][A-Za-z]+)"', text))
    missing = sorted(names - asserted - set(UNREACHABLE))
    assert not missing, f"Market errors without a test asserting them: {missing}"
    assert json.dumps(UNREACHABLE)
