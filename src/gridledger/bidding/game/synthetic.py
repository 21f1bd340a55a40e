"""Synthetic best-response games on the IEEE 33-bus topology (tests and benchmarks).

Members sit on random buses 1-32 of the 33-bus radial feeder; the fee is
``fee_per_hop_micro`` per hop of the path between the two buses. Even members buy
(value 0.18-0.30 tokens/kWh, falling to 0 at the cap), odd members sell (cost
0.04-0.10 tokens/kWh, doubling at the cap); caps 0.2-3 kWh; kappa 1/2; prices
on the grid 0.08-0.30 tokens/kWh in 1 % ticks (2,200 micro).

:func:`feeder_game` draws the same members on the buses of any feeder with a
given fee table (e.g. the distance fee of ``scenarios/ieee33.toml``, from the
feeder's path lengths in km; several members per bus).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from gridledger.bidding.game.model import FloatArray, Game, IntArray, Player, Strategy
from gridledger.bidding.game.start import truthful_profile
from gridledger.market.orders import Side

__all__ = ["PARENT_33", "feeder_game", "hop_distance_33", "synthetic_game"]

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


def feeder_game(
    n_members: int,
    seed: int,
    fees: IntArray,
    buses: Sequence[int],
    *,
    low_micro: int = 80_000,
    high_micro: int = 300_000,
    tick_fraction: float = 0.01,
) -> tuple[Game, list[Strategy]]:
    """A random game of ``n_members`` on ``buses`` of a feeder with the fee table
    ``fees`` (int64 micro/kWh, ``fees[seller_bus, buyer_bus]``) and its truthful
    profile. Members as in the module docstring, each on a bus drawn uniformly
    from ``buses`` (several members per bus once there are more members than
    buses); prices on the grid ``low .. high`` in ticks of ``tick_fraction`` of
    the span.
    """
    rng = np.random.default_rng(seed)
    players = []
    for i in range(n_members):
        cap_wh = int(rng.integers(200, 3000))
        if i % 2 == 0:
            value = float(rng.uniform(0.18, 0.30))
            bus = int(buses[int(rng.integers(0, len(buses)))])
            players.append(Player(i, bus, Side.BUY, cap_wh, value, value / (cap_wh / 1000)))
        else:
            cost = float(rng.uniform(0.04, 0.10))
            bus = int(buses[int(rng.integers(0, len(buses)))])
            players.append(Player(i, bus, Side.SELL, cap_wh, cost, cost / (cap_wh / 1000)))
    tick = max(1, round(tick_fraction * (high_micro - low_micro)))
    game = Game(tuple(players), fees, Fraction(1, 2), low_micro, high_micro, tick)
    return game, truthful_profile(game)


def synthetic_game(
    n_members: int, seed: int, fee_per_hop_micro: int = 2000
) -> tuple[Game, list[Strategy]]:
    """A random game of ``n_members`` (module docstring) and its truthful profile."""
    fees = np.round(hop_distance_33() * fee_per_hop_micro).astype(np.int64)
    return feeder_game(n_members, seed, fees, range(1, 33))
