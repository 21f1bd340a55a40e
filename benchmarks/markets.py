"""The one random-market generator of the tests and benchmarks.

``random_bids`` draws one order per member (a round of a synthetic interval);
``random_fee_market`` draws a book and a fee table on buses placed on a line.
Both are seeded, so a seed names a market. ``tests/conftest.py`` builds its
hypothesis strategies and fixtures on these.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gridledger.ledger import LedgerMember
from gridledger.market.orders import Bid, Side

__all__ = ["random_bids", "random_fee_market"]


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


def random_fee_market(
    seed: int, n_bids: int, n_buses: int = 33
) -> tuple[list[Bid], npt.NDArray[np.int64]]:
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
