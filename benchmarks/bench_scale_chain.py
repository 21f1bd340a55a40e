"""A 1,000-member day on a real node (issue 14): ieee33 with 32 households behind every
load bus (1,026 members, 96 intervals, 5 rounds), recorded on anvil.

    python benchmarks/run.py --only scale_chain
    python benchmarks/bench_scale_chain.py        # the same rows, printed

The run is ``gridledger run`` in a child process (its keystores made with the fastest
scrypt setting: a benchmark, not custody); time is the child's wall clock, memory its
peak resident set (``ru_maxrss`` of the children). The same day off chain is the
``members_1000_day_offchain`` row of ``--only scale``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gridledger.ledger.anvil import start_anvil
from gridledger.ledger.keystore import MIN_SCRYPT_N, write_keystores
from gridledger.scenario import load_scenario
from gridledger.sim.runner import scenario_member_ids

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
PER_LOAD_BUS = 32
SETS = (f"members.per_load_bus={PER_LOAD_BUS}", "members.pv_share=0.2")
Row = dict[str, Any]


def run() -> list[Row]:
    """The day on anvil: wall time and peak memory of the run."""
    scenario_path = ROOT / "scenarios" / "ieee33.toml"
    scenario = load_scenario(scenario_path, list(SETS))
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys"
        write_keystores(keys, "benchmark", scenario_member_ids(scenario), scrypt_n=MIN_SCRYPT_N)
        password = Path(tmp) / "password"
        password.write_text("benchmark\n")
        os.chmod(password, 0o600)
        out = Path(tmp) / "run"
        with start_anvil(tx_gas_limit=True) as node:
            command = [
                sys.executable,
                "-m",
                "gridledger.cli",
                "run",
                str(scenario_path),
                *(arg for s in SETS for arg in ("--set", s)),
                "--chain",
                node.url,
                "--keys",
                str(keys),
                "--key-password-file",
                str(password),
                "--out",
                str(out),
                "-q",
            ]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        if done.returncode != 0:
            return [
                {
                    "name": "members_1000_day_anvil",
                    "value": None,
                    "unit": "s",
                    "target": 300.0,
                    "note": f"failed: {done.stderr.strip().splitlines()[-1:]}",
                }
            ]
        summary = json.loads((out / "summary.json").read_text())
    return [
        {
            "name": "members_1000_day_anvil",
            "value": round(elapsed, 1),
            "unit": "s",
            "target": 300.0,
            "note": f"{summary['members']} members, {summary['intervals']} intervals, "
            f"{summary['tx_count']} transactions, gas {summary['gas_total']:,}; "
            f"matches reference {summary['onchain_matches_reference']}, "
            f"audit findings {summary['audit_findings']}",
        },
        {
            "name": "members_1000_day_anvil_peak_memory",
            "value": round(peak_mb, 0),
            "unit": "MB",
            "target": 4096.0,
            "note": "peak resident set size of the run's process (ru_maxrss of the children)",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:36s} {row['value']!s:>10} {row['unit']:4s}  {row.get('note', '')}")
