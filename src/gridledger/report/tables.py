"""Result tables of a run (pandas), and saving/loading an output folder.

An output folder holds ``run.json`` (scenario and run facts), ``summary.json``
(KPIs), CSV tables (``intervals``, ``rounds``, ``trades``, ``settlement``,
``members``, ``bus_voltages``, ``line_loading``) and ``report.html``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridledger.errors import GridledgerError, ScenarioError
from gridledger.market.units import micro_to_money, micro_to_price
from gridledger.scenario import validate_scenario
from gridledger.sim.loop import RunResult
from gridledger.world import welfare_micro

__all__ = ["COLUMNS", "RUN_META_KEYS", "RunTables", "build_tables", "load_tables", "save_tables"]

log = logging.getLogger(__name__)

TABLES = (
    "intervals",
    "rounds",
    "trades",
    "settlement",
    "members",
    "bus_voltages",
    "bus_voltages_before",
    "line_loading",
)


COLUMNS: dict[str, tuple[str, ...]] = {
    "intervals": (
        "interval",
        "time",
        "price_per_kwh",
        "n_bids",
        "traded_kwh",
        "load_kwh",
        "pv_kwh",
        "grid_import_kwh",
        "grid_export_kwh",
        "fees",
        "welfare",
        "optimal_welfare",
        "bid_surplus",
        "bid_optimum",
        "trade_kwh_km",
        "v_min_pu",
        "v_max_pu",
        "v_min_before_pu",
        "v_max_before_pu",
        "max_line_loading_pct",
        "losses_kw",
        "violations_before",
        "violations_after",
        "curtailed_kwh",
        "lost_surplus",
        "security_note",
        "conserved",
        "imbalance_kwh",
        "imbalance_cost",
        "penalties",
        "shortfall_kwh",
        "forecast_abs_err_kwh",
        "actual_abs_kwh",
    ),
    "rounds": ("interval", "round", "member", "side", "e_kwh", "price_per_kwh", "bus"),
    "trades": (
        "interval",
        "trade",
        "buyer",
        "seller",
        "buyer_bus",
        "seller_bus",
        "e_kwh",
        "cleared_kwh",
        "buyer_price_per_kwh",
        "seller_price_per_kwh",
        "fee_per_kwh",
        "distance_km",
        "same_branch",
    ),
    "settlement": (
        "interval",
        "member",
        "scheduled_net_wh",
        "actual_net_wh",
        "p2p_paid",
        "p2p_received",
        "grid_import_wh",
        "grid_export_wh",
        "grid_paid",
        "grid_received",
        "net",
    ),
    "members": (
        "id",
        "name",
        "bus",
        "role",
        "pv_kwp",
        "load_annual_kwh",
        "cost_per_kwh",
        "utility_per_kwh",
        "risk_attitude",
        "strategy",
        "load_kwh",
        "pv_kwh",
    ),
}
"""Columns every saved table has (``intervals`` also has the mechanism's own columns;
the voltage and loading tables have one numbered column per bus or line)."""

TEXT_COLUMNS = frozenset(
    {"time", "security_note", "side", "name", "role", "risk_attitude", "strategy"}
)
"""Columns that hold text; every other column of a table holds numbers (or booleans)."""


@dataclass
class RunTables:
    """All tables of one run plus ``meta`` (scenario dump and run facts)."""

    meta: dict[str, Any]
    intervals: pd.DataFrame
    rounds: pd.DataFrame
    trades: pd.DataFrame
    settlement: pd.DataFrame
    members: pd.DataFrame
    bus_voltages: pd.DataFrame
    bus_voltages_before: pd.DataFrame
    line_loading: pd.DataFrame


def _forecast_nmae(members: Any) -> dict[str, float]:
    """Realised normalised mean absolute forecast error: sum |f - a| / sum |a|."""

    def nmae(actual: np.ndarray, forecast: np.ndarray) -> float:
        total = float(np.abs(actual).sum())
        return float(np.abs(forecast - actual).sum() / total) if total > 0 else 0.0

    return {
        "net": nmae(members.actual_net_kw, members.forecast_net_kw),
        "load": nmae(members.load_kw, members.load_forecast_kw),
        "pv": nmae(members.pv_kw, members.pv_forecast_kw),
    }


def build_tables(result: RunResult) -> RunTables:
    """Turn a :class:`~gridledger.sim.loop.RunResult` into tables."""
    world = result.world
    h = world.interval_h
    members = world.members
    dist = world.distances
    zone = np.asarray(dist.zone)
    step = pd.Timedelta(minutes=world.scenario.horizon.interval_min)
    start = (
        pd.Timestamp(world.scenario.horizon.start) + world.scenario.horizon.first_interval * step
    )
    interval_rows, round_rows, trade_rows, settle_rows = [], [], [], []
    volt_rows, volt_before_rows, load_rows = [], [], []
    for out in result.outcomes:
        t = out.interval
        sec = out.security
        cut_wh = sum(c.cut_wh for c in sec.curtailments)
        trades_final = {i: tr for i, tr in enumerate(out.settlement_trades)}
        for k, bids in enumerate(out.rounds):
            for b in bids:
                round_rows.append(
                    (
                        t,
                        k,
                        b.member,
                        "buy" if b.side == 0 else "sell",
                        b.e_wh / 1000.0,
                        micro_to_price(b.price_per_kwh_micro),
                        b.bus,
                    )
                )
        dist_kwh_km = 0.0
        for i, tr in trades_final.items():
            d_km = float(dist.path_km[tr.seller_bus, tr.buyer_bus])
            dist_kwh_km += tr.e_wh / 1000.0 * d_km
            trade_rows.append(
                (
                    t,
                    i,
                    tr.buyer,
                    tr.seller,
                    tr.buyer_bus,
                    tr.seller_bus,
                    tr.e_wh / 1000.0,
                    out.cleared.trades[i].e_wh / 1000.0,
                    micro_to_price(tr.buyer_price_per_kwh_micro),
                    micro_to_price(tr.seller_price_per_kwh_micro),
                    micro_to_price(tr.fee_per_kwh_micro),
                    d_km,
                    bool(zone[tr.seller_bus] == zone[tr.buyer_bus]),
                )
            )
        st = out.settlement
        for line in st.members.values():
            settle_rows.append(
                (
                    t,
                    line.member,
                    line.scheduled_net_wh,
                    line.actual_net_wh,
                    micro_to_money(line.p2p_paid_micro),
                    micro_to_money(line.p2p_received_micro),
                    line.grid_import_wh,
                    line.grid_export_wh,
                    micro_to_money(line.grid_paid_micro),
                    micro_to_money(line.grid_received_micro),
                    micro_to_money(line.net_micro),
                )
            )
        load_kwh = float(members.load_kw[:, t].sum() * h)
        pv_kwh = float(members.pv_kw[:, t].sum() * h)
        after = sec.after
        interval_rows.append(
            dict(
                interval=t,
                time=start + t * step,
                price_per_kwh=(
                    micro_to_price(out.cleared.price_per_kwh_micro)
                    if out.cleared.price_per_kwh_micro is not None
                    else np.nan
                ),
                n_bids=len(out.rounds[-1]) if out.rounds else 0,
                traded_kwh=sum(tr.e_wh for tr in trades_final.values()) / 1000.0,
                load_kwh=load_kwh,
                pv_kwh=pv_kwh,
                grid_import_kwh=sum(m.grid_import_wh for m in st.members.values()) / 1000.0,
                grid_export_kwh=sum(m.grid_export_wh for m in st.members.values()) / 1000.0,
                fees=micro_to_money(st.fees_micro),
                welfare=micro_to_money(welfare_micro(world, out.settlement_trades)),
                optimal_welfare=math.nan
                if out.optimum_welfare_micro is None
                else micro_to_money(out.optimum_welfare_micro),
                bid_surplus=out.bid_surplus_wh_micro / 1000 / 1_000_000,
                bid_optimum=math.nan
                if out.bid_optimum_wh_micro is None
                else out.bid_optimum_wh_micro / 1000 / 1_000_000,
                trade_kwh_km=dist_kwh_km,
                v_min_pu=float(np.min(after.v_pu)),
                v_max_pu=float(np.max(after.v_pu)),
                v_min_before_pu=float(np.min(sec.before.v_pu)),
                v_max_before_pu=float(np.max(sec.before.v_pu)),
                max_line_loading_pct=float(np.max(after.line_loading_pct)),
                losses_kw=float(after.losses_kw),
                violations_before=sec.violations_before,
                violations_after=sec.violations_after,
                curtailed_kwh=cut_wh / 1000.0,
                lost_surplus=micro_to_money(sec.lost_surplus_micro),
                security_note=sec.reason,
                conserved=st.conserved(),
                imbalance_kwh=st.imbalance_wh / 1000.0,
                imbalance_cost=micro_to_money(st.imbalance_cost_micro),
                penalties=micro_to_money(st.penalties_micro),
                shortfall_kwh=st.shortfall_wh / 1000.0,
                forecast_abs_err_kwh=float(
                    np.abs(members.forecast_net_kw[:, t] - members.actual_net_kw[:, t]).sum() * h
                ),
                actual_abs_kwh=float(np.abs(members.actual_net_kw[:, t]).sum() * h),
                **out.mechanism_info,
            )
        )
        volt_rows.append(np.asarray(after.v_pu, dtype=float))
        volt_before_rows.append(np.asarray(sec.before.v_pu, dtype=float))
        load_rows.append(np.asarray(after.line_loading_pct, dtype=float))
    member_rows = [
        (
            m.id,
            m.name,
            m.bus,
            m.role.value,
            m.pv_kwp,
            m.load_annual_kwh,
            m.cost_per_kwh,
            m.utility_per_kwh,
            str(m.risk_attitude),
            m.strategy,
            float(members.load_kw[m.id].sum() * h),
            float(members.pv_kw[m.id].sum() * h),
        )
        for m in members.members
    ]
    meta = {
        "scenario": json.loads(world.scenario.model_dump_json()),
        "feeder": world.feeder.name,
        "runtime_s": result.runtime_s,
        "chain": result.chain,
        "chain_stats": result.chain_stats,
        "onchain_matches_reference": result.onchain_matches_reference,
        "chain_conserved": result.chain_conserved,
        "chain_solvent": result.chain_solvent,
        "audit_findings": result.audit_findings,
        "interval_h": h,
        "forecast_nmae": _forecast_nmae(members),
    }
    return RunTables(
        meta=meta,
        intervals=pd.DataFrame(interval_rows),
        rounds=pd.DataFrame(
            round_rows,
            columns=list(COLUMNS["rounds"]),
        ),
        trades=pd.DataFrame(
            trade_rows,
            columns=list(COLUMNS["trades"]),
        ),
        settlement=pd.DataFrame(
            settle_rows,
            columns=list(COLUMNS["settlement"]),
        ),
        members=pd.DataFrame(
            member_rows,
            columns=list(COLUMNS["members"]),
        ),
        bus_voltages=pd.DataFrame(np.vstack(volt_rows) if volt_rows else np.zeros((0, 0))),
        bus_voltages_before=pd.DataFrame(
            np.vstack(volt_before_rows) if volt_before_rows else np.zeros((0, 0))
        ),
        line_loading=pd.DataFrame(np.vstack(load_rows) if load_rows else np.zeros((0, 0))),
    )


def save_tables(tables: RunTables, out_dir: Path) -> None:
    """Write ``run.json`` and every table as CSV into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run.json").write_text(json.dumps(tables.meta, indent=2, default=str))
    for name in TABLES:
        frame: pd.DataFrame = getattr(tables, name)
        frame.to_csv(out_dir / f"{name}.csv", index=False)


RUN_META_KEYS = ("scenario", "feeder", "interval_h")
"""Keys of ``run.json`` that the report needs."""


def _damaged(file: Path, what: str) -> GridledgerError:
    return GridledgerError(f"{file}: damaged ({what}); rerun the scenario into a new folder")


def load_tables(out_dir: Path) -> RunTables:
    """Read a saved output folder back; a missing or damaged file is named in the error."""
    meta_file = out_dir / "run.json"
    if not meta_file.is_file():
        message = f"{out_dir}: not a gridledger output folder (no run.json)"
        raise GridledgerError(message)
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _damaged(meta_file, f"not valid JSON: {error}") from None
    if not isinstance(meta, dict):
        raise _damaged(meta_file, f"expected a JSON object, found {type(meta).__name__}")
    missing = [key for key in RUN_META_KEYS if key not in meta]
    if missing:
        raise _damaged(meta_file, f"missing key(s) {', '.join(missing)}")
    if not isinstance(meta["scenario"], dict):
        raise _damaged(meta_file, "key scenario is not a table")
    try:
        scenario = validate_scenario(meta["scenario"], f"{meta_file} (key scenario)")
    except ScenarioError as error:  # a damaged record of the run, not the user's scenario
        raise GridledgerError(str(error)) from None
    meta["scenario"] = json.loads(scenario.model_dump_json())  # every key, defaults filled
    if not isinstance(meta["feeder"], str):
        raise _damaged(meta_file, f"key feeder: expected a feeder name, found {meta['feeder']!r}")
    step_h = meta["interval_h"]
    if isinstance(step_h, bool) or not isinstance(step_h, int | float) or not 0 < step_h <= 24:
        raise _damaged(meta_file, f"key interval_h: expected hours per interval, found {step_h!r}")
    for key in ("chain_stats", "forecast_nmae"):
        if not isinstance(meta.get(key) or {}, dict):
            raise _damaged(meta_file, f"key {key}: expected a JSON object, found {meta[key]!r}")
    frames = {}
    for name in TABLES:
        file = out_dir / f"{name}.csv"
        if not file.is_file():
            message = f"{out_dir}: missing table {file.name}"
            raise GridledgerError(message)
        try:
            frames[name] = pd.read_csv(file)
        except pd.errors.EmptyDataError:
            frames[name] = pd.DataFrame()
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise _damaged(file, f"not a readable CSV table: {error}") from None
        _check_columns(file, frames[name], COLUMNS.get(name))
    return RunTables(meta=meta, **frames)


def _check_columns(file: Path, frame: pd.DataFrame, required: tuple[str, ...] | None) -> None:
    """A table read back has its columns, and numbers in every column but the text ones
    (``required`` None: any columns, all numeric)."""
    if required is not None:
        if len(frame.columns) == 0:
            raise _damaged(file, "empty, expected a header row")
        missing = [column for column in required if column not in frame.columns]
        if missing:
            raise _damaged(file, f"missing column(s) {', '.join(missing)}")
    if len(frame) == 0:  # a header only (no trades in the run): no values to check
        return
    for column in required if required is not None else tuple(frame.columns):
        values = frame[column]
        if column in TEXT_COLUMNS or pd.api.types.is_numeric_dtype(values):
            continue
        bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
        shown = repr(bad.iloc[0]) if len(bad) else "text"  # e.g. a column of empty strings
        raise _damaged(file, f"column {column} holds {shown} where a number belongs")
