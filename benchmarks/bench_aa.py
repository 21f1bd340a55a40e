"""AA bid computation time for 1,000 members in one round (target <= 50 ms).

A round of member work is ``quote`` (price the order) plus ``observe`` (short- and
long-term learning from the published round result); clearing is not included.
Rows: the vectorised :class:`AAPopulation` as the round mechanism runs it (one public
view per (side, bus), here 33 buses), the same with one view shared by all members,
and the per-member :class:`AATrader` of the strategy registry (a one-row population
each; outside the mechanism). Each value is the median of ``repeats`` rounds on a
warmed-up market (a trade every round, so p*, theta and theta_bar change).

    python benchmarks/bench_aa.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from gridledger.bidding.adaptive_aggressive import AAPopulation, AATrader
from gridledger.bidding.base import PublicView, RoundInfo, TraderSpec

FEED_IN, RETAIL = 0.05, 0.30
TARGET_MS = 50.0


def _specs(n: int, seed: int = 0) -> list[TraderSpec]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        side: Literal["buy", "sell"] = "buy" if i % 2 == 0 else "sell"
        limit = float(rng.uniform(0.12, 0.28) if side == "buy" else rng.uniform(0.07, 0.23))
        attitude = ("averse", "neutral", "seeking")[i % 3]
        out.append(TraderSpec(i, side, limit, attitude, FEED_IN, RETAIL))
    return out


def _median_ms(step: Callable[[int], None], repeats: int) -> float:
    for k in range(3):  # warm-up: leave the first-round regime, fill the price memory
        step(k)
    times = []
    for k in range(repeats):
        started = time.perf_counter()
        step(3 + k)
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def _info(k: int) -> RoundInfo:
    price = 0.17 + 0.005 * np.sin(k)
    return RoundInfo(best_bid=price + 0.01, best_ask=price - 0.01, trade_prices=(price,) * 3)


def run(n_members: int = 1000, repeats: int = 11, buses: int = 33) -> list[dict[str, Any]]:
    specs = _specs(n_members)
    view = PublicView(0, 0, 5, FEED_IN, RETAIL)
    traders = [AATrader(s) for s in specs]

    def trader_round(k: int) -> None:
        for t in traders:
            t.quote(view)
        info = _info(k)
        for t in traders:
            t.observe(view, info)

    population = AAPopulation(specs)

    def shared_view_round(k: int) -> None:
        population.quote(view)
        population.observe(view, _info(k))

    grouped = AAPopulation(specs)
    rows_all = np.arange(n_members)
    bus_views = {
        (s.side, i % buses): PublicView(0, 0, 5, FEED_IN, RETAIL) for i, s in enumerate(specs)
    }
    per_row = [bus_views[(s.side, i % buses)] for i, s in enumerate(specs)]

    def mechanism_round(k: int) -> None:
        grouped.quote_rows(rows_all, per_row)
        info = _info(k)
        grouped.observe_rows(rows_all, per_row, [info] * n_members)

    rows = []
    for name, step, note in (
        ("aa_bid_1000_members", mechanism_round, f"AAPopulation, views per (side, bus of {buses})"),
        ("aa_bid_1000_members_one_view", shared_view_round, "AAPopulation, one shared view"),
        ("aa_bid_1000_members_registry", trader_round, "AATrader per member (registry)"),
    ):
        rows.append(
            {
                "name": name,
                "value": round(_median_ms(step, repeats), 3),
                "unit": "ms",
                "target": TARGET_MS,
                "note": f"{note}; quote + observe, median of {repeats}",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:34s} {row['value']:8.3f} {row['unit']}  (target {row['target']})")
