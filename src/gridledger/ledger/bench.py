"""Ledger benchmarks: gas per bid, clearing gas by book size, interval speed per backend."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from gridledger.ledger.facade import Ledger, LedgerMember
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
    started = time.perf_counter()
    for t in range(intervals):
        for k in range(rounds):
            bids = [
                Bid(
                    i,
                    Side(rng.randint(0, 1)),
                    rng.randint(1, 3000),
                    rng.randint(80_000, 300_000),
                    i % 10 + 1,
                )
                for i in range(n_members)
            ]
            ledger.record_round(t, k, bids)
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


def _anvil_binary() -> Path | None:
    root = Path(__file__).resolve().parents[3]
    for candidate in sorted((root / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil")):
        return candidate
    found = shutil.which("anvil")
    return Path(found) if found else None


def run(intervals: int = 10, members: int = 32, rounds: int = 5) -> list[dict[str, Any]]:
    """Benchmark rows (embedded always; anvil when the npm binary is installed)."""
    rows: list[dict[str, Any]] = []
    embedded = Ledger.connect("embedded")
    embedded.setup(_members(members), TARIFFS, rounds, 10**12)
    rows.append(
        {
            "bench": "interval",
            "backend": "embedded",
            **run_intervals(embedded, members, rounds, intervals),
        }
    )
    for n in (32, 64, 128):
        rows.append({"bench": "clearing_gas", "bids": n, "gas": _clearing_gas(n)})
    binary = _anvil_binary()
    if binary is not None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            ledger = Ledger.connect(f"http://127.0.0.1:{port}")
            ledger.setup(_members(members), TARIFFS, rounds, 10**12)
            rows.append(
                {
                    "bench": "interval",
                    "backend": "anvil",
                    **run_intervals(ledger, members, rounds, intervals),
                }
            )
        finally:
            process.terminate()
            process.wait(timeout=10)
    return rows
