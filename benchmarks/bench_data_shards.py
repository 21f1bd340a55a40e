"""Gas of committed data over one data contract: fee tables read from shards.

A fee table is 4 B^2 bytes; one data contract holds 24,575 (78 buses). A larger table is
deployed in shards that a directory lists (docs/ledger.md); every clearing reads it whole.
Rows: the gas of ``FeeClearingVerifier.verifyGreedy`` (``eth_estimateGas`` on the embedded
chain) for the same 200 bids on buses 0..77, with fee tables of 78 buses (one contract, the
baseline), 150, 300 and 600 buses (shards; the same fees among buses 0..77, so the same
trades), as a ratio to the baseline; and the gas of
deploying the shards once at setup. Gas, not time: the figures do not depend on the machine.

Fees in path form (market/path_fees.py, contracts/PathFees.sol): the same 200 bids on a
78-bus feeder's path fees, read as a table (the baseline) and computed from the path form;
and 120 bids spread over a 5,000-bus feeder with two loops, whose path form (660,008 bytes,
27 shards) stands for a 100 MB table: the clearing's gas, the one-time check of the data at
``configureClearing`` and the deployment.

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
from gridledger.ledger.fee_clearing import greedy_entries, greedy_order, pack_fee_table
from gridledger.market import Bid, Side
from gridledger.market.greedy import clear_greedy
from gridledger.market.path_fees import PathFees

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
    return rows + path_rows(chain)


def path_feeder(n_buses: int, loops: int, seed: int) -> PathFees:
    """A long feeder-like tree (a 40-bus trunk, laterals of buses under one of the 30 before
    them) with ``loops`` extra branches; branch fees 50..2,999 micro-tokens per kWh."""
    rng = random.Random(seed)
    parent = [0] + [
        b - 1 if b <= 40 else rng.randrange(max(1, b - 30), b) for b in range(1, n_buses)
    ]
    ends = [(parent[b], b) for b in range(1, n_buses)]
    ends += [tuple(rng.sample(range(n_buses), 2)) for _ in range(loops)]  # type: ignore[misc]
    fees = [rng.randrange(50, 3_000) for _ in ends]
    return PathFees(
        n_buses, np.array([u for u, _ in ends]), np.array([v for _, v in ends]), np.array(fees)
    )


def _verify(chain: DataChain, n_buses: int, data: bytes, bids: list[Bid], fees: np.ndarray) -> int:
    trades = clear_greedy(bids, fees, KAPPA).trades
    order, n_buys = greedy_order(bids)
    cfg = n_buses << 128 | KAPPA.numerator << 64 | KAPPA.denominator
    words = [pack_bid(b) for b in bids]
    return chain.gas("verifyGreedy", cfg, data, words, order, n_buys, pack_trades(trades))


def path_rows(chain: DataChain) -> list[dict[str, Any]]:
    """Rows of fees in path form: against the same fees as a table, and at 5,000 buses."""
    small = path_feeder(78, 2, 11)
    bids = _bids()
    table_data, _, _ = chain.commit(pack_fee_table(small.table))
    base = _verify(chain, 78, table_data, bids, small.table)
    path_data, _, _ = chain.commit(pack_fee_table(small))
    gas = _verify(chain, 78, path_data, bids, small.table)
    rows: list[dict[str, Any]] = [
        {
            "name": "fee_paths_greedy_78_buses",
            "value": gas,
            "unit": "gas",
            "target": 2**24,
            "note": (
                f"verifyGreedy of the same 200 bids with the fees of a 78-bus feeder with two "
                f"loops in path form: {gas / base:.2f}x the same fees as a table ({base:,} gas)"
            ),
        }
    ]
    big = path_feeder(5_000, 2, 7)
    packed = pack_fee_table(big)
    spread = _spread_bids(120)
    data, shards, setup_gas = chain.commit(packed)
    check = chain.gas("dataBytes", data)
    gas = _verify(chain, 5_000, data, spread, big.table)
    rows.append(
        {
            "name": "fee_paths_greedy_5000_buses",
            "value": gas,
            "unit": "gas",
            "target": 2**24,
            "note": (
                f"verifyGreedy of 120 bids on a 5,000-bus feeder with two loops (4 portals), "
                f"fees in path form ({len(packed):,} bytes in {shards} shards for a "
                f"{4 * 5_000**2:,}-byte table): checking the data once at configureClearing "
                f"{check:,} gas, deploying it {setup_gas:,} gas"
            ),
        }
    )
    rows.append(_page_row(chain, data, big))
    return rows


def _spread_bids(n: int) -> list[Bid]:
    """``n`` bids spread over the 5,000-bus feeder, buyers and sellers alternating."""
    rng = random.Random(1)
    return [
        Bid(m, Side.BUY if m % 2 else Side.SELL, rng.randrange(100, 3_000),
            rng.randrange(5, 30) * 10_000, 1 + m * 2027 % 4999)
        for m in range(n)
    ]  # fmt: skip


def _page_row(chain: DataChain, data: bytes, big: PathFees) -> dict[str, Any]:
    """The costliest page of one entry of a paged greedy verification (the last seller's
    final check, every trade replayed) with 1,000 bids on the 5,000-bus feeder, whose whole
    verification is far beyond a block."""
    bids = _spread_bids(1_000)
    trades = clear_greedy(bids, big.table, KAPPA).trades
    order, n_buys = greedy_order(bids)
    cfg = 5_000 << 128 | KAPPA.numerator << 64 | KAPPA.denominator
    words, packed = [pack_bid(b) for b in bids], pack_trades(trades)
    end = greedy_entries(bids, trades)
    span = ((end - 1) << 128) | end
    gas = chain.gas("verifyGreedyPage", cfg, data, words, order, n_buys, packed, span)
    return {
        "name": "fee_paths_greedy_last_page_5000_buses",
        "value": gas,
        "unit": "gas",
        "target": 2**24,
        "note": (
            f"the last page of one entry of verifyGreedyPage with 1,000 bids on the 5,000-bus "
            f"feeder ({len(trades)} trades replayed, then the last of {end - len(trades)} "
            "seller buses left checked for surplus): Market.clearGreedy pages past a block"
        ),
    }


def main() -> int:
    for row in run():
        print(f"{row['name']:<30} {row['value']:>12,} {row['unit']}  {row['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
