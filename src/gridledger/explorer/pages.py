"""The explorer's pages as :class:`~gridledger.report.html.Page` data (report/html.py renders).

Each function takes what the page shows (the run's tables, key figures, the chain
snapshot) and returns a page; :mod:`gridledger.explorer.app` serves them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from gridledger.explorer.chain import MICRO, ChainSnapshot, interval_rows, member_escrow
from gridledger.grid import Feeder
from gridledger.ledger.audit import AuditReport
from gridledger.market.units import price_to_micro
from gridledger.report.figures import (
    TIMELINE,
    fig_balance,
    fig_member_bids,
    fig_member_energy,
    fig_member_trades,
    fig_order_book,
    fig_order_book_moves,
    fig_readings,
    fig_settlement,
    fig_trade_map,
)
from gridledger.report.html import (
    Block,
    Chart,
    Inline,
    Link,
    Page,
    Paragraph,
    Section,
    Strong,
    Table,
    key_figure_sections,
)
from gridledger.report.tables import RunTables

__all__ = [
    "NAV",
    "SETTLEMENT_COLUMNS",
    "audit_page",
    "chain_note",
    "explorer_page",
    "fact_table",
    "interval_links",
    "interval_nav",
    "interval_page",
    "live_page",
    "member_over_run",
    "member_page",
    "members_section",
    "missing_page",
    "overview_page",
    "timeline_page",
    "trading_links",
]

NAV = (Link("Overview", "/"), Link("Timeline", "/timeline"), Link("Audit", "/audit"))
LIVE_REFRESH_S = 5


def explorer_page(title: str, sections: list[Section], intro: list[Block], live: bool) -> Page:
    """A page of the explorer: its navigation, and a reload every few seconds when live."""
    return Page(
        f"gridledger explorer: {title}",
        title,
        intro,
        sections,
        nav=NAV,
        refresh_s=LIVE_REFRESH_S if live else None,
    )


def chain_note(snap: ChainSnapshot) -> Paragraph:
    """Where the chain watcher stands, in words."""
    return Paragraph(("Chain: ", Strong(snap.status), "."))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    return "" if value is None else str(value)


def fact_table(rows: list[tuple[Any, ...]], columns: list[str]) -> Table:
    """Rows of facts as a table (floats to four places, None as empty)."""
    cells = [tuple(_cell(v) for v in row) for row in rows]
    return Table(pd.DataFrame(cells, columns=columns), index=False, float_format=None)


SETTLEMENT_COLUMNS = [
    "member",
    "p2p_paid",
    "p2p_received",
    "grid_paid",
    "grid_received",
    "net",
    "net on chain",
]
"""The columns of an interval page's settlement table (``net on chain``: IntervalSettled)."""


def members_section(tables: RunTables) -> Section:
    """The members, each a link to its page."""
    links: list[Any] = []
    for row in tables.members.itertuples():
        links += [Link(f"{row.id} {row.role} (bus {row.bus})", f"/member/{row.id}"), " · "]
    return Section("Members", [Paragraph(tuple(links[:-1]))])


def interval_links(tables: RunTables) -> Paragraph:
    """A link to every interval of the tables."""
    return Paragraph(
        tuple(
            part
            for i in tables.intervals["interval"]
            for part in (Link(f"{int(i)}", f"/interval/{int(i)}"), " ")
        )
    )


def interval_nav(intervals: Iterable[Any], interval: int) -> list[Inline]:
    """Links to the intervals before and after ``interval`` among ``intervals``."""
    ids = [int(i) for i in intervals]
    pos = ids.index(interval)
    nav: list[Inline] = [Link("< previous", f"/interval/{ids[pos - 1]}")] if pos > 0 else []
    if pos + 1 < len(ids):
        nav += [" ", Link("next >", f"/interval/{ids[pos + 1]}")]
    return nav


def trading_links(tables: RunTables, interval: int) -> Paragraph:
    """A link to every member with a trade in ``interval``."""
    trading = tables.trades[tables.trades["interval"] == interval]
    links: list[Any] = ["Members trading: "]
    for m in sorted(set(trading["buyer"]) | set(trading["seller"])):
        links += [Link(str(m), f"/member/{m}"), " "]
    return Paragraph(tuple(links))


def member_over_run(
    tables: RunTables, snap: ChainSnapshot, member: int, retail_micro: int, about: str, live: bool
) -> Page:
    """A member's page: ``about`` it, where the chain stands, and its bids, trades, energy
    and balance over the run; its escrow, locks and debt from the chain's events
    (``retail_micro``: the retail tariff the Market charges debt at)."""
    bids = fig_member_bids(tables, member)
    balance = fig_balance(tables, member, *member_escrow(snap.events, member, retail_micro))
    charts: list[Block] = [Chart(bids, click_url="/interval/{}")] if bids is not None else []
    charts += [
        Chart(fig_member_trades(tables, member), click_url="/interval/{}"),
        Chart(fig_member_energy(tables, member), click_url="/interval/{}"),
        Chart(balance),
    ]
    intro: list[Block] = [Paragraph((about,)), chain_note(snap)]
    return explorer_page(f"Member {member}", [Section("Over the run", charts)], intro, live)


def overview_page(
    kpis: dict[str, Any], tables: RunTables | None, snap: ChainSnapshot, live: bool
) -> Page:
    """Key figures grouped (market, grid, settlement, chain) and the members."""
    intro: list[Block] = [
        Paragraph(
            (
                "Scenario ",
                Strong(str(kpis.get("scenario"))),
                f", feeder {kpis.get('feeder')}, {kpis.get('members')} members, "
                f"{kpis.get('intervals')} intervals, clearing {kpis.get('clearing')}, "
                f"mechanism {kpis.get('mechanism')}. ",
                Link("Open the interval timeline", "/timeline"),
                ".",
            )
        ),
        chain_note(snap),
    ]
    sections = key_figure_sections(kpis)
    if tables is not None and len(tables.members):
        sections.append(members_section(tables))
    return explorer_page(f"Run {kpis.get('scenario')}", sections, intro, live)


def live_page(snap: ChainSnapshot, folder: str) -> Page:
    """While a run is going on (no tables yet): what the chain holds so far."""
    rows = interval_rows(snap.events)
    intro: list[Block] = [
        Paragraph(
            (
                f"{folder}: the run's tables are not written yet; the chain's events so far "
                "(this page reloads itself).",
            )
        ),
        chain_note(snap),
    ]
    sections: list[Section] = []
    if len(rows):
        fig = go.Figure(layout={"template": "plotly_white", "height": 320})
        fig.add_bar(x=rows["interval"], y=rows["fee_revenue"], name="fee revenue (tokens)")
        fig.add_bar(x=rows["interval"], y=rows["grid_delta"], name="grid account delta (tokens)")
        fig.update_layout(title="Settled intervals on chain", xaxis_title="interval")
        sections.append(Section("Intervals on chain", [Chart(fig), Table(rows, index=False)]))
    return explorer_page("Run in progress", sections, intro, live=True)


def timeline_page(tables: RunTables, live: bool) -> Page:
    """Prices, energy, welfare, fees, violations over the run; a click opens the interval."""
    intro: list[Block] = [
        Paragraph(("Click a point or bar to open that interval.",)),
        interval_links(tables),
    ]
    charts: list[Block] = [Chart(make(tables), click_url="/interval/{}") for make in TIMELINE]
    return explorer_page("Interval timeline", [Section("Timeline", charts)], intro, live)


def _security_table(row: pd.Series, snap: ChainSnapshot, interval: int) -> list[Block]:
    facts = [
        ("limit violations before management", row.get("violations_before")),
        ("limit violations after management", row.get("violations_after")),
        ("curtailed energy (kWh)", row.get("curtailed_kwh")),
        ("surplus lost to curtailment (tokens)", row.get("lost_surplus")),
        ("lowest / highest voltage (p.u.)", f"{row['v_min_pu']:.4f} / {row['v_max_pu']:.4f}"),
        ("highest line loading (%)", f"{row['max_line_loading_pct']:.1f}"),
        ("note", row.get("security_note") if isinstance(row.get("security_note"), str) else ""),
    ]
    blocks: list[Block] = [fact_table(facts, ["security", "value"])]
    for e in snap.events:
        if e.name == "SecurityRecorded" and int(e.args["interval"]) == interval:
            verdict = {0: "secure", 1: "curtailed", 2: "insecure"}.get(int(e.args["verdict"]))
            cuts = [str(c) for c in e.args.get("curtailments", ())]
            text = f"Verdict on chain: {verdict}; curtailments recorded: {len(cuts)}"
            blocks.append(Paragraph((text + (": " + "; ".join(cuts) if cuts else "") + ".",)))
    return blocks


def _clearing(tables: RunTables, interval: int) -> Table:
    tr = tables.trades[tables.trades["interval"] == interval]
    shown = tr[
        [
            "seller",
            "buyer",
            "seller_bus",
            "buyer_bus",
            "e_kwh",
            "seller_price_per_kwh",
            "buyer_price_per_kwh",
            "fee_per_kwh",
            "distance_km",
        ]
    ].rename(
        columns={
            "e_kwh": "kWh",
            "seller_price_per_kwh": "seller price (tokens/kWh)",
            "buyer_price_per_kwh": "buyer price (tokens/kWh)",
            "fee_per_kwh": "fee (tokens/kWh)",
            "distance_km": "distance (km)",
        }
    )
    return Table(shown, index=False)


def _settlement(tables: RunTables, snap: ChainSnapshot, interval: int) -> Table:
    st = tables.settlement[tables.settlement["interval"] == interval].copy()
    on_chain: dict[int, float] = {}
    for e in snap.events:
        if e.name == "IntervalSettled" and int(e.args["interval"]) == interval:
            for m, d in zip(e.args["members"], e.args["deltasMicro"], strict=True):
                on_chain[int(m)] = int(d) / MICRO
    st["net on chain"] = [on_chain.get(int(m)) for m in st["member"]]
    return Table(st[SETTLEMENT_COLUMNS], index=False)


def interval_page(
    tables: RunTables, feeder: Feeder, snap: ChainSnapshot, interval: int, live: bool
) -> Page:
    """One interval: order book per round, clearing, trades on the map, security verdict,
    readings against schedules, settlement per member."""
    iv = tables.intervals.set_index("interval")
    row = iv.loc[interval]
    nav = interval_nav(iv.index, interval)
    intro: list[Block] = [
        Paragraph(
            (
                f"Interval {interval}, {row['time']}: {row['traded_kwh']:.1f} kWh traded, "
                f"welfare {row['welfare']:.3f} tokens, fee revenue {row['fees']:.3f} tokens. ",
                *nav,
            )
        )
    ]
    book = [fig_order_book(tables, interval), fig_order_book_moves(tables, interval)]
    sections = [
        Section("Order book, round by round", [Chart(f) for f in book if f is not None]),
        Section("Clearing result", [trading_links(tables, interval), _clearing(tables, interval)]),
        Section("Trades on the feeder map", [Chart(fig_trade_map(tables, feeder, interval))]),
        Section("Security verdict and curtailments", _security_table(row, snap, interval)),
    ]
    readings, settlement = fig_readings(tables, interval), fig_settlement(tables, interval)
    if readings is not None:
        sections.append(Section("Readings against schedules", [Chart(readings)]))
    if settlement is not None:
        sections.append(
            Section(
                "Settlement per member", [Chart(settlement), _settlement(tables, snap, interval)]
            )
        )
    return explorer_page(f"Interval {interval}", sections, intro, live)


def member_page(tables: RunTables, snap: ChainSnapshot, member: int, live: bool) -> Page:
    """One member over the run: bids, trades, energy, balance, locks and debt."""
    info = tables.members.set_index("id").loc[member]
    about = (
        f"Member {member} ({info['name']}): {info['role']} at bus {info['bus']}, "
        f"PV {info['pv_kwp']} kWp, strategy {info['strategy']}, attitude "
        f"{info['risk_attitude']}, value {info['utility_per_kwh']:.4f} and cost "
        f"{info['cost_per_kwh']:.4f} tokens/kWh."
    )
    retail = price_to_micro(float(tables.meta["scenario"]["market"]["retail_per_kwh"]))
    return member_over_run(tables, snap, member, retail, about, live)


def audit_page(report: AuditReport | str, live: bool) -> Page:
    """The result of ``gridledger audit`` on the saved chain, with every finding."""
    if isinstance(report, str):
        return explorer_page("Audit", [], [Paragraph((report,))], live)
    facts = report.as_dict()
    problems = facts.pop("problems")
    verdict = "OK: chain data re-derive to the reference" if report.ok else "FAILED"
    sections = [
        Section("Audit", [fact_table([(k, str(v)) for k, v in facts.items()], ["check", "result"])])
    ]
    sections.append(
        Section(
            "Findings",
            [fact_table([(p,) for p in problems], ["finding"])]
            if problems
            else [Paragraph(("No findings.",))],
        )
    )
    return explorer_page("Audit", sections, [Paragraph(("Audit: ", Strong(verdict)))], live)


def missing_page(what: str) -> Page:
    """A page for something the run does not hold (an unknown interval or member)."""
    return explorer_page("Not found", [], [Paragraph((what,))], live=False)
