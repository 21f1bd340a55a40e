"""Headline experiment of issue 7: best response with vs without the fee in the utilities.

Variants, all cleared by the greedy rule:

- ``br_fee``: fees charged by the clearing and included in the members' utilities;
- ``br_fee_unaware``: fees charged by the clearing, members best-respond as if
  there were none (the fee is not in their utilities);
- ``br_no_fee``: no fee anywhere (clearing and utilities);
- ``aa`` (optional): the adaptive-aggressive traders, fees charged by the clearing;
  in :func:`compare_world` they are fee-aware (``TraderMechanism(fees=...)``: quotes
  and trade prices as delivered to their bus);
- ``aa_fee_unaware`` (optional): the same traders seeing undelivered prices (the
  fee is charged but not in their view of the market).

Local consumption is measured on the binding trades of every interval:
``local_share`` = DG energy consumed on the seller's own branch
(``zone[seller_bus] == zone[buyer_bus]``) / all P2P energy, and
``p2p_share`` = P2P energy / the buyers' total forecast consumption. With a
``distance`` table, ``mean_distance`` is the energy-weighted mean distance of trades.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from gridledger.bidding.game import (
    BestResponseError,
    BestResponseMechanism,
    BRSettings,
    payoff_micro,
    players_from_positions,
)
from gridledger.bidding.mechanism import Mechanism, Position, TraderMechanism
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Bid, ClearingResult, Side, Trade
from gridledger.market.units import MICRO
from gridledger.members.member import Member
from gridledger.report.plots import label_axes
from gridledger.sim.loop import positions_for
from gridledger.world import World

__all__ = [
    "VARIANTS",
    "ExperimentTrace",
    "aa_mechanism_for",
    "compare_fee_in_utility",
    "compare_world",
    "local_metrics",
    "plot_experiment",
]

VARIANTS = ("br_fee", "br_fee_unaware", "br_no_fee", "aa", "aa_fee_unaware")


def local_metrics(
    trades: Sequence[Trade],
    consumption_wh: int,
    zone: npt.ArrayLike,
    distance: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """P2P energy, same-branch share, P2P share of consumption, mean trade distance."""
    zone_arr = np.asarray(zone)
    total = sum(t.e_wh for t in trades)
    local = sum(t.e_wh for t in trades if zone_arr[t.seller_bus] == zone_arr[t.buyer_bus])
    out = {
        "p2p_kwh": total / 1000.0,
        "local_kwh": local / 1000.0,
        "local_share": local / total if total else float("nan"),
        "p2p_share": total / consumption_wh if consumption_wh else float("nan"),
    }
    if distance is not None:
        d = np.asarray(distance, dtype=float)
        weighted = sum(t.e_wh * d[t.seller_bus, t.buyer_bus] for t in trades)
        out["mean_distance"] = weighted / total if total else float("nan")
    return out


@dataclass
class ExperimentTrace:
    """What the plots of the experiment need besides the table.

    ``utilities``: per variant, each member's payoff summed over the intervals
    (tokens; quadratic value or cost of its P2P energy plus the money of its
    trades, the game's utilities for every variant, AA included).
    ``rounds``: the ``br_fee`` bids of every round of the interval that took the
    most rounds (``interval``), to show the bids converging.
    """

    utilities: dict[str, dict[int, float]] = field(default_factory=dict)
    rounds: list[list[Bid]] = field(default_factory=list)
    interval: int | None = None


def compare_fee_in_utility(
    members: Sequence[Member],
    positions_by_interval: Sequence[Sequence[Position]],
    fees: npt.ArrayLike,
    kappa: Fraction | float,
    feed_in_per_kwh: float,
    retail_per_kwh: float,
    zone: npt.ArrayLike,
    *,
    interval_h: float = 0.25,
    distance: npt.ArrayLike | None = None,
    settings: BRSettings | None = None,
    variants: Sequence[str] = ("br_fee", "br_fee_unaware", "br_no_fee"),
    aa_mechanism: Callable[[bool], Mechanism] | None = None,
    trace: ExperimentTrace | None = None,
) -> pd.DataFrame:
    """One row per variant: local-consumption metrics summed over the intervals.

    ``positions_by_interval``: ``gridledger.bidding.mechanism.Position`` lists (e.g. from
    ``gridledger.sim.loop.positions_for``). ``aa_mechanism``: factory of a mechanism for
    the ``aa`` variants, called with ``fee_aware`` (e.g.
    ``lambda aware: TraderMechanism(..., fees=fees if aware else None)``); the
    ``aa`` variants are skipped when None.
    ``trace`` (optional) collects per-member utilities and one interval's rounds.
    """
    by_id = {m.id: m for m in members}
    settings = settings or BRSettings()
    fee_table = np.asarray(fees, dtype=np.int64)
    zero = np.zeros_like(fee_table)
    rows = []
    for variant in variants:
        if variant not in VARIANTS:
            message = f"experiment variant {variant!r} is not known; known: {VARIANTS}"
            raise BestResponseError(message)
        clear_fees = zero if variant == "br_no_fee" else fee_table
        br_mech: BestResponseMechanism | None = None
        mech: Mechanism
        if not variant.startswith("aa"):
            br_mech = mech = BestResponseMechanism(
                members,
                interval_h,
                clear_fees,
                kappa,
                feed_in_per_kwh,
                retail_per_kwh,
                replace(settings, fees_in_utility=variant == "br_fee"),
            )
        elif aa_mechanism is not None:
            mech = aa_mechanism(variant == "aa")
        else:
            continue

        def clear(bids: Sequence[Bid], table: np.ndarray = clear_fees) -> ClearingResult:
            return clear_greedy(bids, table, kappa)

        trades: list[Trade] = []
        consumption = 0
        utilities: dict[int, float] = {}
        for interval, positions in enumerate(positions_by_interval):
            consumption += sum(p.e_wh for p in positions if p.side == Side.BUY)
            rounds = mech.run_rounds(interval, positions, clear)
            done = clear(rounds[-1]).trades if rounds and rounds[-1] else ()
            trades.extend(done)
            for player in players_from_positions(by_id, positions):
                value = payoff_micro(player, done) / MICRO
                utilities[player.member] = utilities.get(player.member, 0.0) + value
            if trace is not None and variant == "br_fee" and len(rounds) > len(trace.rounds):
                trace.rounds, trace.interval = rounds, interval
        if trace is not None:
            trace.utilities[variant] = utilities
        row: dict[str, Any] = {"variant": variant}
        row.update(local_metrics(trades, consumption, zone, distance))
        fee_paid = sum(t.e_wh * t.fee_per_kwh_micro for t in trades) / 1e9
        row["fees_tokens"] = fee_paid
        if br_mech is not None:
            diags = br_mech.diagnostics
            row["intervals"] = len(diags)
            row["converged_share"] = (
                float(np.mean([d.converged for d in diags])) if diags else float("nan")
            )
            row["mean_rounds"] = (
                float(np.mean([d.rounds for d in diags])) if diags else float("nan")
            )
            row["cycles"] = sum(d.cycle_round is not None for d in diags)
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant")


def aa_mechanism_for(world: World, fee_aware: bool = True) -> TraderMechanism:
    """The ``aa`` variants' mechanism: AA traders that see quotes and trade prices
    as delivered to their bus (``fee_aware``, ``TraderMechanism(fees=...)``) or not."""
    market = world.scenario.market
    return TraderMechanism(
        market.rounds,
        market.feed_in_per_kwh,
        market.retail_per_kwh,
        world.scenario.seed,
        fees=world.fees if fee_aware else None,
    )


def compare_world(
    world: World,
    intervals: Sequence[int] | None = None,
    *,
    settings: BRSettings | None = None,
    with_aa: bool = True,
    trace: ExperimentTrace | None = None,
) -> pd.DataFrame:
    """:func:`compare_fee_in_utility` on a built :class:`gridledger.world.World`.

    Needs ``world.fees`` (a fee table); zones and hop-free distances come from
    ``world.distances`` (``zone``, ``path_km``).
    """
    if world.fees is None:
        message = "compare_world: the scenario has no network fee (market.network_fee = 'none')"
        raise BestResponseError(message)
    chosen = range(world.scenario.horizon.intervals) if intervals is None else intervals
    positions = [positions_for(world, k) for k in chosen]
    market = world.scenario.market
    variants: tuple[str, ...] = ("br_fee", "br_fee_unaware", "br_no_fee")
    aa: Callable[[bool], Mechanism] | None = None
    if with_aa:
        positions = [[replace(p, strategy="aa") for p in ps] for ps in positions]
        variants = (*variants, "aa", "aa_fee_unaware")
        aa = partial(aa_mechanism_for, world)

    return compare_fee_in_utility(
        world.members.members,
        positions,
        world.fees,
        world.kappa,
        market.feed_in_per_kwh,
        market.retail_per_kwh,
        world.distances.zone,
        interval_h=world.interval_h,
        distance=world.distances.path_km,
        settings=settings,
        variants=variants,
        aa_mechanism=aa,
        trace=trace,
    )


def plot_experiment(table: pd.DataFrame, trace: ExperimentTrace) -> Figure:
    """Local consumption per variant, the ``br_fee`` bids converging over the rounds
    of its longest interval, and each member's utility per variant."""
    fig = Figure(figsize=(15, 4.2))
    ax_share, ax_rounds, ax_util = fig.subplots(1, 3)
    shares = table[["local_share", "p2p_share"]].rename(
        columns={"local_share": "DG consumed on own branch", "p2p_share": "P2P share of demand"}
    )
    shares.plot.bar(ax=ax_share, rot=20)
    ax_share.set_ylim(0, 1)
    ax_share.set_title("Local consumption of DG energy")
    ax_share.legend(fontsize=7)
    by_member: dict[tuple[int, Side], list[tuple[int, float]]] = {}
    for k, bids in enumerate(trace.rounds, start=1):
        for bid in bids:
            by_member.setdefault((bid.member, bid.side), []).append(
                (k, bid.price_per_kwh_micro / MICRO)
            )
    for (_member, side), points in by_member.items():
        rounds, prices = zip(*points, strict=True)
        colour = "tab:blue" if side == Side.BUY else "tab:orange"
        ax_rounds.plot(rounds, prices, color=colour, alpha=0.6, lw=1, marker=".", ms=3)
    ax_rounds.set_xlabel("best-response round")
    ax_rounds.set_ylabel("bid price (tokens/kWh)")
    ax_rounds.set_title(
        f"br_fee bids per round (blue buy, orange sell), interval #{trace.interval}"
    )
    members = sorted({m for u in trace.utilities.values() for m in u})
    width = 0.8 / max(len(trace.utilities), 1)
    for k, (variant, util) in enumerate(trace.utilities.items()):
        xs = np.arange(len(members)) + k * width
        ax_util.bar(xs, [util.get(m, 0.0) for m in members], width=width, label=variant)
    ax_util.set_xticks(np.arange(len(members)) + 0.4, [str(m) for m in members], fontsize=6)
    label_axes(ax_util, "member", "utility over the intervals (tokens)", "Utilities per member")
    fig.tight_layout()
    return fig
