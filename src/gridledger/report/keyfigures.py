"""The key figures of ``summary.json``, grouped, with units and one-line explanations.

:data:`KEY_FIGURES` names every shown key once: its group (market, grid, settlement,
chain), a readable label, its unit and what it means. :func:`grouped` turns a summary
into rows ready for a table; report.html and the explorer's overview both show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GROUPS", "KEY_FIGURES", "KeyFigure", "format_value", "grouped"]


@dataclass(frozen=True, slots=True)
class KeyFigure:
    """One key of ``summary.json`` as a person reads it."""

    key: str
    group: str
    label: str
    unit: str
    explanation: str


GROUPS = ("market", "grid", "settlement", "chain")

_F = KeyFigure
KEY_FIGURES: tuple[KeyFigure, ...] = (
    _F("traded_kwh", "market", "Energy traded P2P", "kWh", "Energy sold member to member."),
    _F(
        "p2p_share",
        "market",
        "P2P share of consumption",
        "%",
        "Traded kWh over the members' metered load.",
    ),
    _F(
        "mean_buyer_price_per_kwh",
        "market",
        "Mean buyer price",
        "tokens/kWh",
        "Energy-weighted price buyers paid, use-of-system fee included.",
    ),
    _F(
        "mean_seller_price_per_kwh",
        "market",
        "Mean seller price",
        "tokens/kWh",
        "Energy-weighted price sellers received.",
    ),
    _F(
        "mean_price_per_kwh",
        "market",
        "Mean uniform clearing price",
        "tokens/kWh",
        "Mean of the intervals' uniform prices (uniform rule only).",
    ),
    _F(
        "social_welfare",
        "market",
        "Social welfare",
        "tokens",
        "Gains from trade at members' true values and costs, net of fees.",
    ),
    _F(
        "efficiency",
        "market",
        "Efficiency",
        "%",
        "Welfare over the competitive optimum (LP clearing of truthful orders).",
    ),
    _F(
        "welfare_vs_optimal",
        "market",
        "Clearing surplus vs optimum",
        "%",
        "The rule's surplus at the binding bids over the LP optimum of the same bids.",
    ),
    _F(
        "network_fee_revenue",
        "market",
        "Use-of-system fee revenue",
        "tokens",
        "Fees charged for the distance energy travels.",
    ),
    _F(
        "mean_trade_distance_km",
        "market",
        "Mean trade distance",
        "km",
        "Energy-weighted path length from seller to buyer.",
    ),
    _F(
        "local_share",
        "market",
        "Local share of trades",
        "%",
        "Traded kWh whose seller and buyer share a feeder branch.",
    ),
    _F(
        "dg_local_share",
        "market",
        "Local use of DG energy",
        "%",
        "DG/PV energy sold within its own branch, over all DG/PV generated.",
    ),
    _F(
        "v_min_pu",
        "grid",
        "Lowest bus voltage",
        "p.u.",
        "After security management, over every bus and interval.",
    ),
    _F(
        "v_max_pu",
        "grid",
        "Highest bus voltage",
        "p.u.",
        "After security management, over every bus and interval.",
    ),
    _F(
        "max_line_loading_pct",
        "grid",
        "Highest line loading",
        "pct",
        "Largest loading of any line in any interval.",
    ),
    _F(
        "violations_before",
        "grid",
        "Limit violations before",
        "count",
        "Voltage or loading violations of the market schedule.",
    ),
    _F(
        "violations_after",
        "grid",
        "Limit violations after",
        "count",
        "Violations left after curtailment.",
    ),
    _F(
        "curtailed_kwh",
        "grid",
        "Curtailed energy",
        "kWh",
        "Traded energy cut to keep the feeder within limits.",
    ),
    _F(
        "lost_surplus",
        "grid",
        "Surplus lost to curtailment",
        "tokens",
        "Welfare the curtailments cost.",
    ),
    _F(
        "grid_import_kwh",
        "grid",
        "Grid import",
        "kWh",
        "Energy members bought from the grid at retail.",
    ),
    _F(
        "grid_export_kwh",
        "grid",
        "Grid export",
        "kWh",
        "Energy members sold to the grid at feed-in.",
    ),
    _F(
        "imbalance_kwh",
        "settlement",
        "Imbalance",
        "kWh",
        "Metered energy that differs from the schedule.",
    ),
    _F(
        "imbalance_cost",
        "settlement",
        "Imbalance cost",
        "tokens",
        "What the deviations from schedule cost.",
    ),
    _F(
        "shortfall_kwh",
        "settlement",
        "Delivery shortfall",
        "kWh",
        "Sold energy a seller did not deliver.",
    ),
    _F("penalties", "settlement", "Penalties", "tokens", "Forecast-error penalties charged."),
    _F(
        "forecast_nmae",
        "settlement",
        "Forecast error (net)",
        "%",
        "Normalised mean absolute error of members' net forecasts.",
    ),
    _F(
        "conservation_ok",
        "settlement",
        "Money conserved",
        "yes/no",
        "Every interval's payments sum to zero, on chain too.",
    ),
    _F(
        "chain", "chain", "Chain", "", "Where the market's rules ran: embedded, none or a node URL."
    ),
    _F("tx_count", "chain", "Transactions", "count", "Transactions sent to the chain."),
    _F("gas_total", "chain", "Gas used", "gas", "Gas of every transaction of the run."),
    _F("gas_per_bid", "chain", "Gas per bid", "gas", "Mean gas per recorded bid."),
    _F(
        "gas_per_interval_max",
        "chain",
        "Gas per interval (max)",
        "gas",
        "Largest gas of one interval.",
    ),
    _F(
        "onchain_matches_reference",
        "chain",
        "Chain matches reference",
        "yes/no",
        "Every on-chain result equals the Python reference.",
    ),
    _F("solvent", "chain", "Escrow solvent", "yes/no", "The contract holds the tokens it owes."),
    _F(
        "audit_findings",
        "chain",
        "Audit findings",
        "count",
        "Findings of the audit of the saved chain.",
    ),
)
"""Every key figure shown, by group, in display order."""


def format_value(value: Any, unit: str) -> str:
    """``value`` as text with its unit ("-" when missing; shares (``%``) as percent, values
    already in percent (``pct``) as they are)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return str(len(value))
    if unit == "%" and isinstance(value, int | float):
        return f"{100 * float(value):,.1f} %"
    if unit == "pct" and isinstance(value, int | float):  # a value already in percent
        return f"{float(value):,.1f} %"
    if isinstance(value, float):
        shown = f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    elif isinstance(value, int):
        shown = f"{value:,}"
    else:
        return str(value)
    return f"{shown} {unit}" if unit and unit not in ("count", "yes/no") else shown


def grouped(kpis: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """Rows ``(label, value with unit, explanation)`` per group for the keys ``kpis`` holds."""
    out: dict[str, list[tuple[str, str, str]]] = {group: [] for group in GROUPS}
    for fig in KEY_FIGURES:
        if fig.key in kpis:
            out[fig.group].append(
                (fig.label, format_value(kpis[fig.key], fig.unit), fig.explanation)
            )
    return out
