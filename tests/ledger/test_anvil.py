"""Integration against a real anvil node (npm @foundry-rs/anvil) started on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridledger.ledger import Ledger, LedgerMember
from gridledger.ledger.anvil import find_anvil, start_anvil
from gridledger.ledger.audit import audit
from gridledger.market import Bid, Side, Tariffs, clear_uniform, settle

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


def test_market_on_anvil(anvil_url: str, tmp_path: Path) -> None:
    import random

    tariffs = Tariffs(300_000, 80_000)
    members = [LedgerMember(i, i % 5 + 1, 2) for i in range(16)]
    ledger = Ledger.connect(anvil_url, state_dir=tmp_path / "chain")
    ledger.setup(members, tariffs, 3, 10**9)
    rng = random.Random(7)
    for t in range(3):
        for k in range(3):
            bids = [
                Bid(
                    m.id,
                    Side(rng.randint(0, 1)),
                    rng.randint(1, 900),
                    rng.randint(60_000, 300_000),
                    m.bus,
                )
                for m in members
            ]
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
    again = Ledger.connect(anvil_url, state_dir=tmp_path / "chain")
    assert again.last_settled_interval() == 2
