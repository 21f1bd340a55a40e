"""Contract functions, revert paths and access control, checked by custom-error name."""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address
from ledgerkit import DEPOSIT, ROUNDS, Market, bus_of, make_market

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import decode_error
from gridledger.market import Bid, Side
from gridledger.market.orders import Curtailment


def _signed(
    market: Market,
    interval: int,
    round_: int,
    bids: list[Bid],
    keys: dict[int, bytes] | None = None,
):
    ledger = market.ledger
    words, sigs = [], []
    for bid in bids:
        word = enc.pack_bid(bid)
        key = (keys or {}).get(bid.member) or ledger.member_key(bid.member)
        r, vs = enc.sign_compact(key, enc.bid_digest(ledger.signer.domain, interval, round_, word))
        words.append(word)
        sigs += [r, vs]
    return words, sigs


def _readings(market: Market, interval: int, values: dict[int, int], key: bytes | None = None):
    ledger = market.ledger
    words, sigs = [], []
    for member in sorted(values):
        word = enc.pack_reading(member, values[member])
        r, vs = enc.sign_compact(
            key or ledger.signer.meter_key(member),
            enc.reading_digest(ledger.signer.domain, interval, word),
        )
        words.append(word)
        sigs += [r, vs]
    return words, sigs


def _bid(member: int, side: Side = Side.BUY, e_wh: int = 100, price: int = 100_000) -> Bid:
    return Bid(member, side, e_wh, price, bus_of(member))


def test_access_control(market: Market) -> None:
    key = market.outsider_key
    addr = to_checksum_address(market.outsider)
    assert (
        market.market_call("registerMembers", [99], [addr], [addr], [1], [0], key=key)
        == "NotOperator"
    )
    assert market.market_call("setMemberActive", 1, False, key=key) == "NotOperator"
    assert market.market_call("recordRound", 500, 0, [], [], key=key) == "NotOperator"
    assert market.market_call("clear", 500, [], [], 0, key=key) == "NotOperator"
    assert market.market_call("recordSecurity", 500, 0, [], [], key=key) == "NotOperator"
    assert market.market_call("recordReadings", 500, [], [], key=key) == "NotOperator"
    assert market.market_call("settle", 500, [], [], [], key=key) == "NotOperator"
    assert market.market_call("withdrawOperator", True, addr, 1, key=key) == "NotOperator"
    assert market.token_call("mint", addr, 1, key=key) == "NotMinter"
    assert market.market_call("withdraw", 1, 1, key=key) == "NotMemberAccount"


def test_registry(market: Market) -> None:
    ledger = market.ledger
    a = to_checksum_address(market.outsider)
    zero = "0x" + "00" * 20
    assert (
        market.market_call("registerMembers", [1], [a], [a], [1], [0]) == "MemberAlreadyRegistered"
    )
    assert market.market_call("registerMembers", [90], [a], [a], [1], []) == "LengthMismatch"
    assert market.market_call("registerMembers", [90], [zero], [a], [1], [0]) == "ZeroAddress"
    assert market.market_call("setMemberActive", 77, False) == "UnknownMember"
    record = ledger.view("member", 3)[0]
    assert record[1] == bus_of(3) and record[3] is True
    with pytest.raises(ChainError, match="UnknownMember"):
        ledger.view("member", 77)
    assert ledger.view("memberCount")[0] == 12


def test_bidding_reverts(market: Market) -> None:
    t = market.take_interval()
    good = [_bid(1), _bid(2, Side.SELL)]
    words, sigs = _signed(market, t, 0, good)
    assert market.market_call("recordRound", t, 1, words, sigs) == "WrongRound"
    assert market.market_call("recordRound", t, 0, words, sigs[:-1]) == "LengthMismatch"
    w2, s2 = _signed(market, t, 0, [_bid(2), _bid(1)])
    assert market.market_call("recordRound", t, 0, w2, s2) == "NotAscending"
    w2, s2 = _signed(market, t, 0, [_bid(1), _bid(1, Side.SELL)])
    assert market.market_call("recordRound", t, 0, w2, s2) == "NotAscending"
    bad_word = words[0] | 1
    assert market.market_call("recordRound", t, 0, [bad_word], sigs[:2]) == "MalformedBid"
    w2, s2 = _signed(market, t, 0, [Bid(40, Side.BUY, 5, 5, bus_of(40))], keys={40: b"\x01" * 32})
    assert market.market_call("recordRound", t, 0, w2, s2) == "UnknownMember"
    w2, s2 = _signed(market, t, 0, [Bid(1, Side.BUY, 5, 5, bus_of(1) + 1)])
    assert market.market_call("recordRound", t, 0, w2, s2) == "BusMismatch"
    w2, s2 = _signed(market, t, 0, [_bid(1)], keys={1: market.ledger.member_key(2)})
    assert market.market_call("recordRound", t, 0, w2, s2) == "BadSignature"
    w2, s2 = _signed(market, t + 1, 0, [_bid(1)])  # signed for another interval
    assert market.market_call("recordRound", t, 0, w2, s2) == "BadSignature"
    assert market.market_call("setMemberActive", 1, False) is None
    assert market.market_call("recordRound", t, 0, words, sigs) == "MemberSuspended"
    assert market.market_call("setMemberActive", 1, True) is None
    assert market.market_call("recordRound", t, 0, words, sigs) is None
    # Phase checks after clearing.
    bids = [enc.unpack_bid(w) for w in words]
    assert market.market_call("clear", t, words, [0], 1) == "BadOrder"
    assert market.market_call("clear", t, words, [1, 0], 1) == "BadOrder"  # sides swapped
    assert market.market_call("clear", t, words, [0, 0], 1) == "BadOrder"  # not a permutation
    assert market.market_call("clear", t, words[:1], [0], 1) == "HashMismatch"
    assert bids[0].side == Side.BUY
    assert market.market_call("clear", t, words, [0, 1], 1) is None
    w3, s3 = _signed(market, t, 1, good)
    assert market.market_call("recordRound", t, 1, w3, s3) == "WrongPhase"
    assert market.market_call("clear", t, words, [0, 1], 1) == "WrongPhase"


def test_order_must_follow_price_priority(market: Market) -> None:
    t = market.take_interval()
    bids = [
        _bid(1, price=100),
        _bid(2, price=200),
        _bid(3, Side.SELL, price=50),
        _bid(4, Side.SELL, price=60),
    ]
    words, sigs = _signed(market, t, 0, bids)
    assert market.market_call("recordRound", t, 0, words, sigs) is None
    assert market.market_call("clear", t, words, [0, 1, 2, 3], 2) == "BadOrder"  # buys ascending
    assert market.market_call("clear", t, words, [1, 0, 3, 2], 2) == "BadOrder"  # sells descending
    assert market.market_call("clear", t, words, [1, 0, 2, 3], 2) is None


def test_security_readings_settlement_reverts(market: Market) -> None:
    ledger = market.ledger
    t = market.take_interval()
    assert market.market_call("recordSecurity", t, 0, [], []) == "WrongPhase"
    for k in range(ROUNDS):
        ledger.record_round(
            t, k, [_bid(1, e_wh=1000, price=200_000), _bid(2, Side.SELL, e_wh=600, price=100_000)]
        )
    result = ledger.clear(t)
    assert len(result.trades) == 1 and result.price_per_kwh_micro == 150_000
    trades = enc.pack_trades(result.trades)
    cut_line = enc.pack_curtailment(Curtailment(0, 100, "line", 2))
    too_much = enc.pack_curtailment(Curtailment(0, 700, "line", 2))
    no_trade = enc.pack_curtailment(Curtailment(5, 1, "bus", 2))
    assert market.market_call("recordSecurity", t, 0, trades, [cut_line]) == "BadVerdict"
    assert market.market_call("recordSecurity", t, 1, trades, []) == "BadVerdict"
    assert market.market_call("recordSecurity", t, 2, trades, [cut_line]) == "BadVerdict"
    assert market.market_call("recordSecurity", t, 1, trades, [too_much]) == "BadCurtailment"
    assert market.market_call("recordSecurity", t, 1, trades, [no_trade]) == "BadCurtailment"
    assert market.market_call("recordSecurity", t, 1, [], [cut_line]) == "HashMismatch"
    assert market.market_call("recordReadings", t, [], []) == "WrongPhase"
    ledger.record_security(t, [Curtailment(0, 100, "line", 2)])
    words, sigs = _readings(market, t, {1: -1000, 2: 500})
    assert market.market_call("recordReadings", t, words, sigs[:-2]) == "LengthMismatch"
    w2, s2 = _readings(
        market, t, {1: -1000}, key=ledger.member_key(1)
    )  # member key is not the meter
    assert market.market_call("recordReadings", t, w2, s2) == "NotMemberMeter"
    w2, s2 = _readings(market, t, {55: 1}, key=ledger.member_key(1))
    assert market.market_call("recordReadings", t, w2, s2) == "UnknownMember"
    w2, s2 = _readings(market, t, {1: 0})
    assert market.market_call("recordReadings", t, [w2[0] | 1], s2) == "MalformedBid"
    assert market.market_call("settle", t, [], [], []) == "WrongPhase"
    only_buyer, sig_buyer = _readings(market, t, {1: -1000})
    assert market.market_call("recordReadings", t, only_buyer, sig_buyer) is None
    assert (
        market.market_call("recordReadings", t, words, sigs) == "ReadingsAlreadyRecorded"
    )  # once per interval
    delivered = enc.pack_trades(result.trades)
    delivered[0] = (delivered[0] & ~(((1 << 64) - 1) << 128)) | (500 << 128)
    assert market.market_call("settle", t, delivered, only_buyer, [0]) == "MissingReading"
    assert market.market_call("settle", t, trades, only_buyer, [0]) == "HashMismatch"
    assert market.market_call("settle", t, delivered, only_buyer, []) == "LengthMismatch"


def test_escrow_withdraw_and_debt(market: Market) -> None:
    ledger = market.ledger
    member_key = ledger.member_key(4)
    balance = ledger.view("balanceMicro", 4)[0]
    assert balance == DEPOSIT
    assert market.market_call("withdraw", 4, balance + 1, key=member_key) == "InsufficientBalance"
    assert market.market_call("withdraw", 4, 1000, key=member_key) is None
    assert ledger.token_view("balanceOf", to_checksum_address(ledger.member_address(4)))[0] == 1000
    assert ledger.conserved()
    fees = ledger.view("operatorBalanceMicro")[0]
    assert (
        market.market_call(
            "withdrawOperator", False, to_checksum_address(market.outsider), fees + 1
        )
        == "InsufficientBalance"
    )
    assert market.market_call("withdrawOperator", True, "0x" + "00" * 20, 1) == "ZeroAddress"
    assert (
        market.market_call("withdrawOperator", True, to_checksum_address(market.outsider), 10)
        is None
    )
    assert market.market_call("deposit", 77, 10) == "UnknownMember"
    assert market.market_call("depositMany", [1], []) == "LengthMismatch"
    assert market.market_call("deposit", 4, 10**30) == "InsufficientAllowance"
    outsider = market.outsider_key
    assert (
        market.token_call("transfer", to_checksum_address(market.outsider), 11, key=outsider)
        == "InsufficientTokenBalance"
    )
    assert market.token_call("approve", "0x" + "00" * 20, 10, key=outsider) == "ZeroAddress"
    assert ledger.conserved()


def test_debt_is_recorded_not_lost() -> None:
    small = make_market(n_members=3, rounds=1)
    ledger = small.ledger
    # Member 0 deposited 10**9 micro; buying 10 MWh from the grid at 0.3/kWh costs 3e9.
    ledger.record_round(0, 0, [])
    ledger.clear(0)
    ledger.record_security(0, [])
    ledger.record_readings(0, {0: -10_000_000, 1: 0})
    deltas = ledger.settle(0)
    ledger.end_interval(0)
    assert deltas[0] == -3_000_000_000
    balance = ledger.view("balanceMicro", 0)[0]
    assert balance == 10**9 - 3_000_000_000 < 0
    assert ledger.conserved()
    names = [e.name for e in ledger.events()]
    assert "DebtRecorded" in names
    assert small.market_call("withdraw", 0, 1, key=ledger.member_key(0)) == "InsufficientBalance"
    assert ledger.last_settled_interval() == 0


def test_constructor_checks(market: Market) -> None:
    ledger = market.ledger
    art = ledger.market_abi
    op = to_checksum_address(ledger.operator)
    token = to_checksum_address(ledger.token)
    for args, name in (
        ((op, token, 0, 10, 5, 0, 0), "BadConfig"),
        ((op, token, 1, 10, 50, 0, 0), "BadConfig"),
        ((op, token, 1, 10, 5, 0, 10_001), "BadConfig"),
        ((op, token, 1, 10, 5, 3, 0), "UnsupportedClearingRule"),
        (("0x" + "00" * 20, token, 1, 10, 5, 0, 0), "ZeroAddress"),
    ):
        raw = ledger.txq.sign(None, art.deploy_data(*args), 4_000_000)
        (res,) = ledger.backend.send([raw])
        assert not res.status
        assert decode_error(res.revert_data).startswith(name)
