"""Ledger benchmarks: gas per bid, clearing gas by book size, interval speed per backend."""

from __future__ import annotations

import random
import time
from typing import Any

from markets import random_bids

from gridledger.ledger import Ledger, LedgerMember
from gridledger.ledger.anvil import find_anvil, start_anvil
from gridledger.market.orders import Bid, Side
from gridledger.market.settlement import Tariffs

__all__ = ["run", "run_intervals"]

TARIFFS = Tariffs(300_000, 80_000)


def _members(n: int) -> list[LedgerMember]:
    return [LedgerMember(i, i % 10 + 1, 2) for i in range(n)]


def run_intervals(
    ledger: Ledger, n_members: int, rounds: int, intervals: int, seed: int = 1
) -> dict[str, Any]:
    """Run ``intervals`` full intervals on a set-up ledger; timing and gas figures."""
    rng = random.Random(seed)
    members = _members(n_members)
    started = time.perf_counter()
    for t in range(intervals):
        for k in range(rounds):
            ledger.record_round(t, k, random_bids(members, rng, (1, 3000), (80_000, 300_000)))
        ledger.clear(t)
        ledger.record_security(t, [])
        ledger.record_readings(t, {i: rng.randint(-3000, 3000) for i in range(n_members)})
        ledger.settle(t)
        ledger.end_interval(t)
    elapsed = time.perf_counter() - started
    stats = ledger.stats()
    return {
        "members": n_members,
        "rounds": rounds,
        "intervals": intervals,
        "s_per_interval": round(elapsed / intervals, 4),
        "day_estimate_s": round(96 * elapsed / intervals, 1),
        "tx_per_s": round(intervals * (rounds + 4) / elapsed, 1),
        "gas_per_bid": round(stats.gas_per_bid, 1),
        "gas_per_interval_max": stats.gas_per_interval_max,
    }


def _clearing_gas(n_bids: int) -> int:
    ledger = Ledger.connect("embedded")
    ledger.setup(_members(n_bids), TARIFFS, 1, 10**12)
    rng = random.Random(n_bids)
    bids = [
        Bid(i, Side(i % 2), rng.randint(1, 3000), rng.randint(80_000, 300_000), i % 10 + 1)
        for i in range(n_bids)
    ]
    ledger.record_round(0, 0, bids)
    before = ledger.stats().gas_by_step.get("clear", 0)
    ledger.clear(0)
    return ledger.stats().gas_by_step["clear"] - before


def run(intervals: int = 10, members: int = 32, rounds: int = 5) -> list[dict[str, Any]]:
    """Benchmark rows ``{name, value, unit, target, note}`` (anvil when installed).

    Uniform-price clearing on synthetic random books; the fee rules' clearing gas is
    in ``benchmarks/bench_fee_clearing.py`` and the full ieee33 day in
    ``benchmarks/run.py``.
    """
    rows: list[dict[str, Any]] = []
    embedded = Ledger.connect("embedded")
    embedded.setup(_members(members), TARIFFS, rounds, 10**12)
    emb = run_intervals(embedded, members, rounds, intervals)
    rows += [
        {
            "name": "ledger_gas_per_bid_synthetic",
            "value": emb["gas_per_bid"],
            "unit": "gas",
            "target": 30_000,
            "note": f"{members} members x {rounds} rounds, 21k base included",
        },
        {
            "name": "ledger_interval_embedded",
            "value": emb["s_per_interval"],
            "unit": "s",
            "target": None,
            "note": f"{emb['tx_per_s']} tx/s; day estimate {emb['day_estimate_s']} s",
        },
    ]
    for n in (32, 64, 128):
        rows.append(
            {
                "name": f"ledger_uniform_clearing_gas_{n}_bids",
                "value": _clearing_gas(n),
                "unit": "gas",
                "target": None,
                "note": "uniform rule, one transaction",
            }
        )
    if find_anvil() is None:
        rows.append(
            {
                "name": "ledger_interval_anvil",
                "value": None,
                "unit": "s",
                "target": None,
                "note": "skipped: anvil not installed (npm ci)",
            }
        )
        return rows
    with start_anvil() as node:
        ledger = Ledger.connect(node.url)
        ledger.setup(_members(members), TARIFFS, rounds, 10**12)
        anv = run_intervals(ledger, members, rounds, intervals)
    speedup = emb["s_per_interval"] / anv["s_per_interval"]
    rows.append(
        {
            "name": "ledger_interval_anvil",
            "value": anv["s_per_interval"],
            "unit": "s",
            "target": None,
            "note": f"{anv['tx_per_s']} tx/s; speed-up vs embedded {speedup:.1f}x",
        }
    )
    return rows
