"""The report's detail figures (plotly): the voltage profile along the feeder, line
loading, the bidding rounds and the best-response check.

Interactive counterparts of the matplotlib plots in :mod:`gridledger.report.plots` (which
the studies and tests still use), so report.html embeds no picture: every figure in it is
a plotly chart, drawn offline by the plotly.js the page carries.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gridledger.grid import Feeder
from gridledger.report.figures import LAYOUT, base_figure
from gridledger.report.tables import RunTables

__all__ = [
    "DETAILS",
    "fig_best_response",
    "fig_line_loading",
    "fig_round_convergence",
    "fig_voltage_profile",
]

EXACT_GAIN = 1e-4
"""A largest deviation gain below this share of the payoff scale is an exact equilibrium."""


def fig_voltage_profile(tables: RunTables, feeder: Feeder) -> go.Figure | None:
    """Voltage bus by bus along the feeder (hops from the substation, every branch drawn)
    in the worst interval, before and after security management, against the limits."""
    before = np.asarray(tables.bus_voltages_before, dtype=float)
    after = np.asarray(tables.bus_voltages, dtype=float)
    if before.size == 0 or after.shape != before.shape:
        return None
    sec = tables.meta["scenario"]["security"]
    excess = np.maximum(before - sec["v_max_pu"], sec["v_min_pu"] - before).max(axis=1)
    worst = int(np.argmax(excess))
    when = tables.intervals["time"].iloc[worst]
    depth = np.asarray(feeder.tree.depth, dtype=float)
    children = feeder.tree.children()
    fig = base_figure(
        f"Voltage profile along the feeder, worst interval ({when})",
        "hops from the substation (every branch drawn)",
        "voltage (p.u.)",
        hovermode="closest",
    )
    for values, colour, label in ((before, "#d62728", "before"), (after, "#1f77b4", "after")):
        v = values[worst]
        xs: list[float | None] = []
        ys: list[float | None] = []
        for bus in range(len(v)):
            for child in children[bus]:
                xs += [float(depth[bus]), float(depth[child]), None]
                ys += [float(v[bus]), float(v[child]), None]
        fig.add_scatter(
            x=xs, y=ys, mode="lines", line={"color": colour, "width": 1}, showlegend=False
        )
        fig.add_scatter(
            x=depth,
            y=v,
            mode="markers",
            marker={"color": colour, "size": 6},
            text=[f"bus {b}" for b in range(len(v))],
            name=f"{label} management",
        )
    for key in ("v_min_pu", "v_max_pu"):
        fig.add_hline(y=float(sec[key]), line={"dash": "dash", "color": "black", "width": 1})
    return fig


def fig_line_loading(tables: RunTables, feeder: Feeder) -> go.Figure | None:
    """Heat map of every line's loading (%) per interval."""
    data = np.asarray(tables.line_loading, dtype=float)
    if data.size == 0:
        return None
    fig = base_figure("Line loading", "time", "line", hovermode="closest")
    fig.add_heatmap(
        x=[str(t) for t in tables.intervals["time"]],
        y=list(range(data.shape[1])),
        z=data.T,
        zmin=0,
        zmax=max(100.0, float(data.max())),
        colorscale="Magma",
        reversescale=True,
        colorbar={"title": {"text": "loading (%)"}},
        hovertemplate="%{x}, line %{y}: %{z:.1f} %<extra></extra>",
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def fig_round_convergence(tables: RunTables, feeder: Feeder) -> go.Figure | None:
    """Every member's bid price per round in the busiest interval, with the best bid and
    best ask of each round."""
    rounds = tables.rounds
    if len(rounds) == 0 or rounds["round"].max() == 0:
        return None
    busiest = int(tables.intervals.loc[tables.intervals["traded_kwh"].idxmax(), "interval"])
    part = rounds[rounds["interval"] == busiest]
    fig = base_figure(f"Bids per round, interval {busiest}", "bidding round", "price (tokens/kWh)")
    for side, colour, best in (("buy", "31,119,180", "max"), ("sell", "255,127,14", "min")):
        sub = part[part["side"] == side]
        for member, d in sub.groupby("member"):
            fig.add_scatter(
                x=d["round"],
                y=d["price_per_kwh"],
                mode="lines",
                line={"color": f"rgba({colour},0.35)", "width": 1},
                name=f"member {member} ({side})",
                showlegend=False,
            )
        line = sub.groupby("round")["price_per_kwh"].agg(best)
        fig.add_scatter(
            x=line.index,
            y=line.values,
            mode="lines+markers",
            line={"color": f"rgb({colour})", "width": 3},
            name=f"best {side}",
        )
    return fig


def fig_best_response(tables: RunTables, feeder: Feeder) -> go.Figure | None:
    """Best response per interval: rounds to converge, and the equilibrium check's largest
    deviation gain against the tolerance met (best-response runs only)."""
    iv = tables.intervals
    if "br_rounds" not in iv or iv["br_rounds"].isna().all():
        return None
    x = [str(t) for t in iv["time"]]
    converged = iv["br_converged"].fillna(False).astype(bool).to_numpy()
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Rounds to converge", "Equilibrium check per interval"),
    )
    colours = ["#1f77b4" if ok else "#d62728" for ok in converged]
    fig.add_bar(
        x=x, y=iv["br_rounds"], marker={"color": colours}, name="rounds (red: not converged)"
    )
    floor = 1e-7  # exact equilibria (gain 0) drawn at the bottom of the log axis
    gains = np.maximum(iv["nash_max_gain"].to_numpy(dtype=float), floor)
    fig.add_scatter(x=x, y=gains, mode="markers", name="largest deviation gain", row=1, col=2)
    if "br_epsilon" in iv:
        fig.add_scatter(
            x=x,
            y=iv["br_epsilon"],
            mode="markers",
            marker={"symbol": "line-ew-open", "size": 10, "color": "black"},
            name="tolerance met",
            row=1,
            col=2,
        )
    fig.add_hline(y=EXACT_GAIN, line={"dash": "dot", "color": "green"}, row=1, col=2)
    fig.update_yaxes(title_text="best-response rounds", row=1, col=1)
    fig.update_yaxes(title_text="share of payoff scale", type="log", row=1, col=2)
    fig.update_layout(**LAYOUT)
    return fig


DETAILS: tuple[tuple[str, Callable[[RunTables, Feeder], go.Figure | None]], ...] = (
    ("Voltage profile along the feeder", fig_voltage_profile),
    ("Line loading", fig_line_loading),
    ("Bidding rounds", fig_round_convergence),
    ("Best response: convergence and equilibrium check", fig_best_response),
)
"""The report's detail sections: title and figure (None: nothing to draw in this run)."""
