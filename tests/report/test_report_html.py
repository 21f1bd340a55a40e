"""report.html: one self-contained file with interactive figures and grouped key figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridledger.cli import main
from gridledger.report.keyfigures import GROUPS, KEY_FIGURES, format_value, grouped

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


def test_key_figures_grouped_with_units_and_explanations(report: str) -> None:
    for group in GROUPS:
        assert f"Key figures: {group}" in report
    assert "Mean trade distance" in report and " km</td>" in report
    assert "Energy-weighted path length" in report
    assert "mean_trade_distance_km" not in report.split("<h2>Timeline")[0]  # no raw JSON keys


def test_format_value_units_and_missing_values() -> None:
    assert format_value(0.25, "%") == "25.0 %"
    assert format_value(None, "kWh") == "-"
    assert format_value(True, "yes/no") == "yes"
    assert format_value(1234.5, "kWh") == "1,234.50 kWh"
    assert format_value(12, "count") == "12"
    rows = grouped({"traded_kwh": 3.5, "chain": "none", "unknown_key": 1})
    assert rows["market"] == [("Energy traded P2P", "3.5000 kWh", KEY_FIGURES[0].explanation)]
    assert rows["chain"][0][1] == "none"
    assert len({f.key for f in KEY_FIGURES}) == len(KEY_FIGURES)
