"""gridledger benchmark harness: prints a table and writes JSON.

    python benchmarks/run.py                 # all rows
    python benchmarks/run.py --only day      # rows whose group name contains "day"
    python benchmarks/run.py --skip-chain    # skip the on-chain full-day rows (slow)
    python benchmarks/run.py --skip best_response   # skip a group (best response: about 90 s)
    python benchmarks/run.py --only scale    # issue 14: 1,000-bus power flow, 1,000-member day,
                                             # greedy clearing of 10,000 bids on 1,000 buses

Each row: name, value, unit, target (None when the issue sets none), ok, note.
Ratios are computed against baselines measured in the same run (machines are noisy).
Results go to benchmarks/results/<UTC timestamp>.json and benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

Row = dict[str, Any]


def _day(chain: str) -> list[Row]:
    from gridledger.scenario import load_scenario
    from gridledger.sim.loop import run
    from gridledger.world import build_world

    scenario = load_scenario(ROOT / "scenarios" / "ieee33.toml", [f'chain.backend="{chain}"'])
    build_world(scenario)  # warm caches (numba compile of the first power flow, profiles)
    started = time.perf_counter()
    world = build_world(scenario)
    result = run(scenario, world=world)
    elapsed = time.perf_counter() - started
    return [
        {
            "name": "ieee33_full_day_offchain",
            "value": round(elapsed, 3),
            "unit": "s",
            "target": 10.0,
            "note": f"{len(result.outcomes)} intervals, {len(world.members.members)} members, "
            f"{scenario.market.rounds} rounds, incl. building the world",
        }
    ]


def _day_offchain() -> list[Row]:
    return _day("none")


def _keystores(folder: Path) -> list[str]:
    """Keystores of the ieee33 members in ``folder`` (fast scrypt: a benchmark, not custody);
    the scenario settings that use them."""
    import os

    from gridledger.ledger.keystore import MIN_SCRYPT_N, write_keystores
    from gridledger.scenario import load_scenario
    from gridledger.sim.runner import scenario_member_ids

    scenario = load_scenario(ROOT / "scenarios" / "ieee33.toml", [])
    keys = folder / "keys"
    write_keystores(keys, "benchmark", scenario_member_ids(scenario), scrypt_n=MIN_SCRYPT_N)
    (folder / "password").write_text("benchmark\n")
    os.chmod(folder / "password", 0o600)
    return [f'chain.keys="{keys}"', f'chain.key_password_file="{folder / "password"}"']


def _day_onchain() -> list[Row]:
    import tempfile

    from gridledger.scenario import load_scenario
    from gridledger.sim.runner import run_with_chain

    rows: list[Row] = []
    baseline: float | None = None
    backends = ["embedded"]
    try:
        from gridledger.ledger.anvil import start_anvil

        anvil = start_anvil()
    except Exception as error:
        anvil = None
        rows.append(
            {
                "name": "ieee33_full_day_anvil",
                "value": None,
                "unit": "s",
                "target": None,
                "note": f"skipped: {error}",
            }
        )
    if anvil is not None:
        backends.append(anvil.url)
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            sets = [f'chain.backend="{backend}"']
            if backend != "embedded":  # a JSON-RPC node refuses the public seed's keys
                sets += _keystores(Path(tmp))
            scenario = load_scenario(ROOT / "scenarios" / "ieee33.toml", sets)
            started = time.perf_counter()
            result = run_with_chain(scenario, Path(tmp) / "run")
            elapsed = time.perf_counter() - started
        name = "embedded" if backend == "embedded" else "anvil"
        stats = result.chain_stats
        row: Row = {
            "name": f"ieee33_full_day_{name}",
            "value": round(elapsed, 3),
            "unit": "s",
            "target": 40.0 if name == "embedded" else None,
            "note": f"tx={stats.get('tx_count')} gas={stats.get('gas_total')} "
            f"matches_reference={result.onchain_matches_reference}",
        }
        if name == "embedded":
            baseline = elapsed
            rows.append(
                {
                    "name": "gas_per_recorded_bid",
                    "value": stats.get("gas_per_bid"),
                    "unit": "gas",
                    "target": 12_000,
                    "note": "full day, embedded (round transactions incl. locks / bids)",
                }
            )
            rows.append(
                {
                    "name": "gas_biggest_interval",
                    "value": stats.get("gas_per_interval_max"),
                    "unit": "gas",
                    "target": 30_000_000,
                    "note": "must fit a 30M block",
                }
            )
        elif baseline is not None:
            row["note"] += f"; speed-up vs embedded {baseline / elapsed:.1f}x (target >= 5x)"
        rows.append(row)
    if anvil is not None:
        anvil.stop()
    return rows


def _module_rows(module: str) -> Callable[[], list[Row]]:
    def rows() -> list[Row]:
        return list(importlib.import_module(module).run())

    return rows


GROUPS: dict[str, Callable[[], list[Row]]] = {
    "day_offchain": _day_offchain,
    "aa": _module_rows("bench_aa"),
    "clearing": _module_rows("bench_clearing"),
    "fee_clearing": _module_rows("bench_fee_clearing"),
    "security": _module_rows("bench_security"),
    "best_response": _module_rows("bench_best_response"),
    "settlement": _module_rows("bench_settlement"),
    "ledger": _module_rows("bench_ledger"),
    "day_onchain": _day_onchain,
    "scale": _module_rows("bench_scale"),
    "scale_chain": _module_rows("bench_scale_chain"),
    "gas_scale": _module_rows("bench_gas_scale"),
    "network_tree": _module_rows("bench_network_tree"),
    "data_shards": _module_rows("bench_data_shards"),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", action="append", help="run groups whose name contains this")
    parser.add_argument("--skip-chain", action="store_true", help="skip the on-chain full-day rows")
    parser.add_argument("--skip", action="append", default=[], help="skip groups containing this")
    args = parser.parse_args()
    rows: list[Row] = []
    for group, fn in GROUPS.items():
        if args.only and not any(o in group for o in args.only):
            continue
        if args.skip_chain and group == "day_onchain":
            continue
        if any(skip in group for skip in args.skip):
            continue
        try:
            got = fn()
        except ModuleNotFoundError as error:
            got = [
                {
                    "name": group,
                    "value": None,
                    "unit": "",
                    "target": None,
                    "note": f"not available: {error}",
                }
            ]
        for row in got:
            row.setdefault("group", group)
            row.setdefault("name", group)
            for key in ("value", "unit", "target"):
                row.setdefault(key, None if key != "unit" else "")
            target, value = row.get("target"), row.get("value")
            row["ok"] = None if target is None or value is None else bool(value <= target)
        rows.extend(got)
    width = max(len(r["name"]) for r in rows) if rows else 10
    print(f"{'benchmark':<{width}}  {'value':>12}  {'unit':<5}  {'target':>10}  ok    note")
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:,.3f}".rstrip("0").rstrip(".")
        target = "-" if r["target"] is None else f"{r['target']:,}"
        ok = {None: "-", True: "yes", False: "NO"}[r["ok"]]
        print(
            f"{r['name']:<{width}}  {value:>12}  {r['unit']:<5}  {target:>10}  {ok:<4}  {r.get('note', '')}"
        )
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "timestamp": stamp,
        "rows": rows,
    }
    for name in (f"{stamp}.json", "latest.json"):
        (results / name).write_text(json.dumps(payload, indent=2))
    print(f"\nwritten: {results / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
