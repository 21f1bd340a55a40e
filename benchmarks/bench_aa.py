"""AA bid computation time for 1,000 members in one round (target <= 5 ms).

A round of member work is ``quote`` (price the order) plus ``observe`` (short- and
long-term learning from the published round result and the member's own result);
clearing is not included. A separate row times the mechanism's per-member outcomes
(:func:`gridledger.bidding.mechanism.own_results`) for 1,000 bids and 500 trades.
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
from gridledger.bidding.base import FILLED, RATIONED, OwnResult, PublicView, RoundInfo, TraderSpec
from gridledger.bidding.mechanism import own_results
from gridledger.market.orders import Bid, ClearingResult, Side, Trade

FEED_IN, RETAIL = 0.05, 0.30
TARGET_MS = 5.0


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


def _own(k: int, n: int) -> list[OwnResult]:
    """Half the members filled at the round price, half rationed (alternating by round)."""
    price = 0.17 + 0.005 * np.sin(k)
    return [
        OwnResult(FILLED, 1000, 1000, price) if (i + k) % 2 else OwnResult(RATIONED, 1000)
        for i in range(n)
    ]


def _book(n: int) -> tuple[list[Bid], ClearingResult]:
    rng = np.random.default_rng(1)
    bids = [
        Bid(
            i,
            Side.BUY if i % 2 == 0 else Side.SELL,
            1000,
            int(rng.integers(100_000, 250_000)),
            i % 33,
        )
        for i in range(n)
    ]
    trades = tuple(
        Trade(2 * j, 2 * j + 1, 1000, 170_000, 170_000, (2 * j) % 33, (2 * j + 1) % 33)
        for j in range(n // 4)
    )
    return bids, ClearingResult(trades=trades, price_per_kwh_micro=None)


def run(n_members: int = 1000, repeats: int = 11, buses: int = 33) -> list[dict[str, Any]]:
    specs = _specs(n_members)
    view = PublicView(0, 0, 5, FEED_IN, RETAIL)
    traders = [AATrader(s) for s in specs]

    def trader_round(k: int) -> None:
        for t in traders:
            t.quote(view)
        info = _info(k)
        for t, own in zip(traders, _own(k, n_members), strict=True):
            t.observe(view, info, own)

    population = AAPopulation(specs)

    owns = [_own(k, n_members) for k in range(2)]

    def shared_view_round(k: int) -> None:
        population.quote(view)
        population.observe(view, _info(k), owns[k % 2])

    grouped = AAPopulation(specs)
    rows_all = np.arange(n_members)
    bus_views = {
        (s.side, i % buses): PublicView(0, 0, 5, FEED_IN, RETAIL) for i, s in enumerate(specs)
    }
    per_row = [bus_views[(s.side, i % buses)] for i, s in enumerate(specs)]

    def mechanism_round(k: int) -> None:
        grouped.quote_rows(rows_all, per_row)
        info = _info(k)
        grouped.observe_rows(rows_all, per_row, [info] * n_members, owns[k % 2])

    bids, cleared = _book(n_members)

    def outcomes_round(k: int) -> None:
        own_results(bids, cleared)

    def mechanism_path(k: int) -> None:
        mechanism_round(k)
        own_results(bids, cleared)

    rows = []
    for name, step, note, target in (
        ("aa_round_1000_members_mechanism", mechanism_path, "population + own results", TARGET_MS),
        (
            "aa_bid_1000_members",
            mechanism_round,
            f"AAPopulation, views per (side, bus of {buses})",
            TARGET_MS,
        ),
        (
            "aa_bid_1000_members_one_view",
            shared_view_round,
            "AAPopulation, one shared view",
            TARGET_MS,
        ),
        (
            "aa_bid_1000_members_registry",
            trader_round,
            "AATrader per member (registry, not the mechanism's path)",
            None,
        ),
        ("own_results_1000_bids", outcomes_round, "mechanism: each member's own result", None),
    ):
        rows.append(
            {
                "name": name,
                "value": round(_median_ms(step, repeats), 3),
                "unit": "ms",
                "target": target,
                "note": f"{note}; median of {repeats}",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:34s} {row['value']:8.3f} {row['unit']}  (target {row['target']})")
