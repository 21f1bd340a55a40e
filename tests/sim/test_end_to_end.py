"""End-to-end runs over a short horizon, off chain, through the CLI and the library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridledger.cli import main
from gridledger.scenario import load_scenario
from gridledger.sim.loop import run

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
NOON = ["horizon.intervals=8", "horizon.first_interval=44", "chain.backend=none"]

REQUIRED_KPIS = {
    "intervals",
    "members",
    "traded_kwh",
    "p2p_share",
    "social_welfare",
    "mean_trade_distance_km",
    "grid_import_kwh",
    "grid_export_kwh",
    "v_min_pu",
    "v_max_pu",
    "max_line_loading_pct",
    "runtime_s",
}


def test_cli_run_writes_folder_and_report_rebuilds(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "run",
            str(IEEE33),
            "--out",
            str(out),
            "-q",
            "--chain",
            "none",
            "--set",
            "horizon.intervals=6",
            "--set",
            "horizon.start=2026-06-21",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= REQUIRED_KPIS
    assert summary["intervals"] == 6
    assert summary["members"] >= 32
    for name in ("trades.csv", "intervals.csv", "rounds.csv", "settlement.csv", "report.html"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "Plotly.newPlot(" in html and "<img" not in html  # interactive charts, no picture
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file()
    assert json.loads((out / "summary.json").read_text()) == summary


def test_bad_override_exits_with_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(IEEE33), "--set", "market.rounds=zero", "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "market.rounds" in err and "'zero'" in err


def test_midday_run_trades_and_conserves_money() -> None:
    scenario = load_scenario(IEEE33, NOON)
    result = run(scenario)  # 11:00 to 13:00: PV sellers exist
    assert len(result.outcomes) == 8
    assert sum(o.cleared.traded_wh for o in result.outcomes) > 0
    for outcome in result.outcomes:
        assert outcome.settlement.conserved()
        for line in outcome.settlement.members.values():
            assert line.actual_net_wh == outcome.readings_wh[line.member]


def test_run_is_deterministic() -> None:
    scenario = load_scenario(IEEE33, ["horizon.intervals=3", "chain.backend=none"])
    a, b = run(scenario), run(scenario)
    assert [o.cleared for o in a.outcomes] == [o.cleared for o in b.outcomes]
    assert [o.settlement.deltas() for o in a.outcomes] == [
        o.settlement.deltas() for o in b.outcomes
    ]
