"""The one random-market generator of the tests and benchmarks.

``random_bids`` draws one order per member (a round of a synthetic interval);
``random_fee_market``, ``small_market`` and ``large_market`` draw a book and a fee
table on buses placed on a line. All are seeded, so a seed names a market.
``benchmarks/bench_clearing.py`` times and scores clearing on ``large_market`` and
``small_market``; ``tests/conftest.py`` builds its fixtures on these generators, so the
tests check the markets the benchmarks report.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gridledger.ledger import LedgerMember
from gridledger.market.loops import LoopCorrection
from gridledger.market.orders import Bid, Side
from gridledger.market.radial import RadialTree

__all__ = [
    "FeeMarket",
    "FeeTable",
    "large_market",
    "random_bids",
    "random_fee_market",
    "random_loops",
    "random_radial_tree",
    "small_market",
]

FeeTable = npt.NDArray[np.int64]
FeeMarket = tuple[list[Bid], FeeTable]


def random_bids(
    members: Sequence[LedgerMember],
    rng: random.Random,
    e_wh: tuple[int, int] = (1, 900),
    price_per_kwh_micro: tuple[int, int] = (60_000, 300_000),
) -> list[Bid]:
    """A synthetic round: one order per member, random side, energy and price (seeded)."""
    return [
        Bid(
            m.id,
            Side(rng.randint(0, 1)),
            rng.randint(*e_wh),
            rng.randint(*price_per_kwh_micro),
            m.bus,
        )
        for m in members
    ]


def random_fee_market(seed: int, n_bids: int, n_buses: int = 33) -> FeeMarket:
    """``n_bids`` random orders (ids 0..n-1) on ``n_buses`` buses, and a fee table from
    random bus positions on a line (<= ~30,000 micro/kWh), both seeded."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 3, n_buses)
    fees = np.round(np.abs(pos[:, None] - pos[None, :]) * 10_000).astype(np.int64)
    bids = [
        Bid(
            i,
            Side(int(rng.integers(0, 2))),
            int(rng.integers(100, 5_000)),
            int(rng.integers(80_000, 300_000)),
            int(rng.integers(0, n_buses)),
        )
        for i in range(n_bids)
    ]
    return bids, fees


def large_market(seed: int = 0, n_bids: int = 10_000, n_buses: int = 33) -> FeeMarket:
    """``n_bids`` orders (ids 0..n-1) of 0.1..5 kWh at 0.08..0.30 tokens/kWh on ``n_buses``
    buses, fees <= ~30,000 micro/kWh from random bus positions on a line (seeded).

    The same kind of market as :func:`random_fee_market`, but drawn column by column
    (all sides, then prices, energies and buses), so one seed gives a different market.
    """
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 3, n_buses)
    fees = np.round(np.abs(pos[:, None] - pos[None, :]) * 10_000).astype(np.int64)
    side = rng.integers(0, 2, n_bids)
    price = rng.integers(80_000, 300_000, n_bids)
    e_wh = rng.integers(100, 5_000, n_bids)
    bus = rng.integers(0, n_buses, n_bids)
    bids = [
        Bid(i, Side(int(side[i])), int(e_wh[i]), int(price[i]), int(bus[i])) for i in range(n_bids)
    ]
    return bids, fees


def small_market(seed: int, n_buses: int = 33) -> FeeMarket:
    """2..59 orders (ids 0..n-1) of 0.1..4.9 kWh in 0.1 kWh steps at 0.08..0.30 tokens/kWh
    in whole milli-tokens on ``n_buses`` buses; fees from random bus positions on a line
    times a scale of 0, 5,000, 20,000 or 60,000 micro-tokens/kWh per unit (seeded)."""
    rng = np.random.default_rng(seed)
    n_bids = int(rng.integers(2, 60))
    pos = rng.uniform(0, 3, n_buses)
    scale = int(rng.choice([0, 5_000, 20_000, 60_000]))
    fees = np.round(np.abs(pos[:, None] - pos[None, :]) * scale).astype(np.int64)
    side = rng.integers(0, 2, n_bids)
    price = rng.integers(80, 300, n_bids) * 1_000
    e_wh = rng.integers(1, 50, n_bids) * 100
    bus = rng.integers(0, n_buses, n_bids)
    bids = [
        Bid(i, Side(int(side[i])), int(e_wh[i]), int(price[i]), int(bus[i])) for i in range(n_bids)
    ]
    return bids, fees


def random_radial_tree(
    rng: random.Random, n: int, n_branches: int, trunk: int = 0, reach: int | None = None
) -> RadialTree:
    """A tree on buses 0..n-1 rooted at 0 with random relief values. Without ``reach``,
    buses join in a random order (so a parent's number may exceed its child's), each under
    a random earlier one; with it, buses 1..``trunk`` form a line and every later bus hangs
    under one of the ``reach`` buses before it (a long, feeder-like tree)."""
    order = [0, *rng.sample(range(1, n), n - 1)] if reach is None else list(range(n))
    parent = np.zeros(n, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    for i, b in enumerate(order[1:], start=1):
        if reach is None:
            p = order[rng.randrange(i)]
        else:
            p = b - 1 if b <= trunk else rng.randrange(max(1, b - reach), b)
        parent[b], depth[b] = p, depth[p] + 1
    value = np.array([rng.randint(-50, 400) for _ in range(n)], dtype=np.int64)
    children = np.array([rng.randrange(1, n) for _ in range(n_branches)], dtype=np.int64)
    branch = np.array([rng.randint(-20, 300) for _ in children], dtype=np.int64)
    return RadialTree(parent, depth, value, children, branch)


def random_loops(
    rng: random.Random, n_buses: int, n_rows: int, n_loops: int, bits: int = 10, shift: int = 12
) -> LoopCorrection:
    """A loop correction with random vectors below ``2**bits`` in magnitude and ``shift`` (a
    meshed network's data version 3 on top of a random tree)."""
    lim = (1 << bits) - 1

    def vectors(n: int) -> np.ndarray:
        values = [rng.randint(-lim, lim) for _ in range(n * 2 * n_loops)]
        return np.array(values, dtype=np.int64).reshape(n, 2 * n_loops)

    return LoopCorrection(shift, vectors(n_buses), vectors(n_rows))
