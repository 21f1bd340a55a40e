"""Settlement gas on the embedded chain: gas per member per interval (target <= 50,000).

Each interval: 32 members bid (random sides, energies and prices), the book is
cleared on chain, and every member's meter reports its scheduled net plus a
forecast error (normal, 20 % of the scheduled energy, plus non-traders' own net),
so every branch of the deviation rules is exercised. Gas of the ``settle``
transaction (21,000 base included) and of ``recordReadings`` divided by members.

    python benchmarks/bench_settlement.py
"""

from __future__ import annotations

import json
import random
from typing import Any

from markets import random_bids

from gridledger.ledger import Ledger, LedgerMember
from gridledger.market.settlement import Tariffs

__all__ = ["measure", "run"]

TARGET_GAS_PER_MEMBER = 50_000


def measure(
    n_members: int = 32, intervals: int = 4, tolerance_bp: int = 500, seed: int = 3
) -> dict[str, Any]:
    """Run ``intervals`` intervals and return the settlement gas figures."""
    rng = random.Random(seed)
    members = [LedgerMember(i, i % 10 + 1, 2) for i in range(n_members)]
    ledger = Ledger.connect("embedded")
    ledger.setup(members, Tariffs(300_000, 80_000, tolerance_bp), 1, 10**12)
    settle_gas = readings_gas = trades = 0
    for t in range(intervals):
        bids = random_bids(members, rng, (100, 3000), (80_000, 300_000))
        ledger.record_round(t, 0, bids)
        cleared = ledger.clear(t)
        trades += len(cleared.trades)
        ledger.record_security(t, [])
        scheduled = {m.id: 0 for m in members}
        for tr in cleared.trades:
            scheduled[tr.buyer] -= tr.e_wh
            scheduled[tr.seller] += tr.e_wh
        readings = {
            m: (s + round(rng.gauss(0, 0.2) * abs(s)) if s else rng.randint(-2000, 2000))
            for m, s in scheduled.items()
        }
        steps = ledger.stats().gas_by_step
        before_r, before_s = steps.get("recordReadings", 0), steps.get("settle", 0)
        ledger.record_readings(t, readings)
        ledger.settle(t)
        steps = ledger.stats().gas_by_step
        readings_gas += steps["recordReadings"] - before_r
        settle_gas += steps["settle"] - before_s
        ledger.end_interval(t)
    per = intervals * n_members
    return {
        "members": n_members,
        "intervals": intervals,
        "trades_per_interval": trades / intervals,
        "settle_gas_per_member": settle_gas / per,
        "readings_gas_per_member": readings_gas / per,
        "conserved": ledger.conserved(),
    }


def run() -> list[dict[str, Any]]:
    """Benchmark rows {name, value, unit, target}."""
    m = measure()
    note = (
        f"{m['members']} members, {m['trades_per_interval']:.1f} trades/interval, "
        f"{m['intervals']} intervals, tolerance 5 %, settle tx incl. 21k base"
    )
    return [
        {
            "name": "settlement_gas_per_member",
            "value": round(m["settle_gas_per_member"]),
            "unit": "gas",
            "target": TARGET_GAS_PER_MEMBER,
            "note": note,
        },
        {
            "name": "readings_plus_settlement_gas_per_member",
            "value": round(m["settle_gas_per_member"] + m["readings_gas_per_member"]),
            "unit": "gas",
            "target": TARGET_GAS_PER_MEMBER,
            "note": "signed meter readings batch + settle, per member per interval",
        },
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
