"""The one HTML page builder, and the run report built with it.

A page is data: a title, optional navigation links, opening blocks and titled
sections, each a sequence of blocks (:class:`Paragraph`, :class:`Table`,
:class:`Image`, :class:`Chart`). :func:`render_page` turns it into one HTML
document (PNG figures as data URIs, one style sheet inline, interactive plotly
charts with plotly.js inlined, so one file works offline; the explorer passes a
``plotly_src`` URL instead); every text and table cell is escaped. The run report
(:func:`write_report`), ``gridledger compare``, every ``gridledger experiment``
page and every page of ``gridledger serve`` are built this way. The run report holds
only interactive charts (the explorer's figures, :mod:`gridledger.report.figures` and
:mod:`gridledger.report.details`), no picture.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from matplotlib.figure import Figure
from plotly.offline import get_plotlyjs

from gridledger.grid import load_feeder
from gridledger.report.details import DETAILS
from gridledger.report.figures import TIMELINE, fig_trade_map
from gridledger.report.keyfigures import GROUPS, grouped
from gridledger.report.kpis import summary
from gridledger.report.tables import RunTables, load_tables

__all__ = [
    "Block",
    "Chart",
    "Code",
    "Image",
    "Inline",
    "Link",
    "Page",
    "Paragraph",
    "Section",
    "Strong",
    "Table",
    "figure_to_data_uri",
    "key_figure_sections",
    "rebuild_report",
    "render_page",
    "write_page",
    "write_report",
]

log = logging.getLogger(__name__)

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:0.9em}td,th{padding:2px 10px;border-bottom:1px solid #ddd}
td:last-child{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}
h2{margin-top:1.6em;border-bottom:2px solid #eee}
nav{margin-bottom:1em}nav a{margin-right:1.2em}
.chart{min-height:340px;margin:0.5em 0}
"""


def figure_to_data_uri(fig: Figure) -> str:
    """PNG data URI of ``fig`` (110 dpi); closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass(frozen=True, slots=True)
class Strong:
    """Bold text inside a paragraph."""

    text: str


@dataclass(frozen=True, slots=True)
class Code:
    """Code (monospace) text inside a paragraph."""

    text: str


@dataclass(frozen=True, slots=True)
class Link:
    """A hyperlink inside a paragraph or in the page's navigation."""

    text: str
    href: str


Inline = str | Strong | Code | Link


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of plain, bold and code runs."""

    parts: tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A data frame shown as a table; numbers formatted with ``float_format``."""

    frame: pd.DataFrame
    index: bool = True
    header: bool = True
    float_format: str | None = "%.4f"


@dataclass(frozen=True, slots=True)
class Image:
    """A picture embedded in the page as a data URI (see :meth:`of`)."""

    data_uri: str

    @classmethod
    def of(cls, fig: Figure) -> Image:
        """The figure as a PNG image; closes the figure."""
        return cls(figure_to_data_uri(fig))


@dataclass(frozen=True, slots=True)
class Chart:
    """An interactive plotly figure. With ``click_url`` (a template holding ``{}``), a
    click on a point opens that URL with the point's ``customdata`` filled in."""

    figure: go.Figure
    click_url: str | None = None


Block = Paragraph | Table | Image | Chart


@dataclass(frozen=True, slots=True)
class Section:
    """A titled part of a page."""

    title: str
    blocks: Sequence[Block]


@dataclass(frozen=True, slots=True)
class Page:
    """A whole page: ``title`` (browser tab), ``heading`` (h1), opening blocks, sections."""

    title: str
    heading: str
    intro: Sequence[Block] = ()
    sections: Sequence[Section] = ()
    nav: Sequence[Link] = ()
    refresh_s: int | None = None
    """Reload the page every ``refresh_s`` seconds (a live page); None: never."""


def _inline(part: Inline) -> str:
    if isinstance(part, Strong):
        return f"<b>{html.escape(part.text)}</b>"
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text)}</code>"
    if isinstance(part, Link):
        return f"<a href='{html.escape(part.href)}'>{html.escape(part.text)}</a>"
    return html.escape(part)


def _chart(chart: Chart, number: int) -> str:
    """A div and the script that draws ``chart`` into it (JSON safe inside <script>)."""
    div = f"chart-{number}"
    data = pio.to_json(chart.figure, validate=False).replace("</", "<\\/")
    script = (
        f"var f={data};Plotly.newPlot('{div}',f.data,f.layout,"
        "{responsive:true,displaylogo:false});"
    )
    if chart.click_url is not None:
        url = json.dumps(chart.click_url).replace("</", "<\\/")
        script += (
            f"document.getElementById('{div}').on('plotly_click',function(e){{"
            "var p=e.points[0];if(p&&p.customdata!==undefined){"
            f"window.location={url}.replace('{{}}',String(p.customdata));}}}});"
        )
    return f"<div class='chart' id='{div}'></div><script>{script}</script>"


def _block(block: Block, number: int = 0) -> str:
    if isinstance(block, Paragraph):
        return "<p>" + "".join(_inline(part) for part in block.parts) + "</p>"
    if isinstance(block, Table):
        return str(
            block.frame.to_html(
                index=block.index,
                header=block.header,
                float_format=block.float_format,
                escape=True,
            )
        )
    if isinstance(block, Chart):
        return _chart(block, number)
    return f"<img src='{html.escape(block.data_uri)}'>"


def render_page(page: Page, plotly_src: str | None = None) -> str:
    """The page as one HTML document: self-contained (plotly.js inlined when the page has
    a chart), or loading plotly.js from ``plotly_src`` when given."""
    parts = []
    if page.nav:
        parts.append("<nav>" + "".join(_inline(link) for link in page.nav) + "</nav>")
    parts.append(f"<h1>{html.escape(page.heading)}</h1>")
    blocks = [*page.intro]
    parts.extend(_block(block, n) for n, block in enumerate(page.intro))
    for section in page.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            parts.append(_block(block, len(blocks)))
            blocks.append(block)
    head = f"<meta charset='utf-8'><title>{html.escape(page.title)}</title><style>{STYLE}</style>"
    if page.refresh_s:
        head += f"<meta http-equiv='refresh' content='{int(page.refresh_s)}'>"
    if any(isinstance(block, Chart) for block in blocks):
        if plotly_src is None:
            head += f"<script>{get_plotlyjs()}</script>"
        else:
            head += f"<script src='{html.escape(plotly_src)}'></script>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


def write_page(page: Page, path: Path) -> Path:
    """Render ``page`` into ``path`` (UTF-8); return the path."""
    path.write_text(render_page(page), encoding="utf-8")
    return path


def key_figure_sections(kpis: dict[str, Any]) -> list[Section]:
    """One section per group of key figures (market, grid, settlement, chain): a table of
    label, value with unit and a one-line explanation."""
    sections = []
    for group, rows in grouped(kpis).items():
        if rows and group in GROUPS:
            cells = [(label, why, value) for label, value, why in rows]
            frame = pd.DataFrame(cells, columns=["figure", "what it means", "value"])
            sections.append(Section(f"Key figures: {group}", [Table(frame, index=False)]))
    return sections


def _attitude_table(rows: dict[str, dict[str, float]]) -> Table:
    keys = ["members", "offered_kwh", "traded_kwh", "trade_rate", "margin_per_kwh"]
    cells = [[name, *(str(row.get(key, "")) for key in keys)] for name, row in rows.items()]
    return Table(pd.DataFrame(cells, columns=["attitude", *keys]), index=False)


def write_report(tables: RunTables, out_dir: Path) -> Path:
    """Write ``summary.json`` and ``report.html`` into ``out_dir``; return the report path."""
    kpis = summary(tables)
    (out_dir / "summary.json").write_text(json.dumps(kpis, indent=2))
    feeder = load_feeder(tables.meta["feeder"])
    intro = Paragraph(
        (
            "Feeder ",
            Strong(str(kpis["feeder"])),
            f", {kpis['members']} members, {kpis['intervals']} intervals, mechanism ",
            Strong(str(kpis["mechanism"])),
            ", clearing ",
            Strong(str(kpis["clearing"])),
            ", chain ",
            Strong(str(kpis["chain"])),
            ".",
        )
    )
    sections = key_figure_sections(kpis)
    if kpis.get("by_attitude"):
        note = Paragraph(
            (
                "Per run, attitudes are mixed with members' different limits and sizes; "
                "the controlled comparison (same limits, attitude the only difference) is ",
                Code("gridledger.studies.aa_markets.attitude_table"),
                ", see docs/bidding.md.",
            )
        )
        sections.append(Section("Risk attitudes", [_attitude_table(kpis["by_attitude"]), note]))
    if len(tables.intervals):
        sections.append(Section("Timeline", [Chart(make(tables)) for make in TIMELINE]))
        sections.append(Section("Trades on the feeder map", [Chart(fig_trade_map(tables, feeder))]))
    for title, make in DETAILS:
        fig = make(tables, feeder)
        if fig is not None:
            sections.append(Section(title, [Chart(fig)]))
    page = Page(
        "gridledger report", f"gridledger run: {kpis['scenario']}", [intro], sections=sections
    )
    path = write_page(page, out_dir / "report.html")
    log.info("report written to %s", path)
    return path


def rebuild_report(out_dir: Path) -> Path:
    """Rebuild ``summary.json`` and ``report.html`` from a saved output folder."""
    return write_report(load_tables(out_dir), out_dir)
