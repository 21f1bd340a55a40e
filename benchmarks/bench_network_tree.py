"""Gas of the curtailment check on large radial feeders (SecurityVerifier data version 2).

A radial feeder's committed network in tree form (one integer per bus and per branch,
docs/security_on_chain.md) fits one data contract up to 1,754 buses, and shards beyond
(docs/ledger.md). Rows: the gas of ``verifyCurtailments`` (``eth_estimateGas`` on the
embedded chain) for an lp verdict over 21 trades that cuts the deepest seller for one
violated bus row, on random trees of 300, 1,000, 1,754 and 5,000 buses (three shards) and
on a 1,754-bus tree with a 150-bus trunk (depth over 200), plus the bytes committed. The
value is the gas as the Market calls the verifier (the tree was checked once, when the
network was committed); the note gives the gas of checking the tree again, the baseline. Gas, not time: the figures do not depend on the machine.

    python benchmarks/bench_network_tree.py
    python benchmarks/run.py --only network_tree
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from datachain import DataChain
from markets import random_radial_tree

from gridledger.ledger.network_data import pack_network, verifier_args
from gridledger.market.justification import linear_network_from_tree
from gridledger.market.orders import Trade
from gridledger.market.radial import RadialTree
from gridledger.security.justification import justify

__all__ = ["run"]

NETWORK_CHECKED = 1 << 128  # SecurityVerifier.NETWORK_CHECKED: the tree was checked at commit

CASES: tuple[tuple[str, int, int, int | None], ...] = (
    ("random tree", 300, 0, None),
    ("random tree", 1_000, 0, None),
    ("random tree", 1_754, 0, None),
    ("150-bus trunk", 1_754, 150, 40),
    ("random tree", 5_000, 0, None),
)


def _case(chain: DataChain, tree: RadialTree) -> tuple[int, int, int, int, int]:
    """(gas as the Market calls it, gas with the tree checked again, bytes, depth, shards) of
    an lp verdict cutting the deepest seller on ``tree``."""
    n = tree.n_buses
    net = linear_network_from_tree(tree, n - 1, 0, 900)
    raw = pack_network(net)
    rng = random.Random(n)
    seller = int(np.argmax(tree.depth))
    row = next(r for r in range(n - 1) if net.relief_at(r, seller) > 0)
    margin = np.zeros(net.n_rows, dtype=np.int64)
    margin[row] = -100
    buses = [rng.randrange(n) for _ in range(20)] + [seller]
    trades = tuple(Trade(2 * i, 2 * i + 1, 500, 200_000, 50_000, 0, b) for i, b in enumerate(buses))
    j = justify("lp", net, trades, margin, np.zeros(net.n_rows, dtype=np.int64))
    data, shards, _ = chain.commit(raw)
    cfg, *args = verifier_args("lp", trades, j.curtailments, j.margins, j.certificate)
    checked = chain.gas("verifyCurtailments", data, cfg | NETWORK_CHECKED, *args)
    again = chain.gas("verifyCurtailments", data, cfg, *args)
    return checked, again, len(raw), int(tree.depth.max()), shards


def run() -> list[dict[str, Any]]:
    """Rows for benchmarks/run.py."""
    chain = DataChain(b"bench-network-tree", "SecurityVerifier")
    rows = []
    for label, n, trunk, reach in CASES:
        tree = random_radial_tree(random.Random(9), n, n - 1, trunk, reach)
        gas, again, size, depth, shards = _case(chain, tree)
        where = f"{shards} shards" if shards else "one data contract"
        rows.append(
            {
                "name": f"security_tree_{'trunk' if trunk else 'random'}_{n}_buses",
                "value": gas,
                "unit": "gas",
                "target": 2**24,
                "note": (
                    f"{label}, {n:,} buses, depth {depth}: verifyCurtailments of an lp verdict "
                    f"over 21 trades as Market calls it (tree checked at commit; {again:,} "
                    f"checking it again: {gas / again:.2f}x), {size:,} bytes ({where})"
                ),
            }
        )
    return rows


def main() -> int:
    for row in run():
        print(f"{row['name']:<38} {row['value']:>12,} {row['unit']}  {row['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
