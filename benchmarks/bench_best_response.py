"""Best-response game: rounds and time to converge for 32, 100 and 300 members.

    python benchmarks/bench_best_response.py            # 32 and 100 members
    python benchmarks/bench_best_response.py --with-300 # also 300 (minutes)

Market: members on an IEEE 33-bus-like radial feeder (hop distance), fee 0.002
tokens/kWh per hop, kappa 1/2, buyers value 0.18-0.30, sellers cost 0.04-0.10
tokens/kWh, caps 0.2-3 kWh; default BRSettings (tick 1 % of the tariff span,
fixed seeded Gauss-Seidel order; after each detected cycle a burst of 5 rounds
with inertia 0.5, then a fresh deterministic order; epsilon 1e-4, k_max 100). Time excludes the numba compile. Rows per size: worst
rounds and time over the seeds, converged count, cycles detected.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from typing import Any

import numpy as np

from gridledger.bidding.best_response import BRSettings, Game, Player, Strategy, run_dynamics
from gridledger.bidding.nash import check_equilibrium
from gridledger.market.orders import Side

PARENT_33 = [
    -1,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    1,
    18,
    19,
    20,
    2,
    22,
    23,
    5,
    25,
    26,
    27,
    28,
    29,
    30,
    31,
]


def _market(n: int, seed: int) -> tuple[Game, list[Strategy]]:
    paths = []
    for b in range(33):
        path = set()
        while b != -1:
            path.add(b)
            b = PARENT_33[b]
        paths.append(path)
    hops = np.array([[len(a ^ b) for b in paths] for a in paths])
    rng = np.random.default_rng(seed)
    players = []
    for i in range(n):
        cap = int(rng.integers(200, 3000))
        bus = int(rng.integers(1, 33))
        if i % 2 == 0:
            u = float(rng.uniform(0.18, 0.30))
            players.append(Player(i, bus, Side.BUY, cap, u, u / (cap / 1000)))
        else:
            c = float(rng.uniform(0.04, 0.10))
            players.append(Player(i, bus, Side.SELL, cap, c, c / (cap / 1000)))
    game = Game(
        tuple(players), (hops * 2000).astype(np.int64), Fraction(1, 2), 80_000, 300_000, 2200
    )
    start = [
        Strategy(
            game.snap_up(round(p.lin * 1e6))
            if p.side == Side.BUY
            else game.snap_down(round(p.lin * 1e6)),
            p.cap_wh,
        )
        for p in players
    ]
    return game, start


def run(
    sizes: tuple[int, ...] = (32, 100), seeds: tuple[int, ...] = (3, 4, 6)
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    warm, start = _market(8, 0)
    run_dynamics(warm, start, BRSettings(k_max=1))  # numba compile
    for n in sizes:
        k_max = 100 if n <= 100 else 40
        rounds, times, conv, cycles, gains = [], [], [], [], []
        for seed in seeds[: 3 if n <= 100 else 1]:
            game, start = _market(n, seed)
            t0 = time.perf_counter()
            res = run_dynamics(game, start, BRSettings(k_max=k_max))
            times.append(time.perf_counter() - t0)
            rounds.append(res.rounds)
            conv.append(res.converged)
            cycles.append(res.cycles)
            if n <= 32:
                gains.append(
                    check_equilibrium(game, res.final, n_prices=101, n_quantities=11).max_gain_rel
                )
        note = (
            f"seeds {list(seeds[: len(rounds)])}, converged {sum(conv)}/{len(conv)}, "
            f"cycles detected {sum(cycles)}, k_max {k_max}"
        )
        target_r = 50 if n == 32 else None
        target_t = 1.0 if n == 32 else None
        rows.append(
            {
                "name": f"br_rounds_{n}",
                "value": float(np.max(rounds)),
                "unit": "rounds",
                "target": target_r,
                "note": note,
            }
        )
        rows.append(
            {
                "name": f"br_time_{n}",
                "value": round(float(np.max(times)), 3),
                "unit": "s",
                "target": target_t,
                "note": note,
            }
        )
        if gains:
            rows.append(
                {
                    "name": f"br_nash_gain_{n}",
                    "value": float(np.max(gains)),
                    "unit": "rel",
                    "target": 1e-4,
                    "note": "grid 101 prices x 11 quantities",
                }
            )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--with-300", action="store_true", help="also 300 members (minutes)")
    args = parser.parse_args()
    for row in run((32, 100, 300) if args.with_300 else (32, 100)):
        print(row)
