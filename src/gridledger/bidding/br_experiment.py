"""Headline experiment of issue 7: best response with vs without the fee in the utilities.

Variants, all cleared by the greedy rule:

- ``br_fee``: fees charged by the clearing and included in the members' utilities;
- ``br_fee_unaware``: fees charged by the clearing, members best-respond as if
  there were none (the fee is not in their utilities);
- ``br_no_fee``: no fee anywhere (clearing and utilities);
- ``aa`` (optional): the adaptive-aggressive traders, fees charged by the clearing;
  in :func:`compare_world` they are fee-aware (``TraderMechanism(fees=...)``: quotes
  and trade prices as delivered to their bus).

Local consumption is measured on the binding trades of every interval:
``local_share`` = DG energy consumed on the seller's own branch
(``zone[seller_bus] == zone[buyer_bus]``) / all P2P energy, and
``p2p_share`` = P2P energy / the buyers' total forecast consumption. With a
``distance`` table, ``mean_distance`` is the energy-weighted mean distance of trades.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridledger.bidding.best_response import BestResponseError, BestResponseMechanism, BRSettings
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Bid, ClearingResult, Side, Trade
from gridledger.members.member import Member

__all__ = [
    "VARIANTS",
    "aa_mechanism_for",
    "compare_fee_in_utility",
    "compare_world",
    "local_metrics",
]

VARIANTS = ("br_fee", "br_fee_unaware", "br_no_fee", "aa")


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


def compare_fee_in_utility(
    members: Sequence[Member],
    positions_by_interval: Sequence[Sequence[Any]],
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
    aa_mechanism: Callable[[], Any] | None = None,
) -> pd.DataFrame:
    """One row per variant: local-consumption metrics summed over the intervals.

    ``positions_by_interval``: ``gridledger.mechanisms.Position`` lists (e.g. from
    ``simulation.positions_for``). ``aa_mechanism``: factory of a mechanism for
    the ``aa`` variant (e.g. ``lambda: TraderMechanism(...)``); skipped when None.
    """
    settings = settings or BRSettings()
    fee_table = np.asarray(fees, dtype=np.int64)
    zero = np.zeros_like(fee_table)
    rows = []
    for variant in variants:
        if variant not in VARIANTS:
            message = f"experiment variant {variant!r} is not known; known: {VARIANTS}"
            raise BestResponseError(message)
        if variant == "aa" and aa_mechanism is None:
            continue
        clear_fees = zero if variant == "br_no_fee" else fee_table
        if variant == "aa":
            mech: Any = aa_mechanism() if aa_mechanism is not None else None
        else:
            mech = BestResponseMechanism(
                members,
                interval_h,
                clear_fees,
                kappa,
                feed_in_per_kwh,
                retail_per_kwh,
                replace(settings, fees_in_utility=variant == "br_fee"),
            )

        def clear(bids: Sequence[Bid], table: np.ndarray = clear_fees) -> ClearingResult:
            return clear_greedy(bids, table, kappa)

        trades: list[Trade] = []
        consumption = 0
        for interval, positions in enumerate(positions_by_interval):
            consumption += sum(p.e_wh for p in positions if p.side == Side.BUY)
            rounds = mech.run_rounds(interval, positions, clear)
            if rounds and rounds[-1]:
                trades.extend(clear(rounds[-1]).trades)
        row: dict[str, Any] = {"variant": variant}
        row.update(local_metrics(trades, consumption, zone, distance))
        fee_paid = sum(t.e_wh * t.fee_per_kwh_micro for t in trades) / 1e9
        row["fees_tokens"] = fee_paid
        if variant != "aa":
            diags = mech.diagnostics
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


def aa_mechanism_for(world: Any) -> Any:
    """The ``aa`` variant's mechanism: fee-aware AA traders (``TraderMechanism(fees=...)``),
    so that quotes and trade prices are seen as delivered to each member's bus."""
    from gridledger.mechanisms import TraderMechanism

    market = world.scenario.market
    return TraderMechanism(
        market.rounds,
        market.feed_in_per_kwh,
        market.retail_per_kwh,
        world.scenario.seed,
        fees=world.fees,
    )


def compare_world(
    world: Any,
    intervals: Sequence[int] | None = None,
    *,
    settings: BRSettings | None = None,
    with_aa: bool = True,
) -> pd.DataFrame:
    """:func:`compare_fee_in_utility` on a built ``simulation.World``.

    Needs ``world.fees`` (a fee table); zones and hop-free distances come from
    ``world.distances`` (``zone``, ``path_km``).
    """
    from gridledger.simulation import positions_for

    if world.fees is None:
        message = "compare_world: the scenario has no network fee (market.network_fee = 'none')"
        raise BestResponseError(message)
    chosen = range(world.scenario.horizon.intervals) if intervals is None else intervals
    positions = [positions_for(world, k) for k in chosen]
    market = world.scenario.market
    variants: tuple[str, ...] = ("br_fee", "br_fee_unaware", "br_no_fee")
    aa = None
    if with_aa:
        positions = [[replace(p, strategy="aa") for p in ps] for ps in positions]
        variants = (*variants, "aa")

        def aa() -> Any:
            return aa_mechanism_for(world)

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
    )
