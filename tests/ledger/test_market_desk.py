"""The Market and its desk (contracts/MarketDesk.sol): one address, one storage.

The Market's constructor deploys the desk with its own parameters and forwards every call it
does not implement to it by DELEGATECALL. The desk's functions refuse to run at the desk's
own address (NotDelegated); a selector neither implements reverts without data and changes
nothing; what the desk does through the Market is the Market's (its storage, its events:
test_fee_rules_chain.py).
"""

from __future__ import annotations

from eth_utils import keccak
from ledgerkit import ZERO_SIG, Market

from gridledger.explorer.node import desk_matches
from gridledger.ledger.contracts import decode_error


def _desk(market: Market) -> bytes:
    (address,) = market.ledger.view("desk")
    return bytes.fromhex(address[2:])


def test_desk_functions_refuse_direct_calls(market: Market) -> None:
    desk = _desk(market)
    abi = market.ledger.market_abi
    ev = ([], [], [], [ZERO_SIG, ZERO_SIG])
    calls = [
        ("configureClearing", 2, 1, 2, b"\0" * 16),
        ("configureNetwork", 0, b"", [ZERO_SIG, ZERO_SIG]),
        ("clearOptimal", 500, [], [], [], [], 1),
        ("recordSecurity", 500, 0, [], ev, 1),
        ("expireInterval", 500),
    ]
    for function, *args in calls:
        assert market.send_raw(desk, abi.encode_call(function, *args)) == "NotDelegated", function


def test_desk_shares_the_markets_parameters(market: Market) -> None:
    """The desk's immutables (read at the desk's own address) are the Market's."""
    ledger = market.ledger
    desk = _desk(market)
    abi = ledger.market_abi
    for name in ("operator", "dso", "grid", "token", "calculator", "rounds", "settleBlocks"):
        data = abi.encode_call(name)
        at_desk = abi.decode_output(name, ledger.backend.call(ledger.operator, desk, data))
        assert at_desk == ledger.view(name), name
    assert desk != ledger.market


def test_unknown_selector_reverts_without_data(market: Market) -> None:
    ledger = market.ledger
    before = ledger.view("heldMicro")
    data = keccak(b"noSuchFunction(uint256)")[:4] + bytes(32)
    error = market.send_raw(ledger.market, data)
    assert error == decode_error(b"").split("(")[0]
    assert ledger.view("heldMicro") == before


def test_the_explorers_desk_check_on_a_deployment(market: Market) -> None:
    """The explorer's check (explorer/node.py): the Market's desk runs the shipped desk code
    with the Market's parameters. Asked of the desk's own address, which has no desk() (the
    call reverts), the check fails rather than raising."""
    ledger = market.ledger
    backend = ledger.backend
    assert ledger.market is not None

    def call(to: bytes, data: bytes) -> bytes:
        return backend.call(ledger.operator, to, data)

    assert desk_matches(ledger.market, backend.code, call)
    assert not desk_matches(_desk(market), backend.code, call)
