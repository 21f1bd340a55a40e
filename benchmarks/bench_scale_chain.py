"""A 1,000-member day on a real node (issue 14): ieee33 with 32 households behind every
load bus (1,026 members, 96 intervals, 5 rounds), recorded on anvil.

    python benchmarks/run.py --only scale_chain
    python benchmarks/bench_scale_chain.py        # the same rows, printed
    python benchmarks/bench_scale_chain.py --per-load-bus 100 --intervals 1   # 3,202 members
    python benchmarks/bench_scale_chain.py --per-load-bus 100 --intervals 1 --clearing optimal

The run is ``gridledger run`` in a child process (its keystores made with the fastest
scrypt setting: a benchmark, not custody); time is the child's wall clock, memory its
peak resident set (``ru_maxrss`` of the children). The same day off chain is the
``members_1000_day_offchain`` row of ``--only scale``.
"""

from __future__ import annotations

import argparse
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


def run(
    per_load_bus: int = PER_LOAD_BUS, intervals: int | None = None, clearing: str | None = None
) -> list[Row]:
    """The day on anvil (``intervals`` from noon instead, when given; ``clearing``: another
    rule than the scenario's): wall time and peak memory of the run."""
    scenario_path = ROOT / "scenarios" / "ieee33.toml"
    sets = [f"members.per_load_bus={per_load_bus}", *SETS[1:]]
    if intervals is not None:
        sets += ["horizon.first_interval=48", f"horizon.intervals={intervals}"]
    if clearing is not None:
        sets.append(f"market.clearing={clearing}")
    name = "members_1000_day_anvil" if intervals is None else f"members_{per_load_bus}x_anvil"
    name += "" if clearing is None else f"_{clearing}"
    target = 300.0 if intervals is None else None  # the goal is for the day
    scenario = load_scenario(scenario_path, sets)
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
                *(arg for s in sets for arg in ("--set", s)),
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
                    "name": name,
                    "value": None,
                    "unit": "s",
                    "target": target,
                    "note": f"failed: {done.stderr.strip().splitlines()[-1:]}",
                }
            ]
        summary = json.loads((out / "summary.json").read_text())
    return [
        {
            "name": name,
            "value": round(elapsed, 1),
            "unit": "s",
            "target": target,
            "note": f"{summary['members']} members, {summary['intervals']} intervals, "
            f"{summary['tx_count']} transactions, gas {summary['gas_total']:,}; "
            f"matches reference {summary['onchain_matches_reference']}, "
            f"audit findings {summary['audit_findings']}",
        },
        {
            "name": f"{name}_peak_memory",
            "value": round(peak_mb, 0),
            "unit": "MB",
            "target": 4096.0,
            "note": "peak resident set size of the run's process (ru_maxrss of the children)",
        },
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-load-bus", type=int, default=PER_LOAD_BUS)
    parser.add_argument("--intervals", type=int, default=None, help="from noon (default: a day)")
    parser.add_argument("--clearing", choices=("greedy", "optimal", "uniform"), default=None)
    args = parser.parse_args()
    for row in run(args.per_load_bus, args.intervals, args.clearing):
        print(f"{row['name']:36s} {row['value']!s:>10} {row['unit']:4s}  {row.get('note', '')}")
