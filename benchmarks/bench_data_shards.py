"""Gas of committed data over one data contract: fee tables read from shards.

A fee table is 4 B^2 bytes; one data contract holds 24,575 (78 buses). A larger table is
deployed in shards that a directory lists (docs/ledger.md); every clearing reads it whole.
Rows: the gas of ``FeeClearingVerifier.verifyGreedy`` (``eth_estimateGas`` on the embedded
chain) for the same 200 bids on buses 0..77, with fee tables of 78 buses (one contract, the
baseline), 150, 300 and 600 buses (shards; the same fees among buses 0..77, so the same
trades), as a ratio to the baseline; and the gas of
deploying the shards once at setup. Gas, not time: the figures do not depend on the machine.

    python benchmarks/bench_data_shards.py
    python benchmarks/run.py --only data_shards
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import numpy as np
from datachain import DataChain

from gridledger.ledger.encoding import pack_bid, pack_trades
from gridledger.ledger.fee_clearing import greedy_order, pack_fee_table
from gridledger.market import Bid, Side
from gridledger.market.greedy import clear_greedy

__all__ = ["run"]

SIZES = (78, 150, 300, 600)
KAPPA = Fraction(1, 2)


def _bids() -> list[Bid]:
    rng = random.Random(3)
    return [
        Bid(m, Side.BUY if m % 2 else Side.SELL, rng.randrange(100, 3_000),
            rng.randrange(5, 30) * 10_000, rng.randrange(78))
        for m in range(200)
    ]  # fmt: skip


def run() -> list[dict[str, Any]]:
    """Rows for benchmarks/run.py."""
    chain = DataChain(b"bench-data-shards", "FeeClearingVerifier")
    bids = _bids()
    words = [pack_bid(b) for b in bids]
    order, n_buys = greedy_order(bids)
    rows: list[dict[str, Any]] = []
    base = 0
    largest = (np.random.default_rng(5).integers(0, 9, (SIZES[-1],) * 2) * 2_000).astype(np.int64)
    for n in SIZES:
        fees = largest[:n, :n]  # the same fees between the bids' buses: the same trades
        trades = clear_greedy(bids, fees, KAPPA).trades
        data, shards, setup_gas = chain.commit(pack_fee_table(fees))
        cfg = n << 128 | KAPPA.numerator << 64 | KAPPA.denominator
        gas = chain.gas("verifyGreedy", cfg, data, words, order, n_buys, pack_trades(trades))
        base = base or gas
        where = "one data contract" if not shards else f"{shards} shards and a directory"
        rows.append(
            {
                "name": f"fee_table_greedy_{n}_buses",
                "value": gas,
                "unit": "gas",
                "target": 2**24,
                "note": (
                    f"verifyGreedy of 200 bids, {len(trades)} trades, fee table of {n} buses "
                    f"({4 * n * n:,} bytes, {where}): {gas / base:.2f}x the 78-bus table; "
                    f"deploying the data once: {setup_gas:,} gas"
                ),
            }
        )
    return rows


def main() -> int:
    for row in run():
        print(f"{row['name']:<30} {row['value']:>12,} {row['unit']}  {row['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
