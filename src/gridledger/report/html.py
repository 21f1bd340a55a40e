"""The self-contained run report (one HTML file, plots embedded as PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from gridledger.grid import load_feeder
from gridledger.report.kpis import summary
from gridledger.report.plots import PLOTS
from gridledger.report.tables import RunTables, load_tables

__all__ = ["figure_to_data_uri", "rebuild_report", "write_report"]

log = logging.getLogger(__name__)

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:0.9em}td,th{padding:2px 10px;border-bottom:1px solid #ddd}
td:last-child{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}
h2{margin-top:1.6em;border-bottom:2px solid #eee}
"""


def figure_to_data_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _kpi_table(kpis: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(json.dumps(v))}</td></tr>"
        for k, v in kpis.items()
        if not isinstance(v, dict)
    )
    return f"<table>{rows}</table>"


def _attitude_table(rows: dict[str, dict[str, float]]) -> str:
    keys = ["members", "offered_kwh", "traded_kwh", "trade_rate", "margin_per_kwh"]
    head = "".join(f"<th>{k}</th>" for k in ["attitude", *keys])
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{row.get(k, '')}</td>" for k in keys)
        + "</tr>"
        for name, row in rows.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(
    tables: RunTables, out_dir: Path, extra: list[tuple[str, str]] | None = None
) -> Path:
    """Write ``summary.json`` and ``report.html`` into ``out_dir``; return the report path."""
    kpis = summary(tables)
    (out_dir / "summary.json").write_text(json.dumps(kpis, indent=2))
    feeder = load_feeder(tables.meta["feeder"])
    parts = [
        f"<h1>gridledger run: {html.escape(str(kpis['scenario']))}</h1>",
        f"<p>Feeder <b>{html.escape(str(kpis['feeder']))}</b>, {kpis['members']} members, "
        f"{kpis['intervals']} intervals, mechanism <b>{html.escape(str(kpis['mechanism']))}</b>, "
        f"clearing <b>{html.escape(str(kpis['clearing']))}</b>, chain "
        f"<b>{html.escape(str(kpis['chain']))}</b>.</p>",
        "<h2>Key figures</h2>",
        _kpi_table(kpis),
    ]
    if kpis.get("by_attitude"):
        parts.append("<h2>Risk attitudes</h2>" + _attitude_table(kpis["by_attitude"]))
        parts.append(
            "<p>Per run, attitudes are mixed with members' different limits and sizes; "
            "the controlled comparison (same limits, attitude the only difference) is "
            "<code>gridledger.studies.aa_markets.attitude_table</code>, see docs/bidding.md.</p>"
        )
    for title, plot in PLOTS:
        fig = plot(tables, feeder)
        if fig is None:
            continue
        parts.append(f"<h2>{html.escape(title)}</h2><img src='{figure_to_data_uri(fig)}'>")
    for title, body in extra or []:
        parts.append(f"<h2>{html.escape(title)}</h2>{body}")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>gridledger report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    log.info("report written to %s", path)
    return path


def rebuild_report(out_dir: Path) -> Path:
    """Rebuild ``summary.json`` and ``report.html`` from a saved output folder."""
    return write_report(load_tables(out_dir), out_dir)
