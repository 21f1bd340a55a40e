"""Gas of the curtailment check on large radial feeders (SecurityVerifier data version 2).

A radial feeder's committed network in tree form (one integer per bus and per branch,
docs/security_on_chain.md) fits one data contract up to 1,754 buses, and shards beyond
(docs/ledger.md). Rows: the gas of ``verifyCurtailments`` (``eth_estimateGas`` on the
embedded chain) for an lp verdict over 21 trades that cuts the deepest seller for one
violated bus row, on random trees of 300, 1,000, 1,754 and 5,000 buses (three shards) and
on a 1,754-bus tree with a 150-bus trunk (depth over 200), plus the bytes committed. The
value is the gas as the Market calls the verifier (the tree was checked once, when the
network was committed); the note gives the gas of checking the tree again, the baseline.
Meshed networks (data version 3, spanning tree plus loop vectors): the 5,000-bus random
tree with two loops, against the same tree without them (the baseline), and, with the
simbench extra, SimBench's 5,477-bus rural MV/LV grid (one loop) as
``security.justification.linear_network`` commits it. Gas, not time: the figures do not
depend on the machine.

    python benchmarks/bench_network_tree.py
    python benchmarks/run.py --only network_tree
"""

from __future__ import annotations

import importlib.util
import random
from typing import Any

import numpy as np
from datachain import DataChain
from markets import random_loops, random_radial_tree

from gridledger.grid import load_feeder
from gridledger.grid.sensitivities import sensitivities
from gridledger.ledger.network_data import pack_network, verifier_args
from gridledger.market.justification import LinearNetwork, linear_network_from_tree
from gridledger.market.orders import Trade
from gridledger.security.justification import justify, linear_network

__all__ = ["run"]

NETWORK_CHECKED = 1 << 128  # SecurityVerifier.NETWORK_CHECKED: the tree was checked at commit

CASES: tuple[tuple[str, int, int, int | None], ...] = (
    ("random tree", 300, 0, None),
    ("random tree", 1_000, 0, None),
    ("random tree", 1_754, 0, None),
    ("150-bus trunk", 1_754, 150, 40),
    ("random tree", 5_000, 0, None),
)


def _case(chain: DataChain, net: LinearNetwork) -> tuple[int, int, int, int, int]:
    """(gas as the Market calls it, gas with the tree checked again, bytes, depth, shards) of
    an lp verdict cutting the deepest seller of ``net``'s tree."""
    tree = net.tree
    assert tree is not None
    n = tree.n_buses
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
        gas, again, size, depth, shards = _case(
            chain, linear_network_from_tree(tree, n - 1, 0, 900)
        )
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
    rows.extend(_meshed_rows(chain))
    rows.append(_congested_row(chain))
    return rows


def _congested_row(chain: DataChain) -> dict[str, Any]:
    """An lp verdict of a congested 1,000-member-sized interval on ieee33: 450 trades from
    random sellers, 30 of the 32 bus rows violated."""
    feeder = load_feeder("ieee33")
    net = linear_network(feeder, sensitivities(feeder), 0.25)
    rng = random.Random(450)
    trades = tuple(
        Trade(
            2 * i,
            2 * i + 1,
            rng.randint(100, 3_000),
            200_000,
            rng.randint(20_000, 150_000),
            rng.randrange(1, 33),
            rng.randrange(1, 33),
        )
        for i in range(450)
    )
    margin = np.zeros(net.n_rows, dtype=np.int64)
    margin[rng.sample(range(net.n_bus_rows), 30)] = -rng.randint(1_000_000, 5_000_000)
    j = justify("lp", net, trades, margin, np.zeros(net.n_rows, dtype=np.int64))
    data, _, _ = chain.commit(pack_network(net))
    cfg, *args = verifier_args("lp", trades, j.curtailments, j.margins, j.certificate)
    gas = chain.gas("verifyCurtailments", data, cfg | NETWORK_CHECKED, *args)
    m, n = len(j.margins), len(trades)
    page = _costliest_page(chain, data, cfg | NETWORK_CHECKED, args, m, n)
    return {
        "name": "security_lp_ieee33_450_trades_30_rows",
        "value": gas,
        "unit": "gas",
        "target": 2**24,
        "note": (
            f"ieee33, an lp verdict over 450 trades with 30 violated bus rows "
            f"({len(j.curtailments)} curtailments): each seller bus's dual load is computed "
            "once and each violated row visits only the cut trades (the contract before, "
            "once per trade and every trade per row, took 14,368,208 gas for this verdict "
            f"on 2026-12-03); its costliest page of one entry {page:,} (a row, a trade's "
            "term or the final entry, verifyCurtailmentsPage)"
        ),
    }


def _costliest_page(
    chain: DataChain, data: bytes, cfg: int, args: list[Any], rows: int, trades: int
) -> int:
    """The most gas a page of one entry of a verdict's check takes (its first row, its first
    trade's term, its final entry with the terms of the trades carried)."""
    out = chain.backend.call(
        chain.sender,
        chain.verifier,
        chain.abi.encode_call(
            "verifyCurtailmentsPage", data, cfg, *args, (rows << 128) | (rows + trades), 0
        ),
    )
    _, carried = chain.abi.decode_output("verifyCurtailmentsPage", out)
    end = rows + trades + 1
    spans = [(0, 1), (rows, rows + 1), (end - 1, end)]
    return max(
        chain.gas(
            "verifyCurtailmentsPage", data, cfg, *args, (a << 128) | b, carried if b == end else 0
        )
        for a, b in spans
    )


def _meshed_rows(chain: DataChain) -> list[dict[str, Any]]:
    """The loop form (data version 3) on a random 5,000-bus tree with two loops, against the
    same tree without them, and on SimBench's 5,477-bus grid if the extra is installed."""
    n, k = 5_000, 2
    rng = random.Random(9)
    tree = random_radial_tree(rng, n, n - 1 + k)
    plain, _, _, _, _ = _case(chain, linear_network_from_tree(tree, n - 1 + k, 0, 900))
    loops = random_loops(rng, n, 2 * (n - 1) + k, k)
    meshed = linear_network_from_tree(tree, n - 1 + k, 0, 900, loops)
    gas, _, size, depth, shards = _case(chain, meshed)
    rows = [
        {
            "name": "security_loops_random_5000_buses",
            "value": gas,
            "unit": "gas",
            "target": 2**24,
            "note": (
                f"random tree of {n:,} buses (depth {depth}) with {k} loops in loop form: "
                f"verifyCurtailments of an lp verdict over 21 trades, {size:,} bytes in "
                f"{shards} shards; the same tree without loops {plain:,} gas "
                f"({gas / plain:.2f}x)"
            ),
        }
    ]
    if importlib.util.find_spec("simbench") is None:
        return rows
    feeder = load_feeder("1-MVLV-rural-all-0-sw")
    net = linear_network(feeder, sensitivities(feeder), 0.25)
    assert net.loops is not None
    gas, _, size, depth, shards = _case(chain, net)
    rows.append(
        {
            "name": "security_loops_simbench_5477_buses",
            "value": gas,
            "unit": "gas",
            "target": 2**24,
            "note": (
                f"SimBench 1-MVLV-rural-all-0-sw ({feeder.n_buses:,} buses, depth {depth}, "
                f"{net.loops.n_loops} loop) as committed: verifyCurtailments of an lp verdict "
                f"over 21 trades, {size:,} bytes in {shards} shards"
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
