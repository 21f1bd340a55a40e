"""Saved embedded chain: resume after a kill, nothing lost or duplicated; audit from disk."""

from __future__ import annotations

import random
from pathlib import Path

from benchmarks.markets import random_bids

from gridledger.ledger import Ledger, LedgerMember
from gridledger.ledger.audit import audit
from gridledger.market import Tariffs

TARIFFS = Tariffs(300_000, 80_000)
MEMBERS = [LedgerMember(i, i % 4 + 1, 0) for i in range(6)]


def _interval(ledger: Ledger, t: int, finish: bool = True) -> None:
    rng = random.Random(t)
    for k in range(2):
        bids = random_bids(MEMBERS, rng)
        ledger.record_round(t, k, bids)
    ledger.clear(t)
    if not finish:
        return
    ledger.record_security(t, [])
    ledger.record_readings(t, {m.id: rng.randint(-900, 900) for m in MEMBERS})
    ledger.settle(t)
    ledger.end_interval(t)


def test_resume_after_kill_and_audit(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    first = Ledger.connect("embedded", state_dir=state)
    first.setup(MEMBERS, TARIFFS, 2, 10**9)
    for t in range(3):
        _interval(first, t)
    _interval(first, 3, finish=False)  # killed mid-interval: never persisted
    del first

    resumed = Ledger.connect("embedded", state_dir=state)
    assert resumed.is_set_up()
    assert resumed.last_settled_interval() == 2
    # The unfinished interval 3 is gone with the killed process; redo it from the start.
    _interval(resumed, 3)
    assert resumed.last_settled_interval() == 3
    assert resumed.conserved()
    after = resumed.balances()

    reader = Ledger.connect("embedded", state_dir=state, read_only=True)
    assert reader.last_settled_interval() == 3
    assert reader.balances() == after
    report = audit(reader)
    assert report.ok, report.problems
    assert report.intervals_settled == 4
