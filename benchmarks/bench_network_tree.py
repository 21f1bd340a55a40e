"""Gas of the curtailment check on large radial feeders (SecurityVerifier data version 2).

A radial feeder's committed network in tree form (one integer per bus and per branch,
docs/security_on_chain.md) fits one data contract up to 1,754 buses. Rows: the gas of
``verifyCurtailments`` (``eth_estimateGas`` on the embedded chain) for an lp verdict over
21 trades that cuts the deepest seller for one violated bus row, on random trees of 300,
1,000 and 1,754 buses and on a 1,754-bus tree with a 150-bus trunk (depth over 200), plus
the bytes committed. Gas, not time: the figures do not depend on the machine.

    python benchmarks/bench_network_tree.py
    python benchmarks/run.py --only network_tree
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from markets import random_radial_tree

from gridledger.ledger.backends import EmbeddedBackend
from gridledger.ledger.contracts import artifact
from gridledger.ledger.deploy import create_address
from gridledger.ledger.encoding import address_of, derive_key, sign_transaction
from gridledger.ledger.network_data import data_contract_init_code, pack_network, verifier_args
from gridledger.market.justification import linear_network_from_tree
from gridledger.market.orders import Trade
from gridledger.market.radial import RadialTree
from gridledger.security.justification import justify

__all__ = ["run"]

CASES: tuple[tuple[str, int, int, int | None], ...] = (
    ("random tree", 300, 0, None),
    ("random tree", 1_000, 0, None),
    ("random tree", 1_754, 0, None),
    ("150-bus trunk", 1_754, 150, 40),
)


class _Chain:
    """An embedded chain with a SecurityVerifier; data contracts deployed on demand."""

    def __init__(self) -> None:
        self.key = derive_key(b"bench-network-tree", "dso")
        self.sender = address_of(self.key)
        self.backend = EmbeddedBackend(funded=[self.sender])
        self.abi = artifact("SecurityVerifier")
        self.verifier = self.create(self.abi.deploy_data(), 3_000_000)

    def create(self, code: bytes, gas: int) -> bytes:
        nonce = self.backend.nonce(self.sender)
        raw = sign_transaction(self.backend.chain_id, self.key, None, code, gas, nonce, 10**9)
        (result,) = self.backend.send([raw])
        self.backend.seal()
        assert result.status
        return create_address(self.sender, nonce)


def _case(chain: _Chain, tree: RadialTree) -> tuple[int, int, int]:
    """(gas, bytes, depth) of an lp verdict cutting the deepest seller on ``tree``."""
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
    data = chain.create(data_contract_init_code(raw), 8_000_000)
    args = verifier_args("lp", trades, j.curtailments, j.margins, j.certificate)
    payload = chain.abi.encode_call("verifyCurtailments", data, *args)
    gas = chain.backend.estimate_gas(chain.sender, chain.verifier, payload, exact=True)
    return gas, len(raw), int(tree.depth.max())


def run() -> list[dict[str, Any]]:
    """Rows for benchmarks/run.py."""
    chain = _Chain()
    rows = []
    for label, n, trunk, reach in CASES:
        tree = random_radial_tree(random.Random(9), n, n - 1, trunk, reach)
        gas, size, depth = _case(chain, tree)
        rows.append(
            {
                "name": f"security_tree_{'trunk' if trunk else 'random'}_{n}_buses",
                "value": gas,
                "unit": "gas",
                "target": 2**24,
                "note": (
                    f"{label}, {n:,} buses, depth {depth}: verifyCurtailments of an lp verdict "
                    f"over 21 trades, {size:,} bytes committed (one data contract: 24,575)"
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
