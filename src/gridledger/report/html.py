"""The one HTML page builder, and the run report built with it.

A page is data: a title, optional opening blocks and titled sections, each a
sequence of blocks (:class:`Paragraph`, :class:`Table`, :class:`Image`).
:func:`render_page` turns it into one self-contained HTML document (figures
embedded as PNG data URIs, one style sheet inline); every text and table cell
is escaped. The run report (:func:`write_report`), ``gridledger compare`` and
every ``gridledger experiment`` page are built this way.
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
from matplotlib.figure import Figure

from gridledger.grid import load_feeder
from gridledger.report.kpis import summary
from gridledger.report.plots import PLOTS
from gridledger.report.tables import RunTables, load_tables

__all__ = [
    "Block",
    "Code",
    "Image",
    "Inline",
    "Page",
    "Paragraph",
    "Section",
    "Strong",
    "Table",
    "figure_to_data_uri",
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


Inline = str | Strong | Code


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


Block = Paragraph | Table | Image


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


def _inline(part: Inline) -> str:
    if isinstance(part, Strong):
        return f"<b>{html.escape(part.text)}</b>"
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text)}</code>"
    return html.escape(part)


def _block(block: Block) -> str:
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
    return f"<img src='{html.escape(block.data_uri)}'>"


def render_page(page: Page) -> str:
    """The page as one self-contained HTML document."""
    parts = [f"<h1>{html.escape(page.heading)}</h1>"]
    parts.extend(_block(block) for block in page.intro)
    for section in page.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(_block(block) for block in section.blocks)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(page.title)}"
        f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_page(page: Page, path: Path) -> Path:
    """Render ``page`` into ``path`` (UTF-8); return the path."""
    path.write_text(render_page(page), encoding="utf-8")
    return path


def _kpi_table(kpis: dict[str, Any]) -> Table:
    rows = [(key, json.dumps(value)) for key, value in kpis.items() if not isinstance(value, dict)]
    return Table(pd.DataFrame(rows, columns=["kpi", "value"]), index=False, header=False)


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
    sections = [Section("Key figures", [_kpi_table(kpis)])]
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
    for title, plot in PLOTS:
        fig = plot(tables, feeder)
        if fig is not None:
            sections.append(Section(title, [Image.of(fig)]))
    page = Page(
        "gridledger report", f"gridledger run: {kpis['scenario']}", [intro], sections=sections
    )
    path = write_page(page, out_dir / "report.html")
    log.info("report written to %s", path)
    return path


def rebuild_report(out_dir: Path) -> Path:
    """Rebuild ``summary.json`` and ``report.html`` from a saved output folder."""
    return write_report(load_tables(out_dir), out_dir)
