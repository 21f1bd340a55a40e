"""AA market experiments: the attitude study and the original convergence market.

Both run the project's own round mechanism
(:class:`gridledger.bidding.mechanism.TraderMechanism`: K rounds per interval, rounds
1..K-1 indicative, round K binding) with the main job's clearing rule, greedy with pair
prices (:func:`gridledger.studies.aa_equilibrium.clear_pairs`, kappa = 1/2, no fees).

- :func:`attitude_run` / :func:`attitude_table`: matched markets (each limit held by one
  member of every attitude), per attitude the trade rate and the margin per traded kWh,
  over many seeds with 95 % t-intervals of the means and of the adjacent differences.
- :func:`convergence_run`: the original stationary symmetric market (p_ce = 0.175 at
  the band's midpoint; kept for the ``aa-convergence`` experiment). The robust test of
  convergence wherever p0 lies is :mod:`gridledger.studies.aa_equilibrium`.
  :func:`convergence_table` runs it for each attitude, :func:`plot_convergence` draws
  the relative error per interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from gridledger.bidding.mechanism import Position, TraderMechanism
from gridledger.bidding.risk import ATTITUDE_NAMES
from gridledger.errors import GridledgerError
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import micro_to_price
from gridledger.studies.aa_equilibrium import clear_pairs, unit_equilibrium

__all__ = [
    "FEED_IN_PER_KWH",
    "RETAIL_PER_KWH",
    "attitude_run",
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
    """(p_ce, q_ce) for unit demands/supplies (:func:`unit_equilibrium`); raises without trade."""
    p_ce, q_ce, _ = unit_equilibrium(buyer_limits, seller_limits)
    if q_ce == 0:
        message = (
            "no competitive equilibrium with trade: every buyer limit is below every seller limit"
        )
        raise GridledgerError(message)
    return p_ce, q_ce


def _interval(
    mech: TraderMechanism, interval: int, positions: list[Position]
) -> tuple[list[list[Bid]], ClearingResult]:
    rounds = mech.run_rounds(interval, positions, clear_pairs)
    return rounds, clear_pairs(rounds[-1])


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
    ``attitude``. Row keys: ``interval`` (1-based), ``price`` (energy-weighted mean
    binding trade price),
    ``rel_error`` = |price - p_ce| / p_ce, ``smith_alpha`` (over the interval's binding
    trades), ``traded_kwh``, ``efficiency``
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
        prices = [micro_to_price(tr.buyer_price_per_kwh_micro) for tr in result.trades]
        weights = [tr.e_wh for tr in result.trades]
        price = float(np.average(prices, weights=weights)) if prices else float("nan")
        surplus = sum(
            (limits[tr.buyer] - limits[tr.seller]) * tr.e_wh / 1000.0 for tr in result.trades
        )
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


def attitude_run(
    seed: int,
    n_per_side: int = 20,
    intervals: int = 30,
    rounds: int = 5,
    participation: float = 0.8,
) -> dict[str, dict[str, float]]:
    """Trade rate and margin by risk attitude on one seeded market (matched design).

    ``n_per_side`` buyer limits (uniform in [0.12, 0.28]) and seller limits (uniform in
    [0.07, 0.23]) tokens/kWh, each limit held by three members, one of every attitude,
    who also offer the same energy whenever present: the attitudes differ in nothing
    else. Each interval every limit is present with probability ``participation``
    (all three holders together) and offers 0.5..3 kWh (seeded), so the clearing moves
    from interval to interval. Clearing: greedy with pair prices (kappa = 1/2), the
    main job's rule, without fees. Only the binding round counts. Per attitude:
    ``offered_kwh``, ``traded_kwh``, ``trade_rate`` = traded / offered,
    ``margin_per_kwh`` = surplus per traded kWh (buyer: limit - price paid; seller:
    price received - limit).
    """
    rng = np.random.default_rng(seed)
    members: list[_Member] = []
    for side, low, high in ((Side.BUY, 0.12, 0.28), (Side.SELL, 0.07, 0.23)):
        for limit in rng.uniform(low, high, n_per_side):
            for attitude in ATTITUDE_NAMES:
                members.append(_Member(len(members), side, float(limit), attitude))
    by_id = {m.member: m for m in members}
    n_att = len(ATTITUDE_NAMES)
    offered = dict.fromkeys(ATTITUDE_NAMES, 0.0)
    traded = dict.fromkeys(ATTITUDE_NAMES, 0.0)
    surplus = dict.fromkeys(ATTITUDE_NAMES, 0.0)
    mech = TraderMechanism(rounds, FEED_IN_PER_KWH, RETAIL_PER_KWH, seed)
    for t in range(intervals):
        present = np.repeat(rng.random(len(members) // n_att) < participation, n_att)
        e_wh = np.repeat(rng.integers(500, 3001, len(members) // n_att), n_att)
        positions = [
            Position(m.member, 1, m.side, int(e), m.limit_per_kwh, m.attitude, "aa")
            for m, here, e in zip(members, present, e_wh, strict=True)
            if here
        ]
        for pos in positions:
            offered[str(by_id[pos.member].attitude)] += pos.e_wh / 1000.0
        rounds_bids = mech.run_rounds(t, positions, clear_pairs)
        result = clear_pairs(rounds_bids[-1])
        for tr in result.trades:
            e_kwh = tr.e_wh / 1000.0
            buyer, seller = by_id[tr.buyer], by_id[tr.seller]
            traded[str(buyer.attitude)] += e_kwh
            traded[str(seller.attitude)] += e_kwh
            paid = micro_to_price(tr.buyer_price_per_kwh_micro)
            got = micro_to_price(tr.seller_price_per_kwh_micro)
            surplus[str(buyer.attitude)] += (buyer.limit_per_kwh - paid) * e_kwh
            surplus[str(seller.attitude)] += (got - seller.limit_per_kwh) * e_kwh
    return {
        name: {
            "offered_kwh": offered[name],
            "traded_kwh": traded[name],
            "trade_rate": traded[name] / offered[name] if offered[name] else float("nan"),
            "margin_per_kwh": surplus[name] / traded[name] if traded[name] else float("nan"),
        }
        for name in ATTITUDE_NAMES
    }


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high) of the two-sided 95 % t-interval of the mean of ``values``."""
    n = values.size
    mean = float(values.mean())
    if n < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def attitude_table(
    seeds: Sequence[int] = tuple(range(50)), intervals: int = 30, n_per_side: int = 20
) -> pd.DataFrame:
    """:func:`attitude_run` over ``seeds``: per attitude, and per adjacent difference.

    Rows ``averse``, ``neutral``, ``seeking`` (mean over seeds of the per-seed trade
    rate and margin per kWh, with the 95 % t-interval of the mean), then the adjacent
    differences ``averse - neutral``, ``neutral - seeking`` (paired by seed: same
    market, same limits), with their 95 % t-intervals. A difference is significant when
    its interval excludes zero (column ``significant``).
    """
    per_seed: dict[str, dict[str, list[float]]] = {
        name: {"trade_rate": [], "margin_per_kwh": []} for name in ATTITUDE_NAMES
    }
    for seed in seeds:
        result = attitude_run(seed, n_per_side=n_per_side, intervals=intervals)
        for name in ATTITUDE_NAMES:
            for key in ("trade_rate", "margin_per_kwh"):
                per_seed[name][key].append(result[name][key])
    rows: list[dict[str, float | str | bool]] = []

    def row(label: str, rates: np.ndarray, margins: np.ndarray) -> dict[str, float | str | bool]:
        rate, rate_low, rate_high = _t_interval(rates)
        margin, margin_low, margin_high = _t_interval(margins)
        return {
            "attitude": label,
            "seeds": float(rates.size),
            "trade_rate": rate,
            "trade_rate_ci_low": rate_low,
            "trade_rate_ci_high": rate_high,
            "margin_per_kwh": margin,
            "margin_ci_low": margin_low,
            "margin_ci_high": margin_high,
            "significant": bool(
                label.count(" - ")
                and (rate_low > 0 or rate_high < 0)
                and (margin_low > 0 or margin_high < 0)
            ),
        }

    arrays = {
        name: (np.array(v["trade_rate"]), np.array(v["margin_per_kwh"]))
        for name, v in per_seed.items()
    }
    for name in ("averse", "neutral", "seeking"):
        rows.append(row(name, *arrays[name]))
    for high, low in (("averse", "neutral"), ("neutral", "seeking")):
        rows.append(
            row(
                f"{high} - {low}",
                arrays[high][0] - arrays[low][0],
                arrays[high][1] - arrays[low][1],
            )
        )
    return pd.DataFrame(rows)
