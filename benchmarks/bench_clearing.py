"""Clearing benchmark: greedy, LP-optimal and merit-order clearing of 10,000 orders on 33 buses.

``run()`` returns rows ``{"name", "value", "unit", "target"}`` (target a number the
value must not exceed, or None): median wall
times over repeats (all three rules measured in the same run, so ratios can be
quoted) and the welfare gaps of greedy and merit order to the LP optimum on
1,000 seeded small markets. ``python benchmarks/bench_clearing.py`` prints them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from markets import large_market, small_market

from gridledger.market.greedy import clear_greedy
from gridledger.market.merit_order import clear_merit_order
from gridledger.market.optimal import certify, solve_optimal
from gridledger.market.welfare import bid_surplus_wh_micro as surplus_wh_micro

N_BIDS = 10_000
N_BUSES = 33
REPEATS = 7


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def gap_study(n_markets: int = 1_000) -> dict[str, float]:
    """Welfare gaps to the certified LP optimum over seeded small markets."""
    greedy_gaps, merit_gaps = [], []
    below = 0
    for seed in range(n_markets):
        bids, fees = small_market(seed, N_BUSES)
        sol = solve_optimal(bids, fees)
        if not certify(bids, fees, sol.trades, sol.buyer_dual, sol.seller_dual).ok:
            message = f"LP certificate failed on market seed {seed}"
            raise RuntimeError(message)
        greedy = surplus_wh_micro(clear_greedy(bids, fees).trades, bids)
        merit = surplus_wh_micro(clear_merit_order(bids, fees).trades, bids)
        below += greedy < merit
        if sol.welfare_wh_micro > 0:
            greedy_gaps.append(1 - greedy / sol.welfare_wh_micro)
            merit_gaps.append(1 - merit / sol.welfare_wh_micro)
    return {
        "greedy_gap_mean": float(np.mean(greedy_gaps)),
        "greedy_gap_worst": float(np.max(greedy_gaps)),
        "merit_gap_mean": float(np.mean(merit_gaps)),
        "merit_gap_worst": float(np.max(merit_gaps)),
        "greedy_below_merit": float(below),
        "markets": float(n_markets),
    }


def run(repeats: int = REPEATS, n_markets: int = 1_000) -> list[dict[str, object]]:
    bids, fees = large_market(0, N_BIDS, N_BUSES)
    greedy_ms = _median_ms(lambda: clear_greedy(bids, fees), repeats)
    lp_ms = _median_ms(lambda: solve_optimal(bids, fees), repeats)
    merit_ms = _median_ms(lambda: clear_merit_order(bids, fees), repeats)
    sol = solve_optimal(bids, fees)
    greedy_share = surplus_wh_micro(clear_greedy(bids, fees).trades, bids) / sol.welfare_wh_micro
    merit_share = (
        surplus_wh_micro(clear_merit_order(bids, fees).trades, bids) / sol.welfare_wh_micro
    )
    gaps = gap_study(n_markets)
    size = f"{N_BIDS} orders, {N_BUSES} buses"
    rows: list[dict[str, object]] = [
        {"name": f"greedy clearing ({size})", "value": greedy_ms, "unit": "ms", "target": 100.0},
        {"name": f"LP clearing, HiGHS ({size})", "value": lp_ms, "unit": "ms", "target": 100.0},
        {"name": f"merit-order clearing ({size})", "value": merit_ms, "unit": "ms", "target": None},
        {
            "name": "greedy / merit-order time",
            "value": greedy_ms / merit_ms,
            "unit": "x",
            "target": None,
        },
        {"name": "LP / merit-order time", "value": lp_ms / merit_ms, "unit": "x", "target": None},
        {
            "name": "greedy welfare / LP (large market)",
            "value": greedy_share,
            "unit": "-",
            "target": None,
        },
        {
            "name": "merit welfare / LP (large market)",
            "value": merit_share,
            "unit": "-",
            "target": None,
        },
    ]
    for key, value in gaps.items():
        rows.append(
            {
                "name": f"{key} ({n_markets} markets, 33 buses)",
                "value": value,
                "unit": "-",
                "target": None,
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        value = row["value"]
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        target = "-" if row["target"] is None else f"<= {row['target']}"
        print(f"{row['name']:<58} {shown:>10} {row['unit']:<3} target {target}")
