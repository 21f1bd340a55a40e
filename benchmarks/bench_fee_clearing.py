"""Gas of on-chain fee-aware clearing (Market.clearGreedy / clearOptimal, contracts/FeeClearing.sol).

``run()`` returns rows ``{"name", "value", "unit", "target", "note"}``: for 32, 64 and 128
bids on 33 buses (one member per bid, random sides / quantities / prices, fees from random
bus positions, <= ~30,000 micro-tokens/kWh), the gas of one clearing transaction through the
``Ledger`` facade on the embedded py-evm chain: ``Market.clearGreedy`` / ``clearOptimal``
(phase and bid-hash checks, the FeeClearingVerifier call with the fee table read from its
data contract, trades hash stored, ``IntervalCleared`` emitted), split into calldata
(16/4 gas per non-zero/zero byte) and the rest (total - 21,000 - calldata). Target: the
~1M gas budget of a whole interval. ``python benchmarks/bench_fee_clearing.py`` prints them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from markets import random_fee_market

from gridledger.ledger import EmbeddedBackend, Ledger, LedgerMember
from gridledger.ledger import encoding as enc
from gridledger.market import Tariffs
from gridledger.market.orders import Bid

SIZES = (32, 64, 128)
RULES = ("greedy", "optimal")
N_BUSES = 33
INTERVAL_BUDGET_GAS = 1_000_000
TX_BASE_GAS = 21_000
SEED = b"bench-fee-clearing"

log = logging.getLogger(__name__)


def _calldata_gas(data: bytes) -> int:
    return sum(16 if b else 4 for b in data)


def clearing_gas(rule: str, bids: list[Bid], fees: np.ndarray) -> tuple[int, int, int]:
    """Deploy a market with ``rule`` and one member per bid, record one round, clear it.

    Returns (clear transaction gas, its calldata gas, number of trades).
    """
    members = [LedgerMember(b.member, b.bus, 2) for b in bids]
    operator = enc.address_of(enc.derive_key(SEED, "operator"))
    ledger = Ledger(EmbeddedBackend(funded=[operator]), "embedded", None, seed=SEED)
    ledger.setup(members, Tariffs(300_000, 80_000), 1, 10**9, clearing=rule, fees=fees)
    ledger.record_round(0, 0, bids)
    ledger.txq.flush()
    before = ledger.stats().gas_by_step.get("clear", 0)
    txlog_start = len(ledger.txq.txlog)
    result = ledger.clear(0)
    raw = ledger.txq.txlog[txlog_start][0]
    gas = ledger.stats().gas_by_step["clear"] - before
    data = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["data"]
    return gas, _calldata_gas(bytes(data)), len(result.trades)


def run() -> list[dict[str, Any]]:
    """Gas rows for Market.clearGreedy and Market.clearOptimal at 32, 64 and 128 bids."""
    rows: list[dict[str, Any]] = []
    for seed, n_bids in enumerate(SIZES, start=1):
        bids, fees = random_fee_market(seed, n_bids, N_BUSES)
        for rule in RULES:
            total, calldata, trades = clearing_gas(rule, bids, fees)
            note = f"{n_bids} bids, {N_BUSES} buses, {trades} trades"
            rows += [
                {
                    "name": f"fee_clearing_{rule}_{n_bids}_tx_gas",
                    "value": total,
                    "unit": "gas",
                    "target": INTERVAL_BUDGET_GAS,
                    "note": note,
                },
                {
                    "name": f"fee_clearing_{rule}_{n_bids}_calldata_gas",
                    "value": calldata,
                    "unit": "gas",
                    "target": None,
                    "note": note,
                },
                {
                    "name": f"fee_clearing_{rule}_{n_bids}_execution_gas",
                    "value": total - TX_BASE_GAS - calldata,
                    "unit": "gas",
                    "target": None,
                    "note": note + " (total - 21,000 - calldata)",
                },
            ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<44} {row['value']:>10} {row['unit']:<4} {row['note']}")
