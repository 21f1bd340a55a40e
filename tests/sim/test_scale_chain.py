"""Hundreds of members on the embedded chain (issue 14): 10 households behind every load
bus of ieee33 (322 members) for two noon intervals, then ``gridledger audit``.

At this size the setup is paged (128 members per registration or deposit transaction)
and each interval's steps fill several blocks, each transaction with its estimated gas.
The chain must agree with the reference, stay solvent and audit clean. A market too
large for the chain is refused by name before anything is deployed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gridledger.cli import main

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
HORIZON = ["--set", "horizon.first_interval=48", "--set", "horizon.intervals=2"]


@pytest.mark.slow
def test_three_hundred_members_audit_clean(tmp_path: Path) -> None:
    out = tmp_path / "run"
    extra = ["--set", "members.per_load_bus=10"]
    assert main(["run", str(IEEE33), "--out", str(out), "-q", *HORIZON, *extra]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["members"] >= 300
    assert summary["onchain_matches_reference"] is True
    assert summary["solvent"] is True and summary["audit_findings"] == 0
    records = [json.loads(line) for line in (out / "chain" / "txlog.jsonl").open()]
    assert len(records[0]["blocks"]) >= 2  # the setup spans blocks
    assert main(["audit", str(out)]) == 0


def test_too_many_members_refused_before_deploying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    extra = ["--set", "members.per_load_bus=110", "--set", "horizon.intervals=1"]
    assert main(["run", str(IEEE33), "--out", str(out), "-q", *extra]) == 2
    error = capsys.readouterr().err
    # rounds, the greedy clearing, readings and settlement are paged; the greedy clearing's
    # last page of one entry replays every trade before it and is then the largest step
    step = "verify a page of one entry of the greedy clearing"
    assert re.search(rf"3,5\d\d members: one transaction to {step}", error)
    assert re.search(r"at most 3,3\d\d members fit", error)
    assert "more than one transaction may carry (16,777,216, chain.tx_gas_cap)" in error
    assert "Traceback" not in error
    assert not (out / "chain" / "txlog.jsonl").exists()
    assert not (out / "chain" / "ledger.json").exists()
