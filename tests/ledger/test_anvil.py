"""Integration against a real anvil node (npm @foundry-rs/anvil) started on 127.0.0.1."""

from __future__ import annotations

import random
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from benchmarks.markets import random_bids
from tests.keykit import keystore_ring

from gridledger.errors import ChainError
from gridledger.ledger import KeyRing, Ledger, LedgerMember, store
from gridledger.ledger.anvil import find_anvil, start_anvil
from gridledger.ledger.audit import audit
from gridledger.market import Bid, Tariffs, clear_uniform, settle
from gridledger.market.greedy import clear_greedy

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    if find_anvil() is None:
        pytest.skip(
            "anvil not found: run `npm ci` (node_modules/@foundry-rs/anvil-*) to enable this test"
        )
    with start_anvil() as node:
        yield node.url


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    """Keystores of the operator, DSO, GRID and members 0..15 (seed keys are refused on a
    JSON-RPC node)."""
    return keystore_ring(tmp_path_factory.mktemp("keys") / "keys", range(16))


def test_market_on_anvil(anvil_url: str, keys: KeyRing, tmp_path: Path) -> None:
    tariffs = Tariffs(300_000, 80_000)
    members = [LedgerMember(i, i % 5 + 1, 2) for i in range(16)]
    ledger = Ledger.connect(anvil_url, state_dir=tmp_path / "chain", keys=keys)
    ledger.setup(members, tariffs, 3, 10**9)
    rng = random.Random(7)
    for t in range(3):
        for k in range(3):
            bids = random_bids(members, rng)
            ledger.record_round(t, k, bids)
        assert ledger.clear(t) == clear_uniform(bids)
        ledger.record_security(t, [])
        readings = {m.id: rng.randint(-900, 900) for m in members}
        ledger.record_readings(t, readings)
        assert ledger.settle(t) == settle(clear_uniform(bids).trades, readings, tariffs).deltas()
        ledger.end_interval(t)
    assert ledger.conserved()
    assert ledger.last_settled_interval() == 2
    assert audit(ledger).ok
    again = Ledger.connect(anvil_url, state_dir=tmp_path / "chain", keys=keys)
    assert again.last_settled_interval() == 2


def test_fee_rule_on_anvil(anvil_url: str, keys: KeyRing, tmp_path: Path) -> None:
    tariffs = Tariffs(300_000, 80_000)
    members = [LedgerMember(i, i % 5 + 1, 2) for i in range(16)]
    fees = (np.random.default_rng(3).integers(0, 5, (6, 6)) * 4_000).astype(np.int64)
    kappa = Fraction(2, 5)
    ledger = Ledger.connect(anvil_url, state_dir=tmp_path / "chain", keys=keys)
    ledger.setup(members, tariffs, 2, 10**9, clearing="greedy", fees=fees, kappa=kappa)
    rng = random.Random(11)
    for t in range(2):
        for k in range(2):
            bids = random_bids(members, rng)
            ledger.record_round(t, k, bids)
        reference = clear_greedy(bids, fees, kappa)
        assert ledger.clear(t) == reference
        ledger.record_security(t, [])
        readings = {m.id: rng.randint(-900, 900) for m in members}
        ledger.record_readings(t, readings)
        assert ledger.settle(t) == settle(reference.trades, readings, tariffs).deltas()
        ledger.end_interval(t)
    assert ledger.conserved()
    again = Ledger.connect(anvil_url, state_dir=tmp_path / "chain", read_only=True)
    assert again.deployment is not None
    config = again.deployment.clearing
    assert config.rule == "greedy" and np.array_equal(config.fees, fees)
    report = audit(again)
    assert report.ok, report.problems
    assert report.intervals_settled == 2


def test_resume_mid_interval_on_anvil(anvil_url: str, keys: KeyRing, tmp_path: Path) -> None:
    """Killed after the clear flush (rounds and clear mined, no settlement): the resumed
    run skips the steps already on chain, after checking their hashes, and finishes."""
    tariffs = Tariffs(300_000, 80_000)
    members = [LedgerMember(i, i % 5 + 1, 2) for i in range(10)]
    rng = random.Random(5)
    books = [[random_bids(members, rng) for _ in range(2)] for _ in range(2)]
    readings = [{m.id: rng.randint(-900, 900) for m in members} for _ in range(2)]

    def interval(ledger: Ledger, t: int, finish: bool = True) -> dict[int, int] | None:
        for k, bids in enumerate(books[t]):
            ledger.record_round(t, k, bids)
        assert ledger.clear(t) == clear_uniform(books[t][-1])
        if not finish:
            return None
        ledger.record_security(t, [])
        ledger.record_readings(t, readings[t])
        deltas = ledger.settle(t)
        ledger.end_interval(t)
        return deltas

    state = tmp_path / "chain"
    first = Ledger.connect(anvil_url, state_dir=state, keys=keys)
    first.setup(members, tariffs, 2, 10**9)
    interval(first, 0)
    logged = first.stats().as_dict()  # the counters of the last log record
    interval(first, 1, finish=False)  # killed here: rounds and clear are mined
    del first

    diverged = Ledger.connect(anvil_url, state_dir=state, keys=keys)
    other = [Bid(b.member, b.side, b.e_wh + 1, b.price_per_kwh_micro, b.bus) for b in books[1][1]]
    diverged.record_round(1, 0, books[1][0])
    with pytest.raises(ChainError, match="diverged"):
        diverged.record_round(1, 1, other)
    del diverged

    resumed = Ledger.connect(anvil_url, state_dir=state, keys=keys)
    # restored from the log, not from zero, plus the opening, the two rounds and the clear
    # that the killed process sent (found on the node, adopted from chain/sent.jsonl)
    adopted = resumed.stats()
    assert adopted.tx_count == logged["tx_count"] + 4
    assert adopted.bids_recorded == logged["bids_recorded"] + sum(len(b) for b in books[1])
    assert resumed.last_settled_interval() == 0
    expected = settle(clear_uniform(books[1][-1]).trades, readings[1], tariffs).deltas()
    assert interval(resumed, 1) == expected
    assert resumed.last_settled_interval() == 1
    assert resumed.conserved()
    assert resumed.stats().tx_count == logged["tx_count"] + 7  # as if never interrupted
    assert len(store.TxLog.open(state).records[-1].txs) == 7
    report = audit(Ledger.connect(anvil_url, state_dir=state, read_only=True))
    assert report.ok, report.problems
    assert report.intervals_settled == 2
