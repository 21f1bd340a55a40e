"""Equilibrium experiment: AA against ZI-C and ZIP on controlled supply/demand schedules.

Markets (tariff band [feed-in, retail] = [0.05, 0.30] tokens/kWh, one bus, no network
fees): ``n`` buyers and ``n`` sellers of 1 kWh each per interval, the same members every
interval (a stationary market).

- ``sym``: symmetric schedules, buyer and seller limits evenly spread over
  ``p0 +- 0.04`` (each limit jittered by up to 30 % of the spacing, seeded), then shifted
  so that the competitive equilibrium price ``p0`` sits at ``p0_position`` of the band
  (0.2 .. 0.8).
- ``steep-supply``: seller limits over ``p0 +- 0.08``, buyer limits over ``p0 +- 0.02``
  (flat demand); ``flat-supply``: the reverse. Both at p0_position 0.5.

Clearing: the main job's rule, greedy with pair prices
(:func:`gridledger.market.greedy.clear_greedy`, kappa = 1/2), K rounds per interval
(the last binding) through :class:`gridledger.bidding.mechanism.TraderMechanism`.

Measures per interval (binding round): ``efficiency`` = realised surplus at true limits
/ maximum surplus; ``price_error_pct`` = 100 |p_bar - p0| / p0 with p_bar the
energy-weighted mean trade price; ``alpha`` (Smith's alpha) = 100 sqrt(mean (p - p0)^2)
/ p0 over the interval's trades (energy-weighted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from gridledger.bidding.mechanism import Position, TraderMechanism
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import micro_to_price

__all__ = [
    "BAND",
    "MARKETS",
    "P0_POSITIONS",
    "Schedule",
    "clear_pairs",
    "equilibrium_price",
    "equilibrium_summary",
    "equilibrium_table",
    "interval_means",
    "make_schedule",
    "plot_equilibrium",
    "run_schedule",
    "unit_equilibrium",
]

BAND = (0.05, 0.30)
P0_POSITIONS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
MARKETS = ("sym", "steep-supply", "flat-supply")
STRATEGIES = (("aa", "neutral"), ("zi", "neutral"), ("zip", "neutral"))
E_WH = 1000


@dataclass(frozen=True, slots=True)
class Schedule:
    """Limits of one market (tokens/kWh, 1 kWh each) and its competitive equilibrium."""

    market: str
    p0_position: float
    buyer_limits: tuple[float, ...]
    seller_limits: tuple[float, ...]
    p0: float
    max_surplus: float


def unit_equilibrium(
    buyer_limits: Sequence[float], seller_limits: Sequence[float]
) -> tuple[float, int, float]:
    """(p_ce, q_ce, maximum surplus) of unit demands/supplies.

    p_ce is the midpoint of the competitive equilibrium price interval and q_ce the
    number of units traded there. When no buyer limit reaches a seller limit, q_ce = 0,
    the surplus is 0 and p_ce is the midpoint of the highest buyer and the lowest seller
    limit (NaN if a side is empty).
    """
    buys = sorted(buyer_limits, reverse=True)
    sells = sorted(seller_limits)
    k = 0
    while k < min(len(buys), len(sells)) and buys[k] >= sells[k]:
        k += 1
    if k == 0:
        mid = (buys[0] + sells[0]) / 2.0 if buys and sells else float("nan")
        return mid, 0, 0.0
    low = max(sells[k - 1], buys[k] if k < len(buys) else -np.inf)
    high = min(buys[k - 1], sells[k] if k < len(sells) else np.inf)
    return (low + high) / 2.0, k, float(sum(buys[i] - sells[i] for i in range(k)))


def equilibrium_price(
    buyer_limits: Sequence[float], seller_limits: Sequence[float]
) -> tuple[float, float]:
    """(p0, maximum surplus) of unit demands/supplies (:func:`unit_equilibrium`)."""
    p0, _, best = unit_equilibrium(buyer_limits, seller_limits)
    return p0, best


def make_schedule(market: str, p0_position: float, seed: int, n: int = 15) -> Schedule:
    """The schedule of ``market`` with p0 at ``p0_position`` of the band (seeded jitter)."""
    rng = np.random.default_rng([seed, round(p0_position * 100), MARKETS.index(market)])
    half_buy, half_sell = {"sym": (0.04, 0.04), "steep-supply": (0.02, 0.08)}.get(
        market, (0.08, 0.02)
    )
    unit = np.linspace(-1.0, 1.0, n)
    jitter_b = rng.uniform(-0.3, 0.3, n) * 2.0 / (n - 1)
    jitter_s = rng.uniform(-0.3, 0.3, n) * 2.0 / (n - 1)
    buyers = -(unit + jitter_b) * half_buy
    sellers = (unit + jitter_s) * half_sell
    p_ce, _ = equilibrium_price(buyers.tolist(), sellers.tolist())
    target = BAND[0] + p0_position * (BAND[1] - BAND[0])
    shift = target - p_ce
    b = tuple(round(float(x + shift), 6) for x in buyers)
    s = tuple(round(float(x + shift), 6) for x in sellers)
    p0, best = equilibrium_price(b, s)
    return Schedule(market, p0_position, b, s, p0, best)


def clear_pairs(bids: Sequence[Bid]) -> ClearingResult:
    """The main job's clearing without fees: greedy, pair prices, kappa = 1/2."""
    return clear_greedy(bids, None, Fraction(1, 2))


def _positions(schedule: Schedule, strategy: str, attitude: str | float) -> list[Position]:
    n = len(schedule.buyer_limits)
    out = [
        Position(i, 1, Side.BUY, E_WH, lim, attitude, strategy)
        for i, lim in enumerate(schedule.buyer_limits)
    ]
    out += [
        Position(n + j, 1, Side.SELL, E_WH, lim, attitude, strategy)
        for j, lim in enumerate(schedule.seller_limits)
    ]
    return out


def run_schedule(
    schedule: Schedule,
    strategy: str = "aa",
    attitude: str | float = "neutral",
    seed: int = 0,
    intervals: int = 30,
    rounds: int = 5,
) -> list[dict[str, float]]:
    """One market run; per interval ``efficiency``, ``price_error_pct``, ``alpha``."""
    positions = _positions(schedule, strategy, attitude)
    limit = {(p.member, p.side): p.limit_price_per_kwh for p in positions}
    mech = TraderMechanism(rounds, BAND[0], BAND[1], seed)
    p0 = schedule.p0
    out = []
    for t in range(intervals):
        bids = mech.run_rounds(t, positions, clear_pairs)[-1]
        result = clear_pairs(bids)
        e_kwh = np.array([tr.e_wh / 1000.0 for tr in result.trades])
        price = np.array([micro_to_price(tr.buyer_price_per_kwh_micro) for tr in result.trades])
        surplus = sum(
            (limit[(tr.buyer, Side.BUY)] - limit[(tr.seller, Side.SELL)]) * tr.e_wh / 1000.0
            for tr in result.trades
        )
        if e_kwh.size:
            mean = float(np.sum(price * e_kwh) / np.sum(e_kwh))
            error = 100.0 * abs(mean - p0) / p0
            alpha = 100.0 * float(np.sqrt(np.sum(e_kwh * (price - p0) ** 2) / np.sum(e_kwh))) / p0
        else:
            error = alpha = float("nan")
        eff = surplus / schedule.max_surplus if schedule.max_surplus > 0 else float("nan")
        out.append(
            {"interval": float(t + 1), "efficiency": eff, "price_error_pct": error, "alpha": alpha}
        )
    return out


def _markets(positions: Sequence[float]) -> list[tuple[str, float]]:
    return [("sym", pos) for pos in positions] + [("steep-supply", 0.5), ("flat-supply", 0.5)]


def equilibrium_table(
    seeds: Sequence[int] = tuple(range(20)),
    positions: Sequence[float] = P0_POSITIONS,
    strategies: Sequence[tuple[str, str]] = STRATEGIES,
    intervals: int = 30,
    rounds: int = 5,
) -> pd.DataFrame:
    """Every (market, strategy, attitude, seed, interval) run: one row each, plus ``seed``."""
    rows: list[dict[str, float | str]] = []
    for market, pos in _markets(positions):
        for seed in seeds:
            schedule = make_schedule(market, pos, seed)
            for strategy, attitude in strategies:
                for row in run_schedule(schedule, strategy, attitude, seed, intervals, rounds):
                    rows.append(
                        {
                            "market": market,
                            "p0_position": pos,
                            "strategy": strategy,
                            "attitude": attitude,
                            "seed": float(seed),
                            **row,
                        }
                    )
    return pd.DataFrame(rows)


def _ci95(values: pd.Series) -> float:
    """Half-width of the two-sided 95 % t-interval of the mean (nan below 2 values)."""
    clean = values.dropna()
    n = len(clean)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * clean.std(ddof=1) / np.sqrt(n))


def interval_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (market, p0_position, strategy, attitude, interval): the
    experiment's CSV (columns market, p0_position, strategy, attitude, interval,
    efficiency, price_error_pct, alpha)."""
    keys = ["market", "p0_position", "strategy", "attitude", "interval"]
    means = runs.groupby(keys, sort=False)[["efficiency", "price_error_pct", "alpha"]].mean()
    out = means.reset_index()
    out["interval"] = out["interval"].astype(int)
    return out


def equilibrium_summary(runs: pd.DataFrame, at_interval: int = 10) -> pd.DataFrame:
    """Mean and 95 % CI over seeds at ``at_interval`` (and efficiency at interval 1)."""
    keys = ["market", "p0_position", "strategy", "attitude"]
    later = runs[runs["interval"] == at_interval].groupby(keys)
    first = runs[runs["interval"] == 1].groupby(keys)
    table = pd.DataFrame(
        {
            "seeds": later["seed"].nunique(),
            "efficiency": later["efficiency"].mean(),
            "efficiency_ci95": later["efficiency"].agg(_ci95),
            "price_error_pct": later["price_error_pct"].mean(),
            "price_error_ci95": later["price_error_pct"].agg(_ci95),
            "alpha": later["alpha"].mean(),
            "efficiency_interval_1": first["efficiency"].mean(),
            "efficiency_interval_1_ci95": first["efficiency"].agg(_ci95),
        }
    )
    return table.reset_index()


def plot_equilibrium(runs: pd.DataFrame) -> Figure:
    """Mean price error and efficiency per interval, one line per (market, strategy)."""
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(2, 3, sharex=True)
    for col, strategy in enumerate(("aa", "zi", "zip")):
        part = runs[(runs["strategy"] == strategy) & (runs["attitude"] == "neutral")]
        for (market, pos), group in part.groupby(["market", "p0_position"]):
            mean = group.groupby("interval")[["price_error_pct", "efficiency"]].mean()
            label = f"{market} {pos:.1f}"
            axes[0][col].plot(mean.index, mean["price_error_pct"], label=label)
            axes[1][col].plot(mean.index, mean["efficiency"], label=label)
        axes[0][col].set_title(f"{strategy} (neutral)")
        axes[0][col].set_ylabel("price error, % of p0")
        axes[1][col].set_ylabel("efficiency")
        axes[1][col].set_xlabel("interval")
        axes[0][col].axhline(3.0, color="grey", linewidth=0.8, linestyle="--")
        axes[1][col].axhline(0.95, color="grey", linewidth=0.8, linestyle="--")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig
