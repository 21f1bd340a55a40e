"""EIP-7825: no transaction carries more gas than ``chain.tx_gas_cap`` (2**24 by default).

Since Ethereum's Osaka upgrade a node refuses a transaction whose gas limit is above
16,777,216, whatever the block's limit. The ledger caps every gas limit at the smaller of
the two, pages the rounds, readings and settlement under it, and the capacity check
refuses before deployment a market whose one-transaction steps would need more.
"""

from __future__ import annotations

import json
import random
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from benchmarks.markets import random_bids
from ledgerkit import TARIFFS, band_bus, make_market, market_keys, tx_gas_by_block
from tests.keykit import keystore_ring

from gridledger.ledger import EmbeddedBackend, Ledger, LedgerMember
from gridledger.ledger.anvil import find_anvil, start_anvil
from gridledger.ledger.backends import RpcBackend
from gridledger.ledger.capacity import STEP_GAS, ChainCapacityExceeded, check_capacity, max_members
from gridledger.ledger.chainapi import TX_GAS_CAP, CallReverted, OutOfBlockGas
from gridledger.ledger.txqueue import StepTooLarge
from gridledger.market import clear_uniform, settle


def test_the_default_cap_is_eip_7825s() -> None:
    assert TX_GAS_CAP == 16_777_216
    backend = EmbeddedBackend(funded=[])
    assert backend.tx_gas_cap == TX_GAS_CAP and backend.max_tx_gas() == TX_GAS_CAP
    backend.tx_gas_cap = 10**9
    assert backend.max_tx_gas() == backend.block_gas_limit


def test_capacity_names_the_cap_and_the_members_that_fit() -> None:
    # the settlement's calculation is paged: its page of one entry fits more members than
    # any other step, so each rule is bound by its own largest step
    binding = {
        "greedy": "clear/greedy/page",
        "optimal": "clear/optimal/page",
        "uniform": "recordRound/page",
    }
    check_capacity(1_026, "greedy", 30_000_000, tx_gas=TX_GAS_CAP)  # the run fits
    for rule, step in binding.items():
        fits = max_members(step, TX_GAS_CAP)
        assert 1_500 < fits < max_members("settle/page", TX_GAS_CAP)
        assert fits < max_members(step, 30_000_000)
        check_capacity(fits, rule, 30_000_000, tx_gas=TX_GAS_CAP)
        with pytest.raises(ChainCapacityExceeded) as caught:
            check_capacity(fits + 1, rule, 30_000_000, tx_gas=TX_GAS_CAP)
        message = str(caught.value)
        assert f"{STEP_GAS[step].name} would need" in message
        assert "more than one transaction may carry (16,777,216, chain.tx_gas_cap)" in message
        assert f"at most {fits:,} members fit" in message
        check_capacity(fits + 1, rule, 30_000_000)  # without the cap it fits the block


def test_a_call_above_the_cap_is_refused_before_it_is_sent() -> None:
    market = make_market(4)
    ledger = market.ledger
    assert ledger.market is not None
    sent = ledger.stats().tx_count
    data = ledger.market_abi.encode_call("openInterval", 5) + b"\x01" * 500_000  # ~20M gas
    with pytest.raises(StepTooLarge, match=r"more than one transaction may carry \(16,777,216"):
        ledger.txq.submit("openInterval 5", ledger.market, data, 5)
    assert ledger.stats().tx_count == sent


@pytest.mark.slow
def test_steps_above_a_small_cap_are_paged_and_book_the_reference() -> None:
    """200 members, every one bidding and reading, with the cap lowered to 2M gas after
    setup: the round, the readings and the settlement each need more and are paged from
    the node's estimates; no transaction's gas limit exceeds the cap and the money is the
    reference's."""
    n, cap = 200, 2_000_000
    ring = market_keys(b"tx-gas-cap", range(n))
    backend = EmbeddedBackend(funded=ring.addresses())
    ledger = Ledger(backend, "embedded", None, keys=ring)
    members = [LedgerMember(i, band_bus(i), 2) for i in range(n)]
    ledger.setup(members, TARIFFS, 1, 10**9)
    setup_blocks = len(tx_gas_by_block(backend))
    backend.tx_gas_cap = cap
    bids = random_bids(members, random.Random(7), (1, 3_000), (80_000, 300_000))
    ledger.record_round(0, 0, bids, binding=True)
    ledger.clear(0)
    ledger.record_security(0, [])
    readings = {m: random.Random(m).randint(-3_000, 3_000) for m in range(n)}
    ledger.record_readings(0, readings)
    trades = clear_uniform(bids).trades
    assert ledger.settle(0) == settle(trades, readings, TARIFFS).deltas()
    ledger.end_interval(0)
    names = [e.name for e in ledger.events()]
    for paged in ("RoundPaged", "ReadingsPaged", "SettlementPaged"):
        assert paged in names
    limits = [limit for block in tx_gas_by_block(backend)[setup_blocks:] for limit, _ in block]
    assert limits and max(limits) <= cap
    assert ledger.conserved() and ledger.view("solvent")[0]


def _rpc(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        out: dict[str, Any] = json.loads(response.read())
    return out


@pytest.mark.anvil
@pytest.mark.skipif(find_anvil() is None, reason="anvil not found: run `npm ci`")
def test_a_node_enforcing_eip_7825_refuses_more_and_the_ledger_stays_under(
    tmp_path: Path,
) -> None:
    """anvil with ``--enable-tx-gas-limit`` and 60M blocks refuses a transaction of
    2**24 + 1 gas; a market set up and run for two intervals there never asks for more
    (the node would refuse it) and books the reference."""
    keys = keystore_ring(tmp_path / "keys", range(8))
    members = [LedgerMember(i, i % 5 + 1, 2) for i in range(8)]
    with start_anvil(block_gas_limit=60_000_000, tx_gas_limit=True) as node:
        sender = _rpc(node.url, "eth_accounts", [])["result"][0]
        over = {"from": sender, "to": sender, "value": "0x1", "gas": hex(TX_GAS_CAP + 1)}
        refused = _rpc(node.url, "eth_sendTransaction", [over])
        assert "error" in refused, refused
        ledger = Ledger.connect(node.url, state_dir=tmp_path / "chain", keys=keys)
        assert ledger.backend.block_gas_limit == 60_000_000
        assert ledger.backend.max_tx_gas() == TX_GAS_CAP
        ledger.setup(members, TARIFFS, 1, 10**9)
        rng = random.Random(3)
        for t in range(2):
            bids = random_bids(members, rng)
            ledger.record_round(t, 0, bids, binding=True)
            ledger.clear(t)
            ledger.record_security(t, [])
            readings = {m.id: rng.randint(-900, 900) for m in members}
            ledger.record_readings(t, readings)
            expected = settle(clear_uniform(bids).trades, readings, TARIFFS).deltas()
            assert ledger.settle(t) == expected
            ledger.end_interval(t)
        assert ledger.conserved()


#: Deployment code that creates a child whose code loops forever (the child runs out of gas,
#: the parent keeps 1/64 of its gas and reverts without data), and code that just reverts.
NESTED_OUT_OF_GAS = bytes.fromhex("635b6000566000526004601c6000f0600060006000fd")
PLAIN_REVERT = bytes.fromhex("60006000fd")


def test_running_out_in_a_nested_call_is_out_of_gas_not_a_revert() -> None:
    """A call that runs out of gas in a nested frame reverts without data at the top: the
    embedded backend reads it as running out (the step is then paged), a plain revert
    without data stays a revert."""
    backend = EmbeddedBackend(funded=[b"\x11" * 20])
    with pytest.raises(OutOfBlockGas):
        backend.estimate_gas(b"\x11" * 20, None, NESTED_OUT_OF_GAS)
    with pytest.raises(CallReverted):
        backend.estimate_gas(b"\x11" * 20, None, PLAIN_REVERT)


@pytest.mark.anvil
@pytest.mark.skipif(find_anvil() is None, reason="anvil not found: run `npm ci`")
def test_a_node_s_nested_out_of_gas_is_read_from_its_trace() -> None:
    """anvil answers eth_estimateGas of the nested case with "execution reverted" and no
    data; the ledger traces the call (debug_traceCall) and reads that it ran out."""
    with start_anvil(tx_gas_limit=True) as node:
        backend = RpcBackend(node.url)
        sender = bytes.fromhex(_rpc(node.url, "eth_accounts", [])["result"][0][2:])
        with pytest.raises(OutOfBlockGas):
            backend.estimate_gas(sender, None, NESTED_OUT_OF_GAS)
        with pytest.raises(CallReverted):
            backend.estimate_gas(sender, None, PLAIN_REVERT)
