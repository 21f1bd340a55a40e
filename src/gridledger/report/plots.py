"""Plots of a run (matplotlib, Agg backend), each a function of the saved tables."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from gridledger.grid import Feeder
from gridledger.report.tables import RunTables

__all__ = [
    "PLOTS",
    "draw_trade_map",
    "label_axes",
    "plot_best_response",
    "plot_energy_balance",
    "plot_line_loading",
    "plot_prices",
    "plot_round_convergence",
    "plot_trade_map",
    "plot_voltage_envelope",
    "plot_voltage_profile",
    "tree_layout",
]

PlotFn = Callable[[RunTables, Feeder], Figure | None]


def label_axes(ax: plt.Axes, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    """Axis labels, title and (small) legend of one panel."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7)


def _to_hours(tables: RunTables, interval: object) -> np.ndarray:
    """Hour of day of interval indices (the horizon may start after midnight)."""
    offset = int(tables.meta["scenario"]["horizon"].get("first_interval", 0))
    return (np.asarray(interval, dtype=float) + offset) * float(tables.meta["interval_h"])


def _hours(tables: RunTables) -> np.ndarray:
    return _to_hours(tables, tables.intervals["interval"])


def plot_prices(tables: RunTables, feeder: Feeder) -> Figure:
    """Clearing price per interval against the grid tariffs and the binding round's bids."""
    market = tables.meta["scenario"]["market"]
    hours = _hours(tables)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    rounds = tables.rounds
    if len(rounds):
        last = rounds[rounds["round"] == rounds["round"].max()]
        for side, colour in (("buy", "tab:blue"), ("sell", "tab:orange")):
            part = last[last["side"] == side]
            ax.scatter(
                _to_hours(tables, part["interval"]),
                part["price_per_kwh"],
                s=4,
                alpha=0.25,
                color=colour,
                label=f"{side} orders (binding round)",
            )
    iv = tables.intervals
    if "price_per_kwh" in iv and iv["price_per_kwh"].notna().any():
        ax.plot(hours, iv["price_per_kwh"], color="black", lw=1.8, label="clearing price")
    tr = tables.trades
    if len(tr) and iv["price_per_kwh"].isna().all():
        paid = (tr["buyer_price_per_kwh"] * tr["e_kwh"]).groupby(tr["interval"]).sum()
        mean = paid / tr.groupby("interval")["e_kwh"].sum().clip(lower=1e-9)
        ax.plot(
            _to_hours(tables, mean.index),
            mean.values,
            color="black",
            lw=1.8,
            label="mean buyer price",
        )
    ax.axhline(market["retail_per_kwh"], color="tab:red", ls="--", lw=1, label="retail tariff")
    ax.axhline(market["feed_in_per_kwh"], color="tab:green", ls="--", lw=1, label="feed-in tariff")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("price (tokens/kWh)")
    ax.set_title("Prices per interval")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    return fig


def plot_energy_balance(tables: RunTables, feeder: Feeder) -> Figure:
    """Members' load and PV, P2P traded energy and grid exchange per interval."""
    iv = tables.intervals
    hours = _hours(tables)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(hours, iv["load_kwh"], color="tab:blue", label="load")
    ax.plot(hours, iv["pv_kwh"], color="goldenrod", label="PV / DG")
    ax.fill_between(hours, 0, iv["traded_kwh"], color="tab:purple", alpha=0.4, label="P2P traded")
    ax.plot(hours, iv["grid_import_kwh"], color="tab:red", ls=":", label="grid import")
    ax.plot(hours, iv["grid_export_kwh"], color="tab:green", ls=":", label="grid export")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("energy per interval (kWh)")
    ax.set_title("Energy balance")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    return fig


def plot_trade_map(tables: RunTables, feeder: Feeder) -> Figure:
    """Trades drawn on the feeder map: arcs seller -> buyer, width by energy."""
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    draw_trade_map(ax, tables, feeder, "Trades on the feeder (whole run)")
    fig.tight_layout()
    return fig


def tree_layout(feeder: Feeder) -> np.ndarray:
    """Single-line-diagram coordinates: x = hops from the substation, y = leaf order.

    The longest path from the substation (the trunk) stays on one row; every
    lateral is drawn below its branching point, like a textbook feeder diagram.
    """
    children = feeder.tree.children()
    depth = np.asarray(feeder.tree.depth, dtype=float)
    height: dict[int, int] = {}
    for b in reversed([int(b) for b in feeder.tree.order]):
        height[b] = 1 + max((height[c] for c in children[b]), default=0)
    xy = np.zeros((len(depth), 2))
    next_row = [0.0]

    def place(bus: int, row: float) -> None:
        xy[bus] = (depth[bus], -row)
        kids = sorted(children[bus], key=lambda c: -height[c])
        for k, child in enumerate(kids):
            if k == 0:
                place(child, row)
            else:
                next_row[0] += 1.0
                place(child, next_row[0])

    place(0, 0.0)
    return xy


MAX_ARCS = 60


def draw_trade_map(ax: plt.Axes, tables: RunTables, feeder: Feeder, title: str) -> None:
    """Draw the feeder and the run's trade arcs (the largest bus pairs) into ``ax``."""
    xy = tree_layout(feeder)
    for a, b in zip(feeder.line_from, feeder.line_to, strict=True):
        ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="0.6", lw=1.2, zorder=1)
    members = tables.members
    pv = members.groupby("bus")["pv_kwp"].sum() if len(members) else None
    sizes = np.full(len(xy), 12.0)
    if pv is not None:
        for bus, kwp in pv.items():
            sizes[int(bus)] += float(kwp) / 3.0
    ax.scatter(xy[:, 0], xy[:, 1], s=sizes, color="tab:blue", zorder=3)
    ax.scatter(xy[0, 0], xy[0, 1], s=120, marker="s", color="black", zorder=4, label="substation")
    tr = tables.trades
    if len(tr):
        pairs = tr.groupby(["seller_bus", "buyer_bus"])["e_kwh"].sum()
        pairs = pairs[pairs.index.get_level_values(0) != pairs.index.get_level_values(1)]
        pairs = pairs.sort_values(ascending=False).iloc[:MAX_ARCS]
        top = float(pairs.max()) if len(pairs) else 1.0
        for (s_bus, b_bus), e_kwh in pairs.items():
            if s_bus == b_bus or e_kwh <= 0:
                continue
            (x0, y0), (x1, y1) = xy[int(s_bus)], xy[int(b_bus)]
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                zorder=2,
                arrowprops=dict(
                    arrowstyle="-|>",
                    color="tab:purple",
                    alpha=0.25 + 0.6 * e_kwh / top,
                    lw=0.4 + 3.5 * e_kwh / top,
                    connectionstyle="arc3,rad=0.25",
                ),
            )
    for bus in range(len(xy)):
        ax.text(xy[bus, 0], xy[bus, 1], f" {bus}", fontsize=6, color="0.3")
    ax.set_title(
        f"{title}\n(arcs: top {MAX_ARCS} bus pairs by kWh, seller -> buyer; dot size: PV kWp)",
        fontsize=9,
    )
    ax.set_axis_off()


def plot_voltage_envelope(tables: RunTables, feeder: Feeder) -> Figure:
    """Lowest and highest bus voltage per interval, before and after management."""
    iv = tables.intervals
    sec = tables.meta["scenario"]["security"]
    hours = _hours(tables)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.fill_between(
        hours,
        iv["v_min_pu"],
        iv["v_max_pu"],
        color="tab:blue",
        alpha=0.3,
        label="voltage envelope (after)",
    )
    if "v_min_before_pu" in iv and not np.allclose(iv["v_min_before_pu"], iv["v_min_pu"]):
        ax.plot(hours, iv["v_min_before_pu"], color="tab:red", lw=0.8, ls=":", label="before")
        ax.plot(hours, iv["v_max_before_pu"], color="tab:red", lw=0.8, ls=":")
    ax.axhline(sec["v_min_pu"], color="black", ls="--", lw=1, label="limits")
    ax.axhline(sec["v_max_pu"], color="black", ls="--", lw=1)
    label_axes(ax, "hour of day", "voltage (p.u.)", "Voltage envelope")
    fig.tight_layout()
    return fig


def plot_line_loading(tables: RunTables, feeder: Feeder) -> Figure | None:
    """Heat map of line loading (%) per interval."""
    data = np.asarray(tables.line_loading, dtype=float)
    if data.size == 0:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.6))
    hours = _hours(tables)
    step = float(tables.meta["interval_h"])
    image = ax.imshow(
        data.T,
        aspect="auto",
        cmap="magma_r",
        vmin=0,
        vmax=max(100.0, data.max()),
        extent=(hours[0], hours[-1] + step, data.shape[1] - 0.5, -0.5),
    )
    fig.colorbar(image, ax=ax, label="loading (%)")
    label_axes(ax, "hour of day", "line", "Line loading", legend=False)
    fig.tight_layout()
    return fig


def plot_round_convergence(tables: RunTables, feeder: Feeder) -> Figure | None:
    """Per-round orders and indicative prices for the busiest interval."""
    rounds = tables.rounds
    if len(rounds) == 0 or rounds["round"].max() == 0:
        return None
    busiest = int(tables.intervals.loc[tables.intervals["traded_kwh"].idxmax(), "interval"])
    part = rounds[rounds["interval"] == busiest]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for side, colour in (("buy", "tab:blue"), ("sell", "tab:orange")):
        sub = part[part["side"] == side]
        for _member, d in sub.groupby("member"):
            ax.plot(d["round"], d["price_per_kwh"], color=colour, alpha=0.35, lw=0.8)
        best = sub.groupby("round")["price_per_kwh"].agg("max" if side == "buy" else "min")
        ax.plot(best.index, best.values, color=colour, lw=2.5, label=f"best {side}")
    label_axes(ax, "bidding round", "price (tokens/kWh)", f"Bids per round, interval {busiest}")
    fig.tight_layout()
    return fig


def plot_voltage_profile(tables: RunTables, feeder: Feeder) -> Figure | None:
    """Voltage along the feeder (bus by bus) in the worst interval, before and after management."""
    before = np.asarray(tables.bus_voltages_before, dtype=float)
    after = np.asarray(tables.bus_voltages, dtype=float)
    if before.size == 0:
        return None
    sec = tables.meta["scenario"]["security"]
    excess = np.maximum(before - sec["v_max_pu"], sec["v_min_pu"] - before).max(axis=1)
    worst = int(np.argmax(excess))
    depth = np.asarray(feeder.tree.depth)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    children = feeder.tree.children()
    for values, colour, label in ((before, "tab:red", "before"), (after, "tab:blue", "after")):
        v = values[worst]
        for bus in range(len(v)):
            for child in children[bus]:
                ax.plot(depth[[bus, child]], v[[bus, child]], color=colour, lw=1.2)
        ax.scatter(depth, v, s=10, color=colour, label=f"{label} management")
    ax.axhline(sec["v_min_pu"], color="black", ls="--", lw=1)
    ax.axhline(sec["v_max_pu"], color="black", ls="--", lw=1, label="limits")
    hour = _to_hours(tables, [tables.intervals["interval"].iloc[worst]])[0]
    label_axes(
        ax,
        "hops from the substation (every branch drawn)",
        "voltage (p.u.)",
        f"Voltage profile along the feeder, worst interval ({hour:.2f} h)",
    )
    fig.tight_layout()
    return fig


def plot_best_response(tables: RunTables, feeder: Feeder) -> Figure | None:
    """Best response per interval: rounds to converge and the equilibrium check's
    largest deviation gain against the tolerance (best-response runs only)."""
    iv = tables.intervals
    if "br_rounds" not in iv or iv["br_rounds"].isna().all():
        return None
    hours = _hours(tables)
    converged = iv["br_converged"].astype(bool).to_numpy()
    fig, (ax_r, ax_g) = plt.subplots(1, 2, figsize=(11, 3.6))
    ax_r.bar(hours[converged], iv["br_rounds"][converged], width=0.2, label="converged")
    if (~converged).any():
        ax_r.bar(
            hours[~converged],
            iv["br_rounds"][~converged],
            width=0.2,
            color="tab:red",
            label="not converged",
        )
    label_axes(ax_r, "hour of day", "best-response rounds", "Rounds to converge")
    gains = iv["nash_max_gain"].to_numpy(dtype=float)
    floor = 1e-7  # exact equilibria (gain 0) drawn at the bottom of the log axis
    ax_g.semilogy(hours, np.maximum(gains, floor), "o", ms=3, label="largest deviation gain")
    if "br_epsilon" in iv:
        ax_g.semilogy(hours, iv["br_epsilon"], "_", color="black", ms=7, label="tolerance met")
    ax_g.axhline(1e-4, color="tab:green", ls=":", lw=1, label="exact (1e-4)")
    label_axes(ax_g, "hour of day", "share of payoff scale", "Equilibrium check per interval")
    fig.tight_layout()
    return fig


PLOTS: list[tuple[str, PlotFn]] = [
    ("Prices per interval", plot_prices),
    ("Energy balance", plot_energy_balance),
    ("Trades on the feeder map", plot_trade_map),
    ("Voltage envelope", plot_voltage_envelope),
    ("Voltage profile along the feeder", plot_voltage_profile),
    ("Line loading", plot_line_loading),
    ("Bidding rounds", plot_round_convergence),
    ("Best response: convergence and equilibrium check", plot_best_response),
]
