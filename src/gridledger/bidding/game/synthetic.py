"""Synthetic best-response games on the IEEE 33-bus topology (tests and benchmarks).

Members sit on random buses 1-32 of the 33-bus radial feeder; the fee is
``fee_per_hop_micro`` per hop of the path between the two buses. Even members buy
(value 0.18-0.30 tokens/kWh, falling to 0 at the cap), odd members sell (cost
0.04-0.10 tokens/kWh, doubling at the cap); caps 0.2-3 kWh; kappa 1/2; prices
on the grid 0.08-0.30 tokens/kWh in 1 % ticks (2,200 micro).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from gridledger.bidding.game.model import FloatArray, Game, Player, Strategy
from gridledger.bidding.game.start import truthful_profile
from gridledger.market.orders import Side

__all__ = ["PARENT_33", "hop_distance_33", "synthetic_game"]

PARENT_33: tuple[int, ...] = (-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
PARENT_33 += (1, 18, 19, 20, 2, 22, 23, 5, 25, 26, 27, 28, 29, 30, 31)
"""Parent of each bus of the IEEE 33-bus feeder (bus 0 = substation)."""


def hop_distance_33() -> FloatArray:
    """Symmetric hop-count distance between the buses of the 33-bus feeder."""
    paths = []
    for bus in range(33):
        path = set()
        node = bus
        while node != -1:
            path.add(node)
            node = PARENT_33[node]
        paths.append(path)
    return np.array([[len(a ^ b) for b in paths] for a in paths], dtype=np.float64)


def synthetic_game(
    n_members: int, seed: int, fee_per_hop_micro: int = 2000
) -> tuple[Game, list[Strategy]]:
    """A random game of ``n_members`` (module docstring) and its truthful profile."""
    rng = np.random.default_rng(seed)
    fees = np.round(hop_distance_33() * fee_per_hop_micro).astype(np.int64)
    players = []
    for i in range(n_members):
        cap_wh = int(rng.integers(200, 3000))
        if i % 2 == 0:
            value = float(rng.uniform(0.18, 0.30))
            bus = int(rng.integers(1, 33))
            players.append(Player(i, bus, Side.BUY, cap_wh, value, value / (cap_wh / 1000)))
        else:
            cost = float(rng.uniform(0.04, 0.10))
            bus = int(rng.integers(1, 33))
            players.append(Player(i, bus, Side.SELL, cap_wh, cost, cost / (cap_wh / 1000)))
    game = Game(tuple(players), fees, Fraction(1, 2), 80_000, 300_000, 2200)
    return game, truthful_profile(game)
