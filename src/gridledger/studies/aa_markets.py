"""Reproducible AA market experiments used by the tests, the docs and the report.

Both experiments run the project's own round mechanism
(:class:`gridledger.bidding.mechanism.TraderMechanism`: K rounds per interval, rounds
1..K-1 indicative, round K binding) with the uniform-price rule
:func:`gridledger.market.clear_uniform` on integer bids (:mod:`gridledger.market.units`).

- :func:`convergence_run`: a stationary symmetric market (n buyers, n sellers,
  evenly spread limit prices, 1 kWh each); per interval the binding price, its
  relative error to the competitive equilibrium price and the allocative efficiency.
  :func:`convergence_table` runs it for each attitude, :func:`plot_convergence`
  draws the relative error per interval.
- :func:`attitude_table`: a seeded market with members of the three attitudes and
  changing participation; per attitude the share of offered energy that traded
  and the surplus per traded kWh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gridledger.bidding.mechanism import Position, TraderMechanism
from gridledger.bidding.risk import ATTITUDE_NAMES
from gridledger.errors import GridledgerError
from gridledger.market.double_auction import clear_uniform
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import micro_to_price

__all__ = [
    "FEED_IN_PER_KWH",
    "RETAIL_PER_KWH",
    "attitude_table",
    "competitive_equilibrium",
    "convergence_run",
    "convergence_table",
    "plot_convergence",
]

FEED_IN_PER_KWH = 0.05
RETAIL_PER_KWH = 0.30


@dataclass(frozen=True, slots=True)
class _Member:
    member: int
    side: Side
    limit_per_kwh: float
    attitude: str | float


def competitive_equilibrium(
    buyer_limits: Sequence[float], seller_limits: Sequence[float]
) -> tuple[float, int]:
    """(p_ce, q_ce) for unit demands/supplies: midpoint of the equilibrium price interval."""
    buys = sorted(buyer_limits, reverse=True)
    sells = sorted(seller_limits)
    k = 0
    while k < min(len(buys), len(sells)) and buys[k] >= sells[k]:
        k += 1
    if k == 0:
        message = (
            "no competitive equilibrium with trade: every buyer limit is below every seller limit"
        )
        raise GridledgerError(message)
    low = max(sells[k - 1], buys[k] if k < len(buys) else -np.inf)
    high = min(buys[k - 1], sells[k] if k < len(sells) else np.inf)
    return (low + high) / 2.0, k


def _interval(
    mech: TraderMechanism, interval: int, positions: list[Position]
) -> tuple[list[list[Bid]], ClearingResult]:
    rounds = mech.run_rounds(interval, positions, clear_uniform)
    return rounds, clear_uniform(rounds[-1])


def convergence_run(
    intervals: int = 10,
    rounds: int = 5,
    n_per_side: int = 10,
    attitude: str | float = "neutral",
    seed: int = 0,
) -> list[dict[str, float]]:
    """Stationary symmetric market; one row per interval.

    Buyer limits ``0.09 + 0.02 i`` and seller limits ``0.08 + 0.02 j`` tokens/kWh
    (i, j = 0..n-1; for n = 10: p_ce = 0.175, q_ce = 5 kWh), 1 kWh each, all AA with
    ``attitude``. Row keys: ``interval`` (1-based), ``price`` (binding uniform price),
    ``rel_error`` = |price - p_ce| / p_ce, ``smith_alpha`` (over the interval's binding
    trades, = rel_error under one uniform price), ``traded_kwh``, ``efficiency``
    (realised surplus / competitive surplus), ``p_ce``.
    """
    buyer_limits = [0.09 + 0.02 * i for i in range(n_per_side)]
    seller_limits = [0.08 + 0.02 * j for j in range(n_per_side)]
    p_ce, _ = competitive_equilibrium(buyer_limits, seller_limits)
    best_surplus = sum(
        max(b - s, 0.0)
        for b, s in zip(sorted(buyer_limits, reverse=True), sorted(seller_limits), strict=True)
    )
    members = [_Member(i, Side.BUY, lim, attitude) for i, lim in enumerate(buyer_limits)] + [
        _Member(n_per_side + j, Side.SELL, lim, attitude) for j, lim in enumerate(seller_limits)
    ]
    limits = {m.member: m.limit_per_kwh for m in members}
    positions = [
        Position(m.member, 1, m.side, 1000, m.limit_per_kwh, m.attitude, "aa") for m in members
    ]
    mech = TraderMechanism(rounds, FEED_IN_PER_KWH, RETAIL_PER_KWH, seed)
    out = []
    for t in range(intervals):
        _, result = _interval(mech, t, positions)
        price = (
            micro_to_price(result.price_per_kwh_micro)
            if result.price_per_kwh_micro is not None
            else float("nan")
        )
        surplus = sum(
            (limits[tr.buyer] - limits[tr.seller]) * tr.e_wh / 1000.0 for tr in result.trades
        )
        prices = [micro_to_price(tr.buyer_price_per_kwh_micro) for tr in result.trades]
        alpha = (
            float(np.sqrt(np.mean([(p - p_ce) ** 2 for p in prices])) / p_ce)
            if prices
            else float("nan")
        )
        out.append(
            {
                "interval": float(t + 1),
                "price": price,
                "rel_error": abs(price - p_ce) / p_ce,
                "smith_alpha": alpha,
                "traded_kwh": result.traded_wh / 1000.0,
                "efficiency": surplus / best_surplus,
                "p_ce": p_ce,
            }
        )
    return out


def convergence_table(
    intervals: int = 10, seed: int = 0, attitudes: Sequence[str] = ("averse", "neutral", "seeking")
) -> pd.DataFrame:
    """:func:`convergence_run` for each of ``attitudes``, stacked, with an ``attitude`` column."""
    frames = [
        pd.DataFrame(convergence_run(intervals=intervals, attitude=attitude, seed=seed)).assign(
            attitude=attitude
        )
        for attitude in attitudes
    ]
    return pd.concat(frames, ignore_index=True)


def plot_convergence(table: pd.DataFrame) -> Figure:
    """Relative error of the binding price to p_ce per interval, one line per attitude."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    for attitude, part in table.groupby("attitude"):
        ax.plot(part["interval"], part["rel_error"], marker="o", label=str(attitude))
    ax.set_xlabel("interval")
    ax.set_ylabel("|price - p_ce| / p_ce")
    ax.set_title("AA convergence to the competitive equilibrium")
    ax.legend()
    fig.tight_layout()
    return fig


def attitude_table(
    seed: int = 7,
    n_per_side: int = 30,
    intervals: int = 40,
    rounds: int = 5,
    participation: float = 0.8,
) -> list[dict[str, float | str]]:
    """Trade rate and margin by risk attitude on a seeded market.

    ``n_per_side`` buyer limits (uniform in [0.12, 0.28]) and seller limits (uniform
    in [0.07, 0.23]) tokens/kWh, each limit held by one member of every attitude
    (a matched design: the attitudes differ in nothing else); each interval
    every member is present with probability ``participation`` and offers
    0.5..3 kWh (seeded), so the clearing price moves from interval to interval.
    Only the binding round counts. Rows (one per attitude): ``attitude``,
    ``members``, ``offered_kwh``, ``traded_kwh``, ``trade_rate`` = traded / offered,
    ``margin_per_kwh`` = surplus per traded kWh (buyer: limit - price; seller:
    price - limit), ``surplus`` (tokens).
    """
    rng = np.random.default_rng(seed)
    members: list[_Member] = []
    for side, low, high in ((Side.BUY, 0.12, 0.28), (Side.SELL, 0.07, 0.23)):
        for limit in rng.uniform(low, high, n_per_side):
            for attitude in ATTITUDE_NAMES:
                members.append(_Member(len(members), side, float(limit), attitude))
    by_id = {m.member: m for m in members}
    offered = dict.fromkeys(ATTITUDE_NAMES, 0.0)
    traded = dict.fromkeys(ATTITUDE_NAMES, 0.0)
    surplus = dict.fromkeys(ATTITUDE_NAMES, 0.0)
    mech = TraderMechanism(rounds, FEED_IN_PER_KWH, RETAIL_PER_KWH, seed)
    for t in range(intervals):
        present = rng.random(len(members)) < participation
        e_wh = rng.integers(500, 3001, len(members))
        positions = [
            Position(m.member, 1, m.side, int(e), m.limit_per_kwh, m.attitude, "aa")
            for m, here, e in zip(members, present, e_wh, strict=True)
            if here
        ]
        for p in positions:
            offered[str(by_id[p.member].attitude)] += p.e_wh / 1000.0
        _, result = _interval(mech, t, positions)
        for tr in result.trades:
            e_kwh = tr.e_wh / 1000.0
            price = micro_to_price(tr.buyer_price_per_kwh_micro)
            buyer, seller = by_id[tr.buyer], by_id[tr.seller]
            traded[str(buyer.attitude)] += e_kwh
            traded[str(seller.attitude)] += e_kwh
            surplus[str(buyer.attitude)] += (buyer.limit_per_kwh - price) * e_kwh
            surplus[str(seller.attitude)] += (price - seller.limit_per_kwh) * e_kwh
    rows: list[dict[str, float | str]] = []
    for name in ATTITUDE_NAMES:
        rows.append(
            {
                "attitude": name,
                "members": float(sum(1 for m in members if m.attitude == name)),
                "offered_kwh": offered[name],
                "traded_kwh": traded[name],
                "trade_rate": traded[name] / offered[name] if offered[name] else float("nan"),
                "margin_per_kwh": surplus[name] / traded[name] if traded[name] else float("nan"),
                "surplus": surplus[name],
            }
        )
    return rows
