"""Best-response game: rounds and time to converge for 32, 100 and 300 members.

    python benchmarks/bench_best_response.py            # 32, 100, 300 members
    python benchmarks/bench_best_response.py --quick    # 32 and 100 only

Markets: ``gridledger.bidding.game.synthetic.synthetic_game`` (members on random
buses of the IEEE 33-bus feeder, fee 0.002 tokens/kWh per hop, kappa 1/2, buyers
value 0.18-0.30, sellers cost 0.04-0.10 tokens/kWh, caps 0.2-3 kWh, 1 % price
ticks). Default dynamics (competitive start, a fresh random sweep order every
round, converge at one tick's worth = 0.005 of the payoff scale, then refine at
1e-4 for up to 40 rounds or return), and the same with the tolerance 1e-4 from
the start (``_exact`` rows) for comparison. Time includes the competitive
start (one LP) and excludes the numba compile. Rows per size and tolerance:
worst rounds and worst time over the seeds, converged count; for 32 members the
largest gain the independent equilibrium check finds.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from gridledger.bidding.game import BRSettings, run_dynamics
from gridledger.bidding.game.nash import check_equilibrium
from gridledger.bidding.game.start import competitive_profile
from gridledger.bidding.game.synthetic import synthetic_game

SEEDS = (3, 4, 6)


def _one(n: int, seed: int, epsilon: float | None, k_max: int) -> dict[str, Any]:
    game, _ = synthetic_game(n, seed)
    t0 = time.perf_counter()
    start = competitive_profile(game)
    result = run_dynamics(game, start, BRSettings(k_max=k_max, epsilon=epsilon))
    elapsed = time.perf_counter() - t0
    gain = None
    if n <= 32:
        report = check_equilibrium(game, result.final, n_prices=101, n_quantities=11)
        gain = report.max_gain_rel
    return {
        "rounds": result.rounds,
        "time_s": elapsed,
        "converged": result.converged,
        "epsilon": result.epsilon,
        "nash_gain": gain,
    }


def run(sizes: tuple[int, ...] = (32, 100, 300)) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    warm, start = synthetic_game(8, 0)
    run_dynamics(warm, start, BRSettings(k_max=1))  # numba compile
    for n in sizes:
        for epsilon, tag in ((None, ""), (1e-4, "_exact")):
            if n > 100 and epsilon is not None:
                continue  # exact tolerance at 300 members: minutes per seed, not converging
            k_max = 100
            runs = [_one(n, seed, epsilon, k_max) for seed in SEEDS]
            conv = sum(r["converged"] for r in runs)
            eps = max(r["epsilon"] for r in runs)
            exact = sum(r["converged"] and r["epsilon"] <= 1.0001e-4 for r in runs)
            note = (
                f"seeds {list(SEEDS)}, converged {conv}/{len(runs)}, of them exact (1e-4) "
                f"{exact}, cap {k_max}"
            )
            default = tag == "" and n == 32
            rows.append(
                {
                    "name": f"br_rounds_{n}{tag}",
                    "value": float(max(r["rounds"] for r in runs)),
                    "unit": "rounds",
                    "target": 50 if default else None,
                    "note": note,
                }
            )
            rows.append(
                {
                    "name": f"br_time_{n}{tag}",
                    "value": round(max(r["time_s"] for r in runs), 3),
                    "unit": "s",
                    "target": 1.0 if default else None,
                    "note": note,
                }
            )
            gains = [r["nash_gain"] for r in runs if r["nash_gain"] is not None]
            if gains:
                rows.append(
                    {
                        "name": f"br_nash_gain_{n}{tag}",
                        "value": float(np.max(gains)),
                        "unit": "rel",
                        "target": eps,
                        "note": "largest deviation gain, grid 101 prices x 11 quantities",
                    }
                )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="32 and 100 members only")
    args = parser.parse_args()
    for row in run((32, 100) if args.quick else (32, 100, 300)):
        print(row)
