"""Tiny tie-heavy markets and every integer clearing of them (canonical-optimum tests)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st
from tests.conftest import FeeMarket

from gridledger.market.orders import Bid, Side

__all__ = ["all_clearings", "tiny_tied_markets"]


@st.composite
def tiny_tied_markets(draw: st.DrawFn) -> FeeMarket:
    """At most 6 orders of 1..3 Wh on up to 3 buses, prices and fees from tiny sets."""
    n_buses = draw(st.integers(1, 3))
    fee_values = draw(st.sampled_from([[0], [0, 1], [0, 2, 4], [3]]))
    raw = draw(st.lists(st.sampled_from(fee_values), min_size=n_buses**2, max_size=n_buses**2))
    fees = np.array(raw, dtype=np.int64).reshape(n_buses, n_buses)
    members = draw(st.permutations(range(20)))[: draw(st.integers(2, 6))]
    bids = [
        Bid(
            int(m),
            Side(draw(st.integers(0, 1))),
            draw(st.integers(1, 3)),
            draw(st.sampled_from([10, 12, 14])),
            draw(st.integers(0, n_buses - 1)),
        )
        for m in members
    ]
    return bids, fees


def all_clearings(bids: Sequence[Bid]) -> list[dict[tuple[Bid, Bid], int]]:
    """Every integer clearing (Wh per buyer-seller pair) of a tiny book."""
    buys = [b for b in bids if b.side == Side.BUY]
    sells = [b for b in bids if b.side == Side.SELL]
    pairs = [(b, s) for b in buys for s in sells]
    out = []
    for flows in itertools.product(*(range(min(b.e_wh, s.e_wh) + 1) for b, s in pairs)):
        used: dict[int, int] = {}
        for (b, s), x in zip(pairs, flows, strict=True):
            used[b.member] = used.get(b.member, 0) + x
            used[s.member] = used.get(s.member, 0) + x
        if all(used.get(o.member, 0) <= o.e_wh for o in bids):
            out.append(dict(zip(pairs, flows, strict=True)))
    return out
