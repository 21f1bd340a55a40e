"""The explorer's pages of a node without a run folder (``gridledger serve --chain URL``).

The same pages as for a run folder (overview, timeline, interval, member, audit), drawn
from the tables :func:`~gridledger.explorer.chaintables.chain_tables` derives from the
followed Market's events, with the same figure builders where the chain holds their data
(order book, readings, settlement, a member's bids, trades, energy and balance). What only
a run folder holds is named on the page instead (:data:`~gridledger.explorer.chaintables.NOT_ON_CHAIN`).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from gridledger.explorer.chain import ChainSnapshot
from gridledger.explorer.chaintables import NOT_ON_CHAIN
from gridledger.explorer.node import NodeView
from gridledger.explorer.pages import (
    SETTLEMENT_COLUMNS,
    chain_note,
    explorer_page,
    fact_table,
    interval_links,
    interval_nav,
    member_over_run,
    members_section,
    trading_links,
)
from gridledger.ledger.encoding import unpack_curtailment
from gridledger.ledger.findings import AccountReplay
from gridledger.report.figures import (
    Trace,
    base_figure,
    fig_order_book,
    fig_order_book_moves,
    fig_prices,
    fig_readings,
    fig_settlement,
    interval_figure,
    interval_prices,
)
from gridledger.report.html import Block, Chart, Link, Page, Paragraph, Section, Strong
from gridledger.report.tables import RunTables

__all__ = [
    "NODE_TIMELINE",
    "fig_chain_energy",
    "fig_chain_money",
    "fig_chain_security",
    "node_interval_page",
    "node_member_page",
    "node_overview_page",
    "node_timeline_page",
]

NO_FOLDER = (
    "No run folder: these pages show what the Market's events hold. Give the run folder "
    "too (gridledger serve RUN_DIR --chain URL) for the rest."
)


def _x(tables: RunTables) -> tuple[list[str], list[int]]:
    ids = [int(i) for i in tables.intervals["interval"]]
    return [f"interval {i}" for i in ids], ids


def fig_chain_energy(tables: RunTables) -> go.Figure:
    """Delivered P2P energy, the grid exchange the settlement implies and the curtailed
    energy per interval, all from the chain."""
    iv = tables.intervals
    traces: list[Trace] = [
        ("bar", iv["traded_kwh"], "traded P2P (delivered)"),
        ("line", iv["grid_import_kwh"], "grid import"),
        ("line", iv["grid_export_kwh"], "grid export"),
        ("line", iv["curtailed_kwh"], "curtailed"),
    ]
    title = "Energy per interval (from the chain)"
    return interval_figure(title, "interval", "kWh", *_x(tables), traces)


def fig_chain_money(tables: RunTables) -> go.Figure:
    """Welfare at bid prices (``ClearingWelfare``), fee revenue and the grid account's
    settlement per interval."""
    iv = tables.intervals
    traces: list[Trace] = [
        ("bar", iv["bid_surplus"], "welfare at bid prices"),
        ("bar", iv["fees"], "fee revenue"),
        ("line", iv["grid_delta"], "grid account settlement"),
    ]
    title = "Welfare and fee revenue per interval (from the chain)"
    return interval_figure(title, "interval", "tokens", *_x(tables), traces)


def fig_chain_security(tables: RunTables) -> go.Figure:
    """The security verdict recorded per interval and the curtailments it carries."""
    iv = tables.intervals
    x, ids = _x(tables)
    fig = base_figure("Security verdicts per interval (from the chain)", "interval", "count")
    fig.add_bar(
        x=x,
        y=iv["curtailments"].fillna(0),
        name="curtailments recorded",
        text=[str(v) if isinstance(v, str) else "no verdict" for v in iv["verdict"]],
        customdata=ids,
    )
    fig.add_scatter(x=x, y=iv["curtailed_kwh"], name="curtailed kWh", yaxis="y2", customdata=ids)
    fig.update_layout(yaxis2={"title": "kWh curtailed", "overlaying": "y", "side": "right"})
    return fig


NODE_TIMELINE = (fig_prices, fig_chain_energy, fig_chain_money, fig_chain_security)
"""The timeline of a node without a run folder; each point's customdata is its interval."""


def _markets(view: NodeView) -> Block:
    if not view.markets:
        return Paragraph(
            (f"No gridledger Market on the node yet (blocks 0..{view.head} scanned).",)
        )
    rows = [
        (
            m.hex,
            m.first_block,
            m.events,
            "yes" if m.code_matches else "no",
            "followed" if view.market is not None and m.address == view.market.address else "",
        )
        for m in view.markets
    ]
    columns = ["Market", "first block", "events", "code is the shipped Market's", ""]
    return fact_table(rows, columns)


def _money(tables: RunTables) -> tuple[float, float]:
    prices = interval_prices(tables)
    energy = tables.trades.groupby("interval")["e_kwh"].sum().reindex(prices.index).fillna(0)
    total = float(energy.sum())
    if total <= 0:
        return float("nan"), float("nan")
    return (
        float((prices["buyer"].fillna(0) * energy).sum() / total),
        float((prices["seller"].fillna(0) * energy).sum() / total),
    )


def _key_figures(tables: RunTables, view: NodeView, snap: ChainSnapshot) -> list[Section]:
    iv, params = tables.intervals, view.params
    if params is None:
        return []
    buyer, seller = _money(tables)
    replay = AccountReplay(params.tariffs.retail_per_kwh_micro)
    replay.run(snap.events)
    matches = int(iv["settled_on_chain"].eq(True).sum())
    verdicts = iv["verdict"].value_counts().to_dict()
    market = [
        ("clearing rule", "how the Market matches bids", params.rule),
        ("rounds", "bidding rounds per interval", params.rounds),
        ("members", "registered on the Market", len(tables.members)),
        ("intervals", "opened / settled on chain", f"{len(iv)} / {int(iv['settled'].sum())}"),
        ("trades", "cleared trades, all intervals", len(tables.trades)),
        ("traded energy (kWh)", "P2P energy after curtailment", float(iv["traded_kwh"].sum())),
        ("mean buyer price (tokens/kWh)", "energy-weighted, fee included", buyer),
        ("mean seller price (tokens/kWh)", "energy-weighted", seller),
        (
            "welfare at bid prices (tokens)",
            "ClearingWelfare events",
            float(iv["bid_surplus"].sum()),
        ),
        ("retail tariff (tokens/kWh)", "the grid sells at", params.retail_per_kwh),
        ("feed-in tariff (tokens/kWh)", "the grid buys at", params.feed_in_per_kwh),
    ]
    security = [
        (
            "verdicts",
            "security verdicts recorded",
            ", ".join(f"{k} {v}" for k, v in verdicts.items()),
        ),
        ("curtailments", "curtailments recorded", int(iv["curtailments"].fillna(0).sum())),
        ("curtailed energy (kWh)", "cut from trades", float(iv["curtailed_kwh"].fillna(0).sum())),
    ]
    settlement = [
        ("fee revenue (tokens)", "the operator's account", float(iv["fees"].fillna(0).sum())),
        ("grid account (tokens)", "the grid's settlement", float(iv["grid_delta"].fillna(0).sum())),
        ("grid import (kWh)", "re-derived from readings", float(iv["grid_import_kwh"].sum())),
        ("grid export (kWh)", "re-derived from readings", float(iv["grid_export_kwh"].sum())),
        (
            "members in debt",
            "escrow below zero now",
            sum(1 for b in replay.balance.values() if b < 0),
        ),
        (
            "settlement re-derived",
            "intervals whose booked changes match",
            f"{matches} / {int(iv['settled'].sum())}",
        ),
    ]
    chain = [
        ("Market", "contract followed", view.market.hex if view.market else ""),
        ("token", "settlement token", params.token),
        ("DSO", "signs security verdicts", params.dso),
        ("events", "Market events read", len(snap.events)),
        ("head block", "latest block scanned", view.head),
    ]
    columns = ["figure", "what it means", "value"]
    return [
        Section(f"Key figures: {name}", [fact_table(rows, columns)])
        for name, rows in (
            ("market", market),
            ("security", security),
            ("settlement", settlement),
            ("chain", chain),
        )
    ]


def _not_on_chain() -> Section:
    return Section(
        "Not on chain (needs the run folder)",
        [fact_table([(what,) for what in NOT_ON_CHAIN], ["not shown"])],
    )


def node_overview_page(
    url: str, view: NodeView, snap: ChainSnapshot, tables: RunTables | None
) -> Page:
    """The node, its Markets, the followed one's key figures and members."""
    followed = (
        "no Market followed yet" if view.market is None else f"following Market {view.market.hex}"
    )
    intro: list[Block] = [
        Paragraph(
            (
                "Node ",
                Strong(url),
                f": {followed}. ",
                Link("Open the interval timeline", "/timeline"),
                ".",
            )
        ),
        chain_note(snap),
        Paragraph(
            (
                NO_FOLDER
                + " With several Markets the newest is followed; choose one with --market 0xADDRESS.",
            )
        ),
    ]
    sections = [Section("Markets on the node", [_markets(view)])]
    if tables is not None:
        sections += _key_figures(tables, view, snap)
        if len(tables.members):
            sections.append(members_section(tables))
    sections.append(_not_on_chain())
    return explorer_page("Node " + url, sections, intro, live=True)


def node_timeline_page(tables: RunTables) -> Page:
    """Prices, energy, welfare and fees, verdicts over the intervals on chain."""
    intro: list[Block] = [
        Paragraph(("Click a point or bar to open that interval. " + NO_FOLDER,)),
        interval_links(tables),
    ]
    charts: list[Block] = []
    if len(tables.intervals):
        charts = [Chart(make(tables), click_url="/interval/{}") for make in NODE_TIMELINE]
    sections = [Section("Timeline", charts or [Paragraph(("No interval on chain yet.",))])]
    missing = "Not on chain: load and PV energy, the competitive optimum, violations before management, voltages and line loading."
    sections.append(Section("Not shown", [Paragraph((missing,))]))
    return explorer_page("Interval timeline", sections, intro, live=True)


def _clearing(tables: RunTables, interval: int) -> Block:
    tr = tables.trades[tables.trades["interval"] == interval]
    if len(tr) == 0:
        return Paragraph(("No trades cleared on chain for this interval yet.",))
    rows = [
        (
            int(t.seller),
            int(t.buyer),
            int(t.seller_bus),
            int(t.buyer_bus),
            float(t.cleared_kwh),
            float(t.e_kwh),
            float(t.seller_price_per_kwh),
            float(t.buyer_price_per_kwh),
            float(t.fee_per_kwh),
        )
        for t in tr.itertuples()
    ]
    columns = [
        "seller",
        "buyer",
        "seller bus",
        "buyer bus",
        "cleared kWh",
        "delivered kWh",
        "seller price (tokens/kWh)",
        "buyer price (tokens/kWh)",
        "fee (tokens/kWh)",
    ]
    return fact_table(rows, columns)


def _security(row: pd.Series, snap: ChainSnapshot, interval: int) -> list[Block]:
    verdict = row.get("verdict")
    if not isinstance(verdict, str):
        return [Paragraph(("No security verdict recorded on chain for this interval yet.",))]
    lost = row.get("lost_surplus")
    blocks: list[Block] = [
        fact_table(
            [
                ("verdict on chain", verdict),
                ("curtailments recorded", int(row.get("curtailments") or 0)),
                ("curtailed energy (kWh)", float(row.get("curtailed_kwh") or 0.0)),
                ("surplus lost to curtailment (tokens)", None if pd.isna(lost) else float(lost)),
            ],
            ["security", "value"],
        )
    ]
    for e in snap.events:
        if e.name == "SecurityRecorded" and int(e.args["interval"]) == interval:
            cuts = [unpack_curtailment(int(w)) for w in e.args["curtailments"]]
            if cuts:
                rows = [(c.trade_index, c.cut_wh / 1000, c.element, c.element_index) for c in cuts]
                blocks.append(fact_table(rows, ["trade", "cut (kWh)", "element", "index"]))
    blocks.append(
        Paragraph(("Violations before management, voltages and line loading are not on chain.",))
    )
    return blocks


def _settlement(tables: RunTables, interval: int) -> Block:
    st = tables.settlement[tables.settlement["interval"] == interval]
    rows = [
        (
            int(s.member),
            s.p2p_paid,
            s.p2p_received,
            s.grid_paid,
            s.grid_received,
            s.net,
            s.net_on_chain,
        )
        for s in st.itertuples()
    ]
    return fact_table(rows, SETTLEMENT_COLUMNS)


def node_interval_page(tables: RunTables, snap: ChainSnapshot, interval: int) -> Page:
    """One interval from the chain: order book per round, clearing, security verdict,
    readings against schedules, settlement per member."""
    iv = tables.intervals.set_index("interval")
    row = iv.loc[interval]
    nav = interval_nav(iv.index, interval)
    opened = "" if pd.isna(row.get("block")) else f" (opened in block {int(row['block'])})"
    fees = (
        "not settled yet" if pd.isna(row.get("fees")) else f"fee revenue {row['fees']:.3f} tokens"
    )
    traded = 0.0 if pd.isna(row.get("traded_kwh")) else float(row["traded_kwh"])
    intro: list[Block] = [
        Paragraph((f"Interval {interval}{opened}: {traded:.1f} kWh traded, {fees}. ", *nav)),
        Paragraph((NO_FOLDER,)),
    ]
    book = [fig_order_book(tables, interval), fig_order_book_moves(tables, interval)]
    charts = [Chart(f) for f in book if f is not None]
    no_map = (
        "The feeder map is not drawn: the chain holds each trade's buses, not the feeder's "
        "lines (the table above names them). Serve the run folder for the map."
    )
    sections = [
        Section("Order book, round by round", charts or [Paragraph(("No rounds recorded yet.",))]),
        Section("Clearing result", [trading_links(tables, interval), _clearing(tables, interval)]),
        Section("Trades on the feeder map", [Paragraph((no_map,))]),
        Section("Security verdict and curtailments", _security(row, snap, interval)),
    ]
    readings, settlement = fig_readings(tables, interval), fig_settlement(tables, interval)
    if readings is None or settlement is None:
        waiting = "Readings and settlement: not recorded on chain for this interval yet."
        sections.append(Section("Readings and settlement", [Paragraph((waiting,))]))
    else:
        sections.append(Section("Readings against schedules", [Chart(readings)]))
        sections.append(
            Section("Settlement per member", [Chart(settlement), _settlement(tables, interval)])
        )
    return explorer_page(f"Interval {interval}", sections, intro, live=True)


def node_member_page(
    tables: RunTables, snap: ChainSnapshot, member: int, retail_micro: int
) -> Page:
    """One member from the chain: bids, trades, energy, balance, locks and debt."""
    info = tables.members.set_index("id").loc[member]
    about = (
        f"Member {member}: {info['role']} at bus {info['bus']}, account "
        f"{info['account']}, meter {info['meter']}, trading limit "
        f"{info['limit_kwh']:.3f} kWh per interval. Its name, PV, strategy and "
        "attitude are not on chain."
    )
    return member_over_run(tables, snap, member, retail_micro, about, live=True)
