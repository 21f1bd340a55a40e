"""Key figures of a run, computed from its saved tables (so ``report DIR`` can redo them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gridledger.report.tables import RunTables

__all__ = ["summary"]


def _round(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def _ratio(iv: Any, num: str, den: str) -> float | None:
    """Sum of column ``num`` over sum of ``den`` (None when the denominator is zero)."""
    if num not in iv or den not in iv or iv[den].isna().any():
        return None  # a reference not computed in some interval: no honest ratio
    total = float(iv[den].sum())
    return _round(float(iv[num].sum()) / total) if total > 0 else None


def _exact_share(iv: Any) -> float | None:
    """Share of the intervals with P2P trades whose best-response profile is also an
    exact equilibrium on the grid (largest deviation gain <= 1e-4)."""
    if "nash_max_gain" not in iv or "traded_kwh" not in iv:
        return None
    trading = iv[(iv["traded_kwh"] > 0) & iv["nash_max_gain"].notna()]
    if len(trading) == 0:
        return None
    return _round(float(np.mean(trading["nash_max_gain"].to_numpy(dtype=float) <= 1e-4)), 4)


def _best_response(iv: Any) -> dict[str, Any]:
    """Best-response diagnostics: rounds used, convergence, largest Nash deviation gain."""
    if "br_rounds" not in iv:
        return {}
    gains = iv["nash_max_gain"].dropna() if "nash_max_gain" in iv else []
    return {
        "br_rounds": int(iv["br_rounds"].max()),
        "br_rounds_mean": _round(iv["br_rounds"].mean(), 2),
        "br_converged": bool(iv["br_converged"].astype(bool).all()),
        "br_converged_share": _round(iv["br_converged"].astype(bool).mean(), 4),
        "nash_max_gain": _round(float(max(gains)), 8) if len(gains) else None,
        "br_epsilon": _round(float(iv["br_epsilon"].max()), 8) if "br_epsilon" in iv else None,
        "br_exact_share": _exact_share(iv),
        "br_cycles_detected": int(iv["br_cycle_round"].notna().sum())
        if "br_cycle_round" in iv
        else 0,
    }


def _efficiency(tables: RunTables) -> float | None:
    iv = tables.intervals
    if iv["optimal_welfare"].isna().any():
        return None  # the optimum was too large to solve in some interval
    optimum = float(iv["optimal_welfare"].sum()) if len(iv) else 0.0
    return _round(float(iv["welfare"].sum()) / optimum) if optimum > 0 else None


def by_attitude(tables: RunTables) -> dict[str, dict[str, float]]:
    """Trade rate and margin per traded kWh, by members' risk attitude.

    ``trade_rate``: kWh traded over kWh offered in binding rounds. ``margin_per_kwh``:
    a seller's price received minus its cost, a buyer's value minus its price paid
    (true limits, tariff-bounded), averaged over traded kWh.
    """
    rounds, trades, members = tables.rounds, tables.trades, tables.members
    if len(rounds) == 0 or len(members) == 0:
        return {}
    market = tables.meta["scenario"]["market"]
    last = rounds[rounds["round"] == rounds.groupby("interval")["round"].transform("max")]
    offered = last.groupby("member")["e_kwh"].sum()
    cost = members.set_index("id")["cost_per_kwh"].clip(lower=market["feed_in_per_kwh"])
    value = members.set_index("id")["utility_per_kwh"].clip(upper=market["retail_per_kwh"])
    traded: dict[int, float] = {}
    margin: dict[int, float] = {}
    for row in trades.itertuples(index=False):
        e = float(row.e_kwh)
        traded[row.buyer] = traded.get(row.buyer, 0.0) + e
        traded[row.seller] = traded.get(row.seller, 0.0) + e
        margin[row.buyer] = margin.get(row.buyer, 0.0) + e * (
            value[row.buyer] - row.buyer_price_per_kwh
        )
        margin[row.seller] = margin.get(row.seller, 0.0) + e * (
            row.seller_price_per_kwh - cost[row.seller]
        )
    out: dict[str, dict[str, float]] = {}
    for attitude, group in members.groupby("risk_attitude"):
        ids = list(group["id"])
        off = float(sum(offered.get(i, 0.0) for i in ids))
        tr = float(sum(traded.get(i, 0.0) for i in ids))
        mg = float(sum(margin.get(i, 0.0) for i in ids))
        out[str(attitude)] = {
            "members": len(ids),
            "offered_kwh": _round(off, 3),
            "traded_kwh": _round(tr, 3),
            "trade_rate": _round(tr / off if off else 0.0),
            "margin_per_kwh": _round(mg / tr if tr else 0.0),
        }
    return out


def _uniform_price(tables: RunTables) -> float | None:
    """Mean uniform clearing price over the intervals that cleared one (tokens/kWh);
    None under a rule without a uniform price (greedy, optimal)."""
    if tables.meta["scenario"]["market"]["clearing"] != "uniform":
        return None
    prices = tables.intervals["price_per_kwh"] if len(tables.intervals) else None
    if prices is None or not prices.notna().any():
        return 0.0
    return _round(np.nanmean(prices))


def _mean_trade_prices(tr: Any) -> dict[str, float | None]:
    """Energy-weighted mean price buyers paid (fee included) and sellers received
    (tokens/kWh), over all trades of the run; None without trades."""
    e_kwh = tr["e_kwh"].to_numpy(dtype=float) if len(tr) else np.zeros(0)
    total = float(e_kwh.sum())
    if total <= 0:
        return {"mean_buyer_price_per_kwh": None, "mean_seller_price_per_kwh": None}
    paid = float(np.dot(e_kwh, tr["buyer_price_per_kwh"].to_numpy(dtype=float)))
    got = float(np.dot(e_kwh, tr["seller_price_per_kwh"].to_numpy(dtype=float)))
    return {
        "mean_buyer_price_per_kwh": _round(paid / total),
        "mean_seller_price_per_kwh": _round(got / total),
    }


def summary(tables: RunTables) -> dict[str, Any]:
    """The KPIs of ``summary.json``.

    - ``p2p_share``: P2P kWh over all kWh consumed by members (metered loads).
    - ``social_welfare``: gains from P2P trade at members' true values and costs,
      net of use-of-system charges (tokens).
    - ``efficiency``: welfare over the competitive optimum (LP clearing of truthful
      orders at members' true values and costs, same fees).
    - ``welfare_vs_optimal``: the clearing's surplus at the binding bids over the LP
      optimum of the same bids (1.0 for an optimal rule; greedy's gap shows here).
    - ``mean_trade_distance_km``: energy-weighted mean path length of trades.
    - ``local_share``: share of traded kWh whose seller and buyer are on the same
      feeder branch (``grid`` branch definition).
    - ``dg_local_share``: DG/PV energy sold P2P within the seller's own branch, over
      all DG/PV energy generated: the local consumption of DG energy.
    - ``mean_buyer_price_per_kwh`` / ``mean_seller_price_per_kwh``: energy-weighted
      mean price buyers paid (use-of-system fee included) and sellers received over
      all trades, tokens/kWh, under every clearing rule; their difference is the
      energy-weighted mean fee. None without trades.
    - ``mean_price_per_kwh``: mean of the intervals' uniform clearing prices (tokens/kWh)
      when the rule is ``uniform``; None under rules without a uniform price.
    - voltages and loadings are those after security management.
    """
    iv = tables.intervals
    tr = tables.trades
    meta = tables.meta
    traded = float(iv["traded_kwh"].sum()) if len(iv) else 0.0
    consumed = float(iv["load_kwh"].sum()) if len(iv) else 0.0
    kwh_km = float(iv["trade_kwh_km"].sum()) if len(iv) else 0.0
    local = float(tr.loc[tr["same_branch"].astype(bool), "e_kwh"].sum()) if len(tr) else 0.0
    generated = float(iv["pv_kwh"].sum()) if len(iv) else 0.0
    stats = meta.get("chain_stats") or {}
    out: dict[str, Any] = {
        "scenario": meta["scenario"]["name"],
        "feeder": meta["feeder"],
        "intervals": len(iv),
        "members": len(tables.members),
        "mechanism": meta["scenario"]["market"]["mechanism"],
        "rounds": meta["scenario"]["market"]["rounds"],
        "clearing": meta["scenario"]["market"]["clearing"],
        "network_fee_method": meta["scenario"]["market"]["network_fee"],
        "traded_kwh": _round(traded, 3),
        "p2p_share": _round(traded / consumed if consumed else 0.0),
        "social_welfare": _round(iv["welfare"].sum() if len(iv) else 0.0),
        "efficiency": _efficiency(tables),
        "welfare_vs_optimal": _ratio(iv, "bid_surplus", "bid_optimum"),
        "by_attitude": by_attitude(tables),
        "network_fee_revenue": _round(iv["fees"].sum() if len(iv) else 0.0),
        "mean_trade_distance_km": _round(kwh_km / traded if traded else 0.0),
        "local_share": _round(local / traded if traded else 0.0),
        "dg_local_share": _round(local / generated if generated else 0.0),
        "local_consumption_share": _round(local / generated if generated else 0.0),
        "grid_import_kwh": _round(iv["grid_import_kwh"].sum() if len(iv) else 0.0, 3),
        "grid_export_kwh": _round(iv["grid_export_kwh"].sum() if len(iv) else 0.0, 3),
        "mean_price_per_kwh": _uniform_price(tables),
        **_mean_trade_prices(tr),
        "v_min_pu": _round(iv["v_min_pu"].min()),
        "v_max_pu": _round(iv["v_max_pu"].max()),
        "max_line_loading_pct": _round(iv["max_line_loading_pct"].max(), 3),
        "violations_before": int(iv["violations_before"].sum()),
        "violations_after": int(iv["violations_after"].sum()),
        "curtailed_kwh": _round(iv["curtailed_kwh"].sum(), 3),
        "lost_surplus": _round(iv["lost_surplus"].sum() if "lost_surplus" in iv else 0.0),
        "conservation_ok": bool(iv["conserved"].all())
        and meta.get("onchain_matches_reference") is not False
        and (meta.get("chain_conserved") is not False),
        "imbalance_kwh": _round(iv["imbalance_kwh"].sum(), 3) if "imbalance_kwh" in iv else None,
        "imbalance_cost": _round(iv["imbalance_cost"].sum()) if "imbalance_cost" in iv else None,
        "shortfall_kwh": _round(iv["shortfall_kwh"].sum(), 3) if "shortfall_kwh" in iv else None,
        "penalties": _round(iv["penalties"].sum()) if "penalties" in iv else None,
        "forecast_nmae": _round((meta.get("forecast_nmae") or {}).get("net", 0.0)),
        "forecast_nmae_load": _round((meta.get("forecast_nmae") or {}).get("load", 0.0)),
        "forecast_nmae_pv": _round((meta.get("forecast_nmae") or {}).get("pv", 0.0)),
        **_best_response(iv),
        "chain": meta.get("chain", "none"),
        "tx_count": stats.get("tx_count"),
        "gas_total": stats.get("gas_total"),
        "gas_per_bid": stats.get("gas_per_bid"),
        "gas_per_interval_max": stats.get("gas_per_interval_max"),
        "onchain_matches_reference": meta.get("onchain_matches_reference"),
        "solvent": meta.get("chain_solvent"),
        "audit_findings": meta.get("audit_findings"),
        "runtime_s": _round(meta.get("runtime_s", 0.0), 3),
    }
    return out
