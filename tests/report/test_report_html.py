"""report.html: one self-contained file with interactive figures and grouped key figures."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from gridledger.cli import main
from gridledger.grid import load_feeder
from gridledger.report.details import fig_best_response
from gridledger.report.figures import fig_trade_map
from gridledger.report.keyfigures import GROUPS, KEY_FIGURES, format_value, grouped
from gridledger.report.tables import RunTables

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "run"
    args = ["run", str(IEEE33), "--chain", "none", "--out", str(out), "-q"]
    args += ["--set", "horizon.intervals=2", "--set", "horizon.first_interval=48"]
    assert main(args) == 0
    return (out / "report.html").read_text(encoding="utf-8")


def test_report_is_one_offline_file_with_interactive_charts(report: str) -> None:
    assert "Plotly.newPlot" in report
    assert re.search(r"<script[^>]*\bsrc=", report) is None  # plotly.js inlined, nothing fetched
    assert report.count("class='chart'") >= 6  # five timeline figures and the trade map


def test_report_embeds_no_picture_and_draws_the_details_as_charts(report: str) -> None:
    body = report.split("<body>")[1]  # plotly.js in the head holds a data URI of its own
    assert "data:image/" not in body and "<img" not in body
    for title in ("Voltage profile along the feeder", "Line loading", "Bidding rounds"):
        section = report.split(f"<h2>{title}</h2>")[1].split("<h2>")[0]
        assert "class='chart'" in section and "Plotly.newPlot" in section, title
    assert report.count("class='chart'") == 9  # timeline 5, map, the three details


def test_best_response_figure_has_rounds_and_the_equilibrium_check() -> None:
    intervals = pd.DataFrame(
        {
            "time": ["12:00", "12:15"],
            "br_rounds": [3, 7],
            "br_converged": [True, False],
            "nash_max_gain": [0.0, 2e-3],
            "br_epsilon": [1e-4, 1e-3],
        }
    )
    tables = RunTables({}, intervals, *(pd.DataFrame() for _ in range(7)))
    fig = fig_best_response(tables, load_feeder("ieee33"))
    assert fig is not None
    assert [t.name for t in fig.data] == [
        "rounds (red: not converged)",
        "largest deviation gain",
        "tolerance met",
    ]
    assert fig.layout.yaxis2.type == "log" and min(fig.data[1].y) > 0  # gain 0 drawn at 1e-7
    no_br = RunTables({}, intervals.drop(columns="br_rounds"), *(pd.DataFrame() for _ in range(7)))
    assert fig_best_response(no_br, load_feeder("ieee33")) is None


def test_trade_map_with_only_fully_curtailed_trades() -> None:
    """Found on a congested SimBench LV feeder: every trade of the run curtailed to 0 kWh
    made the map divide by zero; such trades move no energy and draw no arrow."""
    trades = pd.DataFrame(
        {"interval": [0, 0], "seller_bus": [3, 5], "buyer_bus": [7, 7], "e_kwh": [0.0, 0.0]}
    )
    empty = (pd.DataFrame() for _ in range(5))
    tables = RunTables({}, pd.DataFrame(), pd.DataFrame(), trades, *empty)
    fig = fig_trade_map(tables, load_feeder("ieee33"))
    assert fig.data[0].name == "lines"
    assert not any("->" in str(t.name) for t in fig.data)


def test_key_figures_grouped_with_units_and_explanations(report: str) -> None:
    for group in GROUPS:
        assert f"Key figures: {group}" in report
    assert "Mean trade distance" in report and " km</td>" in report
    assert "Energy-weighted path length" in report
    loading = report.split("Highest line loading")[1].split("</tr>")[0]
    assert float(loading.split("<td>")[-1].split(" %")[0]) < 200  # percent, not x100
    assert "mean_trade_distance_km" not in report.split("<h2>Timeline")[0]  # no raw JSON keys


def test_format_value_units_and_missing_values() -> None:
    assert format_value(0.25, "%") == "25.0 %"
    assert format_value(23.69, "pct") == "23.7 %"  # max_line_loading_pct is in percent
    assert format_value(None, "kWh") == "-"
    assert format_value(True, "yes/no") == "yes"
    assert format_value(1234.5, "kWh") == "1,234.50 kWh"
    assert format_value(12, "count") == "12"
    rows = grouped({"traded_kwh": 3.5, "chain": "none", "unknown_key": 1})
    assert rows["market"] == [("Energy traded P2P", "3.5000 kWh", KEY_FIGURES[0].explanation)]
    assert rows["chain"][0][1] == "none"
    assert len({f.key for f in KEY_FIGURES}) == len(KEY_FIGURES)
