"""Interactive figures of a run (plotly), shared by report.html and the explorer.

Every function takes the saved tables of a run (:class:`~gridledger.report.tables.RunTables`)
and returns a :class:`plotly.graph_objects.Figure`, or None when the run has nothing to
draw. Timeline figures carry the interval index as each point's ``customdata``, so a
page can make a click open that interval (:class:`gridledger.report.html.Chart`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from gridledger.grid import Feeder
from gridledger.report.plots import tree_layout
from gridledger.report.tables import RunTables

__all__ = [
    "LAYOUT",
    "TIMELINE",
    "Trace",
    "base_figure",
    "fig_balance",
    "fig_energy",
    "fig_member_bids",
    "fig_member_energy",
    "fig_member_trades",
    "fig_order_book",
    "fig_order_book_moves",
    "fig_prices",
    "fig_readings",
    "fig_settlement",
    "fig_trade_map",
    "fig_violations",
    "fig_voltage",
    "fig_welfare",
    "interval_figure",
    "interval_prices",
]

LAYOUT = {
    "template": "plotly_white",
    "height": 360,
    "margin": {"l": 60, "r": 60, "t": 40, "b": 40},
    "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"},
    "hovermode": "x unified",
}


def base_figure(title: str, x_title: str, y_title: str, **layout: object) -> go.Figure:
    """An empty figure in the house style (titles, white template, legend below)."""
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, **LAYOUT)
    fig.update_layout(**layout)
    return fig


Trace = tuple[Literal["bar", "line"], pd.Series, str]
"""A series of an interval figure: drawn as bars or a line, its values, its legend name."""


def interval_figure(
    title: str,
    x_title: str,
    y_title: str,
    x: Sequence[str],
    ids: Sequence[int],
    traces: Sequence[Trace],
) -> go.Figure:
    """A figure of series per interval in the house style, in the order given; each point's
    customdata is its interval (``ids``), so that a click can open it."""
    fig = base_figure(title, x_title, y_title)
    for kind, values, name in traces:
        add = fig.add_bar if kind == "bar" else fig.add_scatter
        add(x=x, y=values, name=name, customdata=ids)
    return fig


def _times(tables: RunTables) -> list[str]:
    return [str(t) for t in tables.intervals["time"]]


def _ids(tables: RunTables) -> list[int]:
    return [int(i) for i in tables.intervals["interval"]]


def interval_prices(tables: RunTables) -> pd.DataFrame:
    """Energy-weighted mean buyer and seller price per interval (tokens/kWh; NaN without
    trades), indexed like ``tables.intervals``."""
    tr = tables.trades
    out = pd.DataFrame(index=_ids(tables), columns=["buyer", "seller"], dtype=float)
    if len(tr):
        e = tr["e_kwh"].astype(float)
        paid = (e * tr["buyer_price_per_kwh"]).groupby(tr["interval"]).sum()
        got = (e * tr["seller_price_per_kwh"]).groupby(tr["interval"]).sum()
        energy = e.groupby(tr["interval"]).sum()
        out["buyer"] = (paid / energy).reindex(out.index)
        out["seller"] = (got / energy).reindex(out.index)
    return out


def fig_prices(tables: RunTables) -> go.Figure:
    """Mean buyer and seller price per interval against the grid tariffs."""
    market = tables.meta["scenario"]["market"]
    x, ids = _times(tables), _ids(tables)
    prices = interval_prices(tables)
    fig = base_figure("Trade prices per interval", "time", "tokens/kWh")
    fig.add_scatter(x=x, y=prices["buyer"], name="mean buyer price (fee incl.)", customdata=ids)
    fig.add_scatter(x=x, y=prices["seller"], name="mean seller price", customdata=ids)
    uniform = tables.intervals["price_per_kwh"]
    if uniform.notna().any():
        fig.add_scatter(x=x, y=uniform, name="uniform clearing price", customdata=ids)
    for key, label in (("retail_per_kwh", "retail tariff"), ("feed_in_per_kwh", "feed-in tariff")):
        fig.add_scatter(
            x=x, y=[market[key]] * len(x), name=label, mode="lines", line={"dash": "dash"}
        )
    return fig


def fig_energy(tables: RunTables) -> go.Figure:
    """Traded energy against load, PV and the grid exchange per interval."""
    iv = tables.intervals
    traces: list[Trace] = [
        ("bar", iv["traded_kwh"], "traded P2P"),
        ("line", iv["load_kwh"], "members' load"),
        ("line", iv["pv_kwh"], "PV/DG generation"),
        ("line", iv["grid_import_kwh"], "grid import"),
        ("line", iv["grid_export_kwh"], "grid export"),
    ]
    x, ids = _times(tables), _ids(tables)
    return interval_figure("Energy per interval", "time", "kWh", x, ids, traces)


def fig_welfare(tables: RunTables) -> go.Figure:
    """Welfare, its competitive optimum and the use-of-system fee revenue per interval."""
    iv = tables.intervals
    traces: list[Trace] = [
        ("bar", iv["welfare"], "welfare (true values)"),
        ("line", iv["optimal_welfare"], "competitive optimum"),
        ("bar", iv["fees"], "fee revenue"),
    ]
    x, ids = _times(tables), _ids(tables)
    return interval_figure("Welfare and fee revenue per interval", "time", "tokens", x, ids, traces)


def fig_violations(tables: RunTables) -> go.Figure:
    """Grid limit violations before and after security management, and curtailment."""
    iv = tables.intervals
    x, ids = _times(tables), _ids(tables)
    fig = base_figure("Security per interval", "time", "violations (count)")
    fig.add_bar(x=x, y=iv["violations_before"], name="violations before", customdata=ids)
    fig.add_bar(x=x, y=iv["violations_after"], name="violations after", customdata=ids)
    fig.add_scatter(x=x, y=iv["curtailed_kwh"], name="curtailed kWh", yaxis="y2", customdata=ids)
    fig.update_layout(yaxis2={"title": "kWh curtailed", "overlaying": "y", "side": "right"})
    return fig


def fig_voltage(tables: RunTables) -> go.Figure:
    """Lowest and highest bus voltage per interval with the limits."""
    iv = tables.intervals
    sec = tables.meta["scenario"]["security"]
    x, ids = _times(tables), _ids(tables)
    fig = base_figure("Voltage envelope and line loading", "time", "voltage (p.u.)")
    fig.add_scatter(x=x, y=iv["v_min_pu"], name="lowest bus voltage", customdata=ids)
    fig.add_scatter(x=x, y=iv["v_max_pu"], name="highest bus voltage", customdata=ids)
    for key in ("v_min_pu", "v_max_pu"):
        fig.add_scatter(x=x, y=[sec[key]] * len(x), name=f"limit {key[:5]}", line={"dash": "dash"})
    fig.add_scatter(
        x=x, y=iv["max_line_loading_pct"], name="max line loading %", yaxis="y2", customdata=ids
    )
    fig.update_layout(yaxis2={"title": "line loading (%)", "overlaying": "y", "side": "right"})
    return fig


TIMELINE = (fig_prices, fig_energy, fig_welfare, fig_violations, fig_voltage)
"""The run-level timeline figures, in page order; each point's customdata is its interval."""


def fig_trade_map(tables: RunTables, feeder: Feeder, interval: int | None = None) -> go.Figure:
    """The feeder as a single-line diagram with trades drawn seller -> buyer (width by kWh);
    one interval's trades, or the whole run's when ``interval`` is None."""
    xy = tree_layout(feeder)
    title = "Trades on the feeder" + ("" if interval is None else f", interval {interval}")
    fig = base_figure(title, "", "", height=460, hovermode="closest", showlegend=True)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    lx: list[float | None] = []
    ly: list[float | None] = []
    for a, b in zip(feeder.line_from, feeder.line_to, strict=True):
        lx += [float(xy[a, 0]), float(xy[b, 0]), None]
        ly += [float(xy[a, 1]), float(xy[b, 1]), None]
    fig.add_scatter(x=lx, y=ly, mode="lines", line={"color": "#bbb"}, name="lines")
    tr = tables.trades if interval is None else tables.trades[tables.trades["interval"] == interval]
    pairs = tr.groupby(["seller_bus", "buyer_bus"])["e_kwh"].sum() if len(tr) else pd.Series()
    pairs = pairs[pairs > 0]  # a trade curtailed to nothing moves no energy
    top = float(pairs.max()) if len(pairs) else 1.0
    for (s_bus, b_bus), e_kwh in pairs.sort_values(ascending=False).iloc[:60].items():
        (x0, y0), (x1, y1) = xy[int(s_bus)], xy[int(b_bus)]
        mid = ((x0 + x1) / 2 + 0.3 * (y1 - y0), (y0 + y1) / 2 + 0.3 * (x0 - x1))
        fig.add_scatter(
            x=[x0, mid[0], x1],
            y=[y0, mid[1], y1],
            mode="lines+markers",
            line={
                "color": "rgba(128,0,160,0.6)",
                "width": 1 + 6 * float(e_kwh) / top,
                "shape": "spline",
            },
            marker={"symbol": "arrow", "angleref": "previous", "size": [0, 0, 10]},
            name=f"bus {s_bus} -> {b_bus}: {e_kwh:.1f} kWh",
            showlegend=False,
        )
    members = tables.members
    text = []
    for bus in range(len(xy)):
        here = members[members["bus"] == bus] if len(members) else members
        names = ", ".join(f"{r.id} ({r.role})" for r in here.itertuples()) or "no member"
        text.append(f"bus {bus}: {names}")
    fig.add_scatter(
        x=xy[:, 0],
        y=xy[:, 1],
        mode="markers+text",
        text=[str(b) for b in range(len(xy))],
        textposition="top center",
        hovertext=text,
        hoverinfo="text",
        marker={"size": 9, "color": "#1f77b4"},
        name="buses",
    )
    return fig


def fig_order_book(tables: RunTables, interval: int) -> go.Figure | None:
    """Every round's order book of one interval: demand and supply step curves
    (cumulative kWh against price), later rounds drawn darker."""
    rounds = tables.rounds[tables.rounds["interval"] == interval]
    if len(rounds) == 0:
        return None
    fig = base_figure(
        f"Order book per round, interval {interval}",
        "cumulative kWh",
        "tokens/kWh",
        hovermode="closest",
    )
    last = int(rounds["round"].max())
    for r, part in rounds.groupby("round"):
        shade = 0.3 + 0.7 * (int(r) + 1) / (last + 1)
        for side, ascending, rgb in (("buy", False, "31,119,180"), ("sell", True, "255,127,14")):
            book = part[part["side"] == side].sort_values("price_per_kwh", ascending=ascending)
            if len(book) == 0:
                continue
            fig.add_scatter(
                x=np.concatenate([[0.0], book["e_kwh"].cumsum().to_numpy(dtype=float)]),
                y=np.concatenate(
                    [
                        book["price_per_kwh"].to_numpy(dtype=float)[:1],
                        book["price_per_kwh"].to_numpy(dtype=float),
                    ]
                ),
                line={"shape": "vh", "color": f"rgba({rgb},{shade:.2f})"},
                name=f"round {r} {'demand' if side == 'buy' else 'supply'}"
                + (" (binding)" if int(r) == last else ""),
            )
    return fig


def fig_order_book_moves(tables: RunTables, interval: int) -> go.Figure | None:
    """How the book moved over the rounds: best bid, best ask and offered energy."""
    rounds = tables.rounds[tables.rounds["interval"] == interval]
    if len(rounds) == 0:
        return None
    fig = base_figure(f"How the book moved, interval {interval}", "round", "tokens/kWh")
    buys, sells = rounds[rounds["side"] == "buy"], rounds[rounds["side"] == "sell"]
    best_bid = buys.groupby("round")["price_per_kwh"].max()
    best_ask = sells.groupby("round")["price_per_kwh"].min()
    fig.add_scatter(x=best_bid.index, y=best_bid.values, name="best bid (buy)")
    fig.add_scatter(x=best_ask.index, y=best_ask.values, name="best ask (sell)")
    for frame, label in ((buys, "kWh bid to buy"), (sells, "kWh offered to sell")):
        energy = frame.groupby("round")["e_kwh"].sum()
        fig.add_bar(x=energy.index, y=energy.values, name=label, yaxis="y2", opacity=0.35)
    fig.update_layout(yaxis2={"title": "kWh", "overlaying": "y", "side": "right"})
    return fig


def fig_readings(tables: RunTables, interval: int) -> go.Figure | None:
    """Meter readings against the market schedule per member (Wh, + = export)."""
    st = tables.settlement[tables.settlement["interval"] == interval]
    if len(st) == 0:
        return None
    fig = base_figure(
        f"Readings against schedules, interval {interval}",
        "member",
        "net Wh (+ export)",
        hovermode="closest",
        barmode="group",
    )
    members = [str(m) for m in st["member"]]
    fig.add_bar(x=members, y=st["scheduled_net_wh"], name="scheduled (traded)")
    fig.add_bar(x=members, y=st["actual_net_wh"], name="metered")
    fig.update_xaxes(type="category")
    return fig


def fig_settlement(tables: RunTables, interval: int) -> go.Figure | None:
    """Settlement per member of one interval: P2P and grid payments and the net."""
    st = tables.settlement[tables.settlement["interval"] == interval]
    if len(st) == 0:
        return None
    fig = base_figure(
        f"Settlement per member, interval {interval}",
        "member",
        "tokens",
        hovermode="closest",
        barmode="relative",
    )
    members = [str(m) for m in st["member"]]
    fig.add_bar(x=members, y=st["p2p_received"], name="P2P received")
    fig.add_bar(x=members, y=-st["p2p_paid"], name="P2P paid")
    fig.add_bar(x=members, y=st["grid_received"], name="grid received")
    fig.add_bar(x=members, y=-st["grid_paid"], name="grid paid")
    fig.add_scatter(x=members, y=st["net"], name="net", mode="markers", marker={"color": "black"})
    fig.update_xaxes(type="category")
    return fig


def fig_member_bids(tables: RunTables, member: int) -> go.Figure | None:
    """A member's bids in every round of every interval (price and kWh)."""
    rounds = tables.rounds[tables.rounds["member"] == member]
    if len(rounds) == 0:
        return None
    times = dict(zip(tables.intervals["interval"], tables.intervals["time"], strict=True))
    fig = base_figure(f"Bids of member {member}", "time", "tokens/kWh", hovermode="closest")
    for r, part in rounds.groupby("round"):
        fig.add_scatter(
            x=[str(times.get(i, i)) for i in part["interval"]],
            y=part["price_per_kwh"],
            mode="markers",
            marker={"size": 4 + 14 * part["e_kwh"] / max(float(rounds["e_kwh"].max()), 1e-9)},
            text=[f"{s} {e:.2f} kWh" for s, e in zip(part["side"], part["e_kwh"], strict=True)],
            customdata=part["interval"],
            name=f"round {r}",
        )
    return fig


def fig_member_trades(tables: RunTables, member: int) -> go.Figure:
    """A member's P2P trades per interval: kWh bought and sold."""
    tr = tables.trades
    ids = _ids(tables)
    bought = tr[tr["buyer"] == member].groupby("interval")["e_kwh"].sum().reindex(ids).fillna(0)
    sold = tr[tr["seller"] == member].groupby("interval")["e_kwh"].sum().reindex(ids).fillna(0)
    fig = base_figure(f"Trades of member {member}", "time", "kWh", barmode="relative")
    x = _times(tables)
    fig.add_bar(x=x, y=bought.values, name="bought P2P", customdata=ids)
    fig.add_bar(x=x, y=-sold.values, name="sold P2P", customdata=ids)
    return fig


def _member_settlement(tables: RunTables, member: int) -> pd.DataFrame:
    st = tables.settlement[tables.settlement["member"] == member]
    return st.set_index("interval").reindex(_ids(tables))


def fig_member_energy(tables: RunTables, member: int) -> go.Figure:
    """A member's scheduled and metered net energy and its grid exchange per interval."""
    st = _member_settlement(tables, member)
    traces: list[Trace] = [
        ("line", st["scheduled_net_wh"], "scheduled net"),
        ("line", st["actual_net_wh"], "metered net"),
        ("bar", st["grid_import_wh"], "grid import"),
        ("bar", -st["grid_export_wh"], "grid export (neg.)"),
    ]
    x, ids = _times(tables), _ids(tables)
    title = f"Energy of member {member}"
    return interval_figure(title, "time", "Wh (+ export)", x, ids, traces)


def fig_balance(
    tables: RunTables,
    member: int,
    chain_balance: pd.Series | None = None,
    locks: pd.Series | None = None,
) -> go.Figure:
    """A member's cumulative settlement (tokens), its escrow balance read from the chain's
    events (debt where it is below zero) and the escrow its binding bids locked."""
    st = _member_settlement(tables, member)
    x, ids = _times(tables), _ids(tables)
    fig = base_figure(f"Balance of member {member}", "time", "tokens")
    fig.add_scatter(x=x, y=st["net"].fillna(0).cumsum(), name="cumulative net", customdata=ids)
    if chain_balance is not None and len(chain_balance):
        values = chain_balance.reindex(ids)
        fig.add_scatter(x=x, y=values, name="escrow balance on chain", yaxis="y2")
        fig.add_bar(x=x, y=values.clip(upper=0), name="debt on chain", yaxis="y2")
        fig.update_layout(yaxis2={"title": "escrow tokens", "overlaying": "y", "side": "right"})
    if locks is not None:
        fig.add_bar(x=x, y=locks.reindex(ids).fillna(0), name="locked by binding bids")
    return fig
