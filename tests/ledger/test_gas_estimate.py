"""Gas from eth_estimateGas, blocks packed by gas, paged setup, the capacity check.

Every operator transaction gets its ``eth_estimateGas`` plus the stated margin
(``txqueue.gas_limit``), never a formula; a call that would revert is refused by name
before it is sent; a transaction that does not fit the rest of a block starts the next
one; a market too large for its chain is refused before anything is deployed.
"""

from __future__ import annotations

import random

import pytest
from benchmarks.markets import random_bids
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from ledgerkit import TARIFFS, bus_of, deliver_and_settle, make_market, tx_gas_by_block

from gridledger.errors import ChainError
from gridledger.ledger import Ledger, LedgerMember
from gridledger.ledger.backends import EmbeddedBackend, calldata_floor_gas
from gridledger.ledger.capacity import (
    STEP_GAS,
    ChainCapacityExceeded,
    check_capacity,
    max_members,
    predicted_gas,
)
from gridledger.ledger.deploy import SETUP_PAGE_MEMBERS, ChainTiming
from gridledger.ledger.keys import KeyRing
from gridledger.ledger.txqueue import StepTooLarge, gas_limit


def _tx(raw: bytes) -> dict[str, object]:
    return dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())


def test_every_limit_is_the_estimate_with_its_margin() -> None:
    """A whole interval: each transaction's limit covers its gas, calldata floor included
    (EIP-7623: a big security batch is charged by its calldata, not its execution), and
    stays within the margin of what it used."""
    market = make_market(12)
    ledger = market.ledger
    interval = market.take_interval()
    members = [LedgerMember(i, bus_of(i), 2) for i in range(12)]
    ledger.record_round(interval, 0, random_bids(members, random.Random(3), (1, 3_000)))
    ledger.record_round(
        interval, 1, random_bids(members, random.Random(4), (1, 3_000)), binding=True
    )
    trades = ledger.clear(interval).trades
    deliver_and_settle(ledger, interval, trades, [random.Random(5).randint(-3_000, 3_000)] * 12)
    blocks = tx_gas_by_block(ledger.backend)  # type: ignore[arg-type]
    assert sum(len(b) for b in blocks) == ledger.stats().tx_count
    for block in blocks:
        for limit, used in block:
            assert used <= limit <= gas_limit(max(used, 21_000) * 6 // 5) + 30_000


def test_calldata_floor_counts() -> None:
    """The floor: 21,000 + 10 per token (zero byte 1 token, other bytes 4)."""
    assert calldata_floor_gas(b"") == 21_000
    assert calldata_floor_gas(b"\x00\x01") == 21_000 + 10 * (1 + 4)
    backend = EmbeddedBackend(funded=[b"\x11" * 20])
    data = b"\x01" * 40_000  # a call to an account without code: execution is the intrinsic
    assert backend.estimate_gas(b"\x11" * 20, b"\x22" * 20, data) == calldata_floor_gas(data)


def test_a_call_that_would_revert_is_not_sent() -> None:
    market = make_market(4)
    ledger = market.ledger
    sent = ledger.stats().tx_count
    with pytest.raises(ChainError, match=r"settle 7: the transaction would revert: WrongPhase"):
        ledger._submit("settle 7", 7, [], [], [], 0)
    assert ledger.stats().tx_count == sent
    assert ledger.txq.nonce == ledger.backend.nonce(ledger.operator)


def test_a_step_larger_than_a_block_is_named() -> None:
    market = make_market(4)
    txq = market.ledger.txq
    market_address = market.ledger.market
    assert market_address is not None
    market.ledger.backend.tx_gas_cap = 10**9  # no per-transaction cap: the block binds
    data = market.ledger.market_abi.encode_call("openInterval", 5) + b"\x01" * 800_000
    with pytest.raises(StepTooLarge, match=r"more than a block's gas limit of 30,000,000"):
        txq.submit("openInterval 5", market_address, data, 5)


@pytest.mark.slow  # fast lane budget: 300 members set up (about 6 s)
def test_setup_is_paged_and_packed_into_blocks() -> None:
    """300 members on a chain of 12M-gas blocks: registration and deposits in pages of
    128 members, no block over its gas limit, and the market works."""
    n = 300
    members = [LedgerMember(i, 1 + i % 8, 2, 5_000) for i in range(n)]
    ring = KeyRing.from_seed(b"paged setup", member_ids=range(n))
    backend = EmbeddedBackend(funded=ring.addresses(), block_gas_limit=12_000_000)
    ledger = Ledger(backend, "embedded", None, keys=ring)
    ledger.setup(members, TARIFFS, 1, 10**9)
    blocks = tx_gas_by_block(backend)
    assert len(blocks) >= 3
    assert all(sum(limit for limit, _ in block) <= 12_000_000 for block in blocks)
    pages = -(-n // SETUP_PAGE_MEMBERS)
    assert ledger.stats().tx_count == 6 + 2 * pages + 3  # deploys, pages, mint/approve/grid
    assert ledger.view("activeMemberCount")[0] == n
    ledger.record_round(0, 0, random_bids(members, random.Random(1), (1, 3_000)), binding=True)
    ledger.clear(0)


def test_capacity_is_checked_before_anything_is_deployed() -> None:
    ring = KeyRing.from_seed(b"capacity", member_ids=range(3))
    backend = EmbeddedBackend(funded=ring.addresses(), block_gas_limit=3_000_000)
    ledger = Ledger(backend, "embedded", None, keys=ring)
    members = [LedgerMember(i, 1, 2) for i in range(1_000)]
    with pytest.raises(ChainCapacityExceeded, match=r"1,000 members: one transaction to "):
        ledger.setup(members, TARIFFS, 1, 10**9)
    assert backend.block_number() == 0 and ledger.deployment is None


def test_capacity_model() -> None:
    for step in STEP_GAS:
        fits = max_members(step, 30_000_000)
        assert predicted_gas(step, fits) <= 30_000_000 < predicted_gas(step, fits + 1)
    check_capacity(1_026, "greedy", 30_000_000)  # the 1,000-member run fits
    with pytest.raises(ChainCapacityExceeded, match=r"at most [\d,]+ members fit") as caught:
        check_capacity(7_000, "greedy", 30_000_000)
    assert caught.value.exit_code == 2
    with pytest.raises(ChainCapacityExceeded, match=r"more than settle_blocks = 3"):
        check_capacity(1_500, "greedy", 30_000_000, ChainTiming(settle_blocks=3, reading_blocks=1))


class _ProbingBackend(EmbeddedBackend):
    """An embedded chain that answers probes like a JSON-RPC node: the probe succeeds when
    the call's gas fits it; counts the confirmations asked for."""

    def __init__(self, funded: list[bytes]) -> None:
        super().__init__(funded=funded)
        self.confirms: list[int] = []
        self.probes: list[tuple[int, bool]] = []

    def estimate_probed(
        self, sender: bytes, to: bytes | None, data: bytes, probe: int
    ) -> tuple[int, bool]:
        estimate = self.estimate_gas(sender, to, data)
        self.probes.append((probe, estimate <= probe))
        return estimate, estimate <= probe

    def confirm_limit(self, sender: bytes, to: bytes | None, data: bytes, limit: int) -> bool:
        self.confirms.append(limit)
        return True


def test_a_probe_that_succeeds_confirms_the_limit() -> None:
    """The first estimate of a step is confirmed at its limit; the next ones are measured
    with a probe of gas, and when it succeeds at or below the limit no confirmation is
    asked; the limits are the estimates with their margin either way."""
    ring = KeyRing.from_seed(b"probes", member_ids=range(2))
    backend = _ProbingBackend(ring.addresses())
    ledger = Ledger(backend, "embedded", None, keys=ring)
    txq = ledger.txq
    target = b"\x22" * 20
    for size in (100, 100, 101):
        data = b"\x01" * size
        txq.submit(f"probe {size}", target, data, None)
        estimate = calldata_floor_gas(data)
        raw = txq.take_txlog()[0][-1][0]
        assert _tx(raw)["gas"] == gas_limit(estimate)
    assert backend.confirms == [gas_limit(calldata_floor_gas(b"\x01" * 100))]
    assert [ok for _, ok in backend.probes] == [True, True]
    assert all(probe <= gas_limit(calldata_floor_gas(b"\x01" * 101)) for probe, _ in backend.probes)
