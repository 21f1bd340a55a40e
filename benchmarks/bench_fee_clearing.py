"""Gas of the on-chain fee-aware clearing checks (contracts/FeeClearing.sol).

``run()`` returns rows ``{"name", "value", "unit", "target", "note"}``: for 32, 64 and 128
bids on 33 buses (the market generator of bench_clearing.py, fees <= ~0.03 tokens/kWh),
the gas of one ``verifyGreedy`` and one ``verifyOptimal`` transaction on the embedded
py-evm chain (PragueVM: EIP-7623 calldata floor applies), split into calldata (16/4 gas per
non-zero/zero byte) and execution (total - 21,000 - calldata). Target: the ~1M gas budget of
a whole interval. ``python benchmarks/bench_fee_clearing.py`` prints them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gridledger.ledger.backends import EmbeddedBackend
from gridledger.ledger.encoding import address_of, derive_key
from gridledger.ledger.fee_clearing import FeeClearingHarness, greedy_args, optimal_args
from gridledger.market.greedy import clear_greedy
from gridledger.market.optimal import solve_optimal, surplus_wh_micro
from gridledger.market.orders import Bid, Side

SIZES = (32, 64, 128)
N_BUSES = 33
INTERVAL_BUDGET_GAS = 1_000_000
TX_BASE_GAS = 21_000

log = logging.getLogger(__name__)


def market(seed: int, n_bids: int) -> tuple[list[Bid], np.ndarray]:
    """``n_bids`` random orders on 33 buses; fees from bus positions (<= ~30,000 micro/kWh)."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 3, N_BUSES)
    fees = np.round(np.abs(pos[:, None] - pos[None, :]) * 10_000).astype(np.int64)
    bids = [
        Bid(
            i,
            Side(int(rng.integers(0, 2))),
            int(rng.integers(100, 5_000)),
            int(rng.integers(80_000, 300_000)),
            int(rng.integers(0, N_BUSES)),
        )
        for i in range(n_bids)
    ]
    return bids, fees


def _calldata_gas(data: bytes) -> int:
    return sum(16 if b else 4 for b in data)


def _rows(
    harness: FeeClearingHarness,
    rule: str,
    n_bids: int,
    function: str,
    args: tuple[Any, ...],
    trades: int,
) -> list[dict[str, Any]]:
    total = harness.transact(function, *args)
    calldata = _calldata_gas(harness.abi.encode_call(function, *args))
    execution = total - TX_BASE_GAS - calldata
    note = f"{n_bids} bids, {N_BUSES} buses, {trades} trades"
    return [
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
            "note": note + " (fee table 4,356 bytes of it)",
        },
        {
            "name": f"fee_clearing_{rule}_{n_bids}_execution_gas",
            "value": execution,
            "unit": "gas",
            "target": None,
            "note": note + " (total - 21,000 - calldata; valid while above the EIP-7623 floor)",
        },
    ]


def run() -> list[dict[str, Any]]:
    """Gas rows for greedy and optimal verification at 32, 64 and 128 bids."""
    key = derive_key(b"bench-fee-clearing", "operator")
    backend = EmbeddedBackend(funded=[address_of(key)])
    harness = FeeClearingHarness.deploy(backend, key)
    rows: list[dict[str, Any]] = []
    for seed, n_bids in enumerate(SIZES, start=1):
        bids, fees = market(seed, n_bids)
        harness.set_fee_table(fees)
        greedy = clear_greedy(bids, fees).trades
        welfare = harness.verify_greedy(bids, fees, greedy)
        if welfare != surplus_wh_micro(greedy, bids):
            message = f"verifyGreedy welfare {welfare} differs from the reference"
            raise AssertionError(message)
        rows += _rows(
            harness, "greedy", n_bids, "verifyGreedy", greedy_args(bids, fees, greedy), len(greedy)
        )
        sol = solve_optimal(bids, fees)
        args = optimal_args(bids, fees, sol.trades, sol.buyer_dual, sol.seller_dual)
        rows += _rows(harness, "optimal", n_bids, "verifyOptimal", args, len(sol.trades))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<44} {row['value']:>10} {row['unit']:<4} {row['note']}")
