"""Forecast-error study: how forecast errors turn into imbalance, penalties and lost trade.

:func:`forecast_error_study` runs one scenario off chain once per forecast error
level, with the ``noisy`` forecaster (``members.forecaster = "noisy"``,
``members.forecast_nmae = level``; the error pattern is the same at every level,
only scaled, because the forecaster calibrates the realised nMAE of each load and
PV series to the level). Members bid on forecasts; meters report actual net
energy; settlement applies the deviation rules of
:mod:`gridledger.market.settlement` (docs/settlement.md).

Columns of the result (one row per level):

- ``level``: nominal nMAE of each load and PV series;
- ``forecast_nmae``: realised nMAE of the members' *net* forecasts over the
  simulated intervals, ``sum |f - a| / sum |a|`` (net nMAE differs from the level
  because load and PV errors partly cancel or add);
- ``imbalance_kwh``: sum over traders and intervals of ``|actual - scheduled|``;
- ``imbalance_cost``: tokens the deviations cost beyond settling them at the
  trade prices (``MemberSettlement.imbalance_cost_micro``); ``penalties``: the
  part paid by short sellers to their buyers;
- ``p2p_traded_kwh``: contracted (after curtailment) P2P energy,
  ``p2p_delivered_kwh``: what sellers actually delivered;
- ``shortfall_kwh``: the part of the imbalance that breaks contracts (sellers
  short, buyers' untaken energy); the rest is energy beyond the contracts, which
  at perfect forecasts is the untraded remainder of partly cleared orders;
- ``p2p_welfare``: welfare of the contracted trades (tokens, members' true values
  and costs, net of network fees, :func:`gridledger.world.welfare_micro`),
  ``p2p_welfare_delivered``: the same on the energy actually delivered;
- ``grid_import_kwh``, ``grid_export_kwh``, ``conservation_ok`` (every interval's
  settlement conserves money exactly), ``runtime_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridledger.errors import ScenarioError
from gridledger.market.settlement import tolerance_bp_from_pct
from gridledger.scenario import Scenario, validate_scenario
from gridledger.sim.loop import RunResult, run
from gridledger.world import build_world, welfare_micro

__all__ = ["forecast_error_study", "plot_forecast_study", "study_row"]

log = logging.getLogger(__name__)

DEFAULT_LEVELS = (0.0, 0.05, 0.10, 0.20)


def _scenario_at(scenario: Scenario, level: float, intervals: int | None) -> Scenario:
    data = scenario.model_dump(mode="python")
    data["members"]["forecaster"] = "noisy"
    data["members"]["forecast_nmae"] = float(level)
    data["chain"]["backend"] = "none"
    if intervals is not None:
        data["horizon"]["intervals"] = int(intervals)
    return validate_scenario(data, f"{scenario.name} (forecast study, nMAE {level})")


def study_row(result: RunResult, level: float) -> dict[str, Any]:
    """The study's figures of one finished off-chain run."""
    world = result.world
    n = len(result.outcomes)
    forecast = world.members.forecast_net_kw[:, :n]
    actual = world.members.actual_net_kw[:, :n]
    denominator = float(np.abs(actual).sum())
    nmae = float(np.abs(forecast - actual).sum()) / denominator if denominator else 0.0
    imbalance_wh = shortfall_wh = cost = penalties = traded_wh = delivered_wh = 0
    welfare = welfare_delivered = 0
    import_wh = export_wh = 0
    conserved = True
    for out in result.outcomes:
        st = out.settlement
        imbalance_wh += st.imbalance_wh
        shortfall_wh += st.shortfall_wh
        cost += st.imbalance_cost_micro
        penalties += st.penalties_micro
        traded_wh += sum(t.e_wh for t in out.settlement_trades)
        delivered_wh += sum(m.p2p_sold_wh for m in st.members.values())
        import_wh += sum(m.grid_import_wh for m in st.members.values())
        export_wh += sum(m.grid_export_wh for m in st.members.values())
        welfare += welfare_micro(world, out.settlement_trades)
        delivered = [
            replace(t, e_wh=e)
            for t, e in zip(out.settlement_trades, st.trade_delivered_wh, strict=True)
        ]
        welfare_delivered += welfare_micro(world, delivered)
        conserved = conserved and st.conserved()
    return {
        "level": float(level),
        "forecast_nmae": round(nmae, 6),
        "imbalance_kwh": imbalance_wh / 1000.0,
        "shortfall_kwh": shortfall_wh / 1000.0,
        "imbalance_cost": cost / 1e6,
        "penalties": penalties / 1e6,
        "p2p_traded_kwh": traded_wh / 1000.0,
        "p2p_delivered_kwh": delivered_wh / 1000.0,
        "p2p_welfare": welfare / 1e6,
        "p2p_welfare_delivered": welfare_delivered / 1e6,
        "grid_import_kwh": import_wh / 1000.0,
        "grid_export_kwh": export_wh / 1000.0,
        "conservation_ok": conserved,
        "intervals": n,
        "runtime_s": round(result.runtime_s, 3),
    }


def forecast_error_study(
    scenario: Scenario,
    levels: Sequence[float] = DEFAULT_LEVELS,
    *,
    intervals: int | None = None,
    tolerance_pct: float | None = None,
) -> pd.DataFrame:
    """Run ``scenario`` off chain at each forecast error level; one row per level.

    ``intervals`` shortens the horizon (e.g. for tests); the default keeps the
    scenario's. ``tolerance_pct`` overrides the settlement tolerance band (percent
    of each trade's energy); None keeps what the scenario's world uses.
    Columns: see the module docstring (plus ``tolerance_bp``).
    """
    if not levels:
        message = "forecast_error_study: levels is empty; give at least one nMAE level"
        raise ScenarioError(message)
    rows = []
    for level in levels:
        if not 0 <= level <= 1:
            message = f"forecast_error_study: level {level} outside 0..1 (nMAE as a fraction)"
            raise ScenarioError(message)
        started = time.perf_counter()
        at_level = _scenario_at(scenario, level, intervals)
        world = build_world(at_level)
        if tolerance_pct is not None:
            world.tariffs = replace(
                world.tariffs, tolerance_bp=tolerance_bp_from_pct(tolerance_pct)
            )
        result = run(at_level, world=world)
        row = study_row(result, level)
        row["tolerance_bp"] = world.tariffs.tolerance_bp
        log.info(
            "forecast study %s: level %.2f nMAE %.3f imbalance %.1f kWh cost %.2f in %.1f s",
            scenario.name,
            level,
            row["forecast_nmae"],
            row["imbalance_kwh"],
            row["imbalance_cost"],
            time.perf_counter() - started,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def plot_forecast_study(df: pd.DataFrame) -> Figure:
    """Four panels against the realised net nMAE: imbalance and contract shortfall,
    imbalance cost and penalties, P2P energy and P2P welfare (contracted and delivered)."""
    fig = Figure(figsize=(9.0, 6.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    x = df["forecast_nmae"] * 100.0
    panels: list[tuple[Axes, list[tuple[str, str]], str]] = [
        (
            axes[0, 0],
            [
                ("imbalance_kwh", "imbalance |actual - scheduled|"),
                ("shortfall_kwh", "contract shortfall"),
            ],
            "energy (kWh)",
        ),
        (
            axes[0, 1],
            [("imbalance_cost", "imbalance cost"), ("penalties", "penalties paid")],
            "tokens",
        ),
        (
            axes[1, 0],
            [("p2p_traded_kwh", "P2P contracted"), ("p2p_delivered_kwh", "P2P delivered")],
            "energy (kWh)",
        ),
        (
            axes[1, 1],
            [("p2p_welfare", "P2P welfare (contracted)"), ("p2p_welfare_delivered", "delivered")],
            "tokens",
        ),
    ]
    for ax, series, ylabel in panels:
        for column, label in series:
            ax.plot(x, df[column], marker="o", label=label)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    for ax in axes[1]:
        ax.set_xlabel("realised net forecast nMAE (%)")
    fig.suptitle("Forecast errors: imbalance and P2P trade")
    return fig
