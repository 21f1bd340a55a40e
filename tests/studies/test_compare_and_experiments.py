"""The headline commands: compare variants side by side, and named experiments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gridledger.cli import main
from gridledger.errors import ScenarioError
from gridledger.report.html import Code, Page, Paragraph, Section, Strong, Table, render_page
from gridledger.studies import experiments
from gridledger.studies.compare import parse_vary

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
NOON = ["horizon.intervals=4", "horizon.first_interval=48"]


def test_compare_network_fees_writes_table_and_page(tmp_path: Path) -> None:
    args = ["compare", str(IEEE33), "--vary", "market.network_fee=none,distance", "-q"]
    args += ["--set", "market.clearing=greedy", "--out", str(tmp_path)]
    for item in NOON:
        args += ["--set", item]
    assert main(args) == 0
    table = pd.read_csv(tmp_path / "compare.csv", index_col=0)
    assert list(table.index) == ["network_fee=none", "network_fee=distance"]
    # the distance fee makes energy travel less far (or not at all when nothing trades)
    none, dist = table.loc["network_fee=none"], table.loc["network_fee=distance"]
    assert dist["mean_trade_distance_km"] <= none["mean_trade_distance_km"]
    assert dist["network_fee_revenue"] > 0
    html = (tmp_path / "compare.html").read_text()
    assert "data:image/png;base64" in html


def test_parse_vary_errors() -> None:
    assert parse_vary("a.b=1,2") == ("a.b", ["1", "2"])
    with pytest.raises(ScenarioError, match=r"KEY\.PATH"):
        parse_vary("nothing")
    with pytest.raises(ScenarioError, match="no values"):
        parse_vary("a=")


@pytest.mark.slow
def test_attitude_experiment(tmp_path: Path) -> None:
    assert main(["experiment", "attitudes", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "attitudes.csv").set_index("attitude")
    assert (table.loc[["averse", "neutral", "seeking"], "seeds"] == 50).all()
    assert table.loc["averse", "trade_rate"] > table.loc["seeking", "trade_rate"]
    assert table.loc["seeking", "margin_per_kwh"] > table.loc["averse", "margin_per_kwh"]
    for pair in ("averse - neutral", "neutral - seeking"):
        assert table.loc[pair, "trade_rate_ci_low"] > 0 and table.loc[pair, "margin_ci_high"] < 0
    assert "margin_ci_low" in (tmp_path / "attitudes.html").read_text()


@pytest.mark.slow
def test_aa_equilibrium_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiments, "EQUILIBRIUM_SEEDS", 2)  # the real run uses 30
    assert main(["experiment", "aa-equilibrium", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "aa_equilibrium.csv")
    assert list(table.columns) == [
        "market",
        "p0_position",
        "strategy",
        "attitude",
        "interval",
        "efficiency",
        "price_error_pct",
        "alpha",
    ]
    assert sorted(set(table["strategy"])) == ["aa", "zi", "zip"]
    assert sorted(set(table["market"])) == ["flat-supply", "steep-supply", "sym"]
    assert table["interval"].max() == 30
    page = (tmp_path / "aa_equilibrium.html").read_text()
    assert "efficiency_interval_1" in page and "data:image/png;base64" in page


def test_experiment_needing_a_scenario_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "best-response"]) == 2
    assert "needs a scenario file" in capsys.readouterr().err


def test_aa_convergence_experiment_writes_table_and_figure(tmp_path: Path) -> None:
    assert main(["experiment", "aa-convergence", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "aa-convergence.csv")
    assert sorted(set(table["attitude"])) == ["averse", "neutral", "seeking"]
    assert len(table) == 30
    page = (tmp_path / "aa-convergence.html").read_text()
    assert "<h1>Experiment: aa-convergence</h1>" in page
    assert "data:image/png;base64" in page


def test_pages_escape_text_and_cells() -> None:
    frame = pd.DataFrame({"<col>": ["<script>x</script>"], "value": [0.123456]})
    page = Page(
        "a <title>",
        "R&D",
        [Paragraph(("1 < 2 ", Strong("<b>"), Code("a & b")))],
        [Section("<h2>", [Table(frame, index=False)])],
    )
    text = render_page(page)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<title>a &lt;title&gt;</title>" in text and "<h1>R&amp;D</h1>" in text
    assert "<p>1 &lt; 2 <b>&lt;b&gt;</b><code>a &amp; b</code></p>" in text
    assert "<h2>&lt;h2&gt;</h2>" in text and "&lt;col&gt;" in text and "0.1235" in text
