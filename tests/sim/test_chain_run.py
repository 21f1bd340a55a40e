"""The main job on the embedded chain, end to end: ``gridledger run`` then ``gridledger audit``.

A short horizon of real intervals (12:00-12:45 of the shipped ieee33 day, when PV
sellers trade) runs through the CLI on the scenario's own chain backend (embedded).
The chain must agree with the reference interval by interval, hold its money, and
re-derive to the reference in an audit of the saved folder; and recording on the
chain must not change a single result of the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gridledger.cli import main

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
INTERVALS = 3
HORIZON = ["--set", "horizon.first_interval=48", "--set", f"horizon.intervals={INTERVALS}"]
CHAIN_KEYS = {
    "chain",
    "tx_count",
    "gas_total",
    "gas_per_bid",
    "gas_per_interval_max",
    "onchain_matches_reference",
    "solvent",
    "audit_findings",
}
WALL_CLOCK_KEYS = {"runtime_s"}


def _run(out: Path, *extra: str) -> dict[str, Any]:
    assert main(["run", str(IEEE33), "--out", str(out), "-q", *HORIZON, *extra]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


@pytest.mark.slow  # fast lane budget: a run on the embedded chain (about 7 s)
def test_main_job_on_the_embedded_chain_audits_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "chain"
    summary = _run(out)  # chain.backend = "embedded" is the scenario's own
    assert summary["chain"] == "embedded"
    assert summary["intervals"] == INTERVALS
    assert summary["traded_kwh"] > 0
    assert summary["onchain_matches_reference"] is True
    assert summary["conservation_ok"] is True
    assert summary["solvent"] is True
    assert summary["audit_findings"] == 0
    # every interval records its rounds, then clear, security, readings and settle
    assert summary["tx_count"] >= INTERVALS * (summary["rounds"] + 4)
    assert summary["gas_total"] > 0 and summary["gas_per_bid"] > 0
    assert (out / "chain" / "ledger.json").is_file()
    records = [
        json.loads(line) for line in (out / "chain" / "txlog.jsonl").read_text().splitlines()
    ]
    assert [r["label"] for r in records] == ["setup"] + ["interval"] * INTERVALS
    assert [r["interval"] for r in records[1:]] == list(range(INTERVALS))

    capsys.readouterr()
    assert main(["audit", str(out)]) == 0
    report = capsys.readouterr().out
    assert "audit: OK" in report
    facts = dict(line.strip().split(": ", 1) for line in report.splitlines() if ": " in line)
    assert facts["intervals_settled"] == str(INTERVALS)
    assert facts["conserved"] == "True"

    # the chain records the run; it does not change it
    off = tmp_path / "off"
    off_summary = _run(off, "--chain", "none")
    csvs = sorted(p.name for p in out.glob("*.csv"))
    assert {"trades.csv", "rounds.csv", "settlement.csv", "intervals.csv"} <= set(csvs)
    for name in csvs:
        assert (out / name).read_bytes() == (off / name).read_bytes(), name
    skip = CHAIN_KEYS | WALL_CLOCK_KEYS
    assert {k: v for k, v in summary.items() if k not in skip} == {
        k: v for k, v in off_summary.items() if k not in skip
    }
