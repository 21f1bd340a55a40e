"""Scale rows (issue 14): AC power flow on a ~1,000-bus feeder, a 1,000-member day off
chain, greedy clearing of 10,000 bids on 1,000 buses.

    python benchmarks/run.py --only scale
    python benchmarks/bench_scale.py            # the same rows, printed

The ~1,000-bus feeder is synthetic: 30 copies of the ieee33 feeder (its impedances and
conductors) fed from one substation bus, 961 buses, radial; ``ieee33`` itself is the
baseline of the same run. With the simbench extra installed, a combined MV/LV SimBench
grid is timed as well.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp

from gridledger.grid import Feeder, load_feeder, prepare_feeder, run_ac

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

Row = dict[str, Any]

COPIES = 30


def ieee33_copies(copies: int = COPIES) -> Feeder:
    """``copies`` ieee33 feeders hanging off one substation bus (32 x copies + 1 buses)."""
    one = load_feeder("ieee33").net
    net = pp.create_empty_network(sn_mva=float(one.sn_mva))
    slack = pp.create_bus(net, vn_kv=12.66, name="substation")
    pp.create_ext_grid(net, slack, vm_pu=float(one.ext_grid.vm_pu.iloc[0]))
    base_p = {int(b): 0.0 for b in one.bus.index}
    base_q = dict(base_p)
    case = load_feeder("ieee33")
    for m, b in enumerate(case.bus_ids):
        base_p[b] = float(case.base_load_p_kw[m]) / 1000.0
        base_q[b] = float(case.base_load_q_kvar[m]) / 1000.0
    for c in range(copies):
        ids = {int(one.ext_grid.bus.iloc[0]): slack}
        for b in one.bus.index:
            if int(b) in ids:
                continue
            ids[int(b)] = pp.create_bus(net, vn_kv=12.66, name=f"c{c}b{b}")
            if base_p[int(b)] > 0:
                pp.create_load(net, ids[int(b)], p_mw=base_p[int(b)], q_mvar=base_q[int(b)])
        for idx in one.line.index:
            row = one.line.loc[idx]
            pp.create_line_from_parameters(
                net,
                ids[int(row.from_bus)],
                ids[int(row.to_bus)],
                length_km=float(row.length_km),
                r_ohm_per_km=float(row.r_ohm_per_km),
                x_ohm_per_km=float(row.x_ohm_per_km),
                c_nf_per_km=0.0,
                max_i_ka=float(row.max_i_ka),
            )
    return prepare_feeder(net, f"ieee33x{copies}", notes=f"{copies} ieee33 copies")


def _pf_ms(feeder: Feeder, calls: int = 60, seed: int = 0) -> tuple[float, float]:
    """Median and p95 of ``run_ac`` in ms over random loads (0.2 .. 1.2 x base), warm."""
    rng = np.random.default_rng(seed)
    base_p, base_q = feeder.base_load_p_kw, feeder.base_load_q_kvar
    for _ in range(3):
        run_ac(feeder, -base_p, -base_q)
    times = []
    for _ in range(calls):
        f = rng.uniform(0.2, 1.2, size=feeder.n_buses)
        started = time.perf_counter()
        run_ac(feeder, -base_p * f, -base_q * f)
        times.append(1000.0 * (time.perf_counter() - started))
    return float(np.median(times)), float(np.percentile(times, 95))


def power_flow_rows() -> list[Row]:
    base = load_feeder("ieee33")
    big = ieee33_copies()
    base_med, _ = _pf_ms(base)
    med, p95 = _pf_ms(big)
    rows: list[Row] = [
        {
            "name": "ac_power_flow_1000_bus",
            "value": round(med, 2),
            "unit": "ms",
            "target": 30.0,
            "note": f"pandapower Newton-Raphson, recycled; {big.n_buses} buses "
            f"({COPIES} ieee33 copies); p95 {p95:.1f} ms; "
            f"{med / base_med:.1f}x ieee33's {base_med:.1f} ms in this run",
        }
    ]
    try:
        import simbench  # noqa: F401  # lazy: optional extra
    except ImportError:
        return rows
    code = "1-MVLV-semiurb-3.202-0-sw"
    sb = load_feeder(code)
    med, p95 = _pf_ms(sb)
    rows.append(
        {
            "name": "ac_power_flow_simbench_mvlv",
            "value": round(med, 2),
            "unit": "ms",
            "target": None,
            "note": f"{code}: {sb.n_buses} buses, meshed={sb.meshed}; p95 {p95:.1f} ms",
        }
    )
    return rows


def day_rows(per_load_bus: int = 32) -> list[Row]:
    from gridledger.scenario import load_scenario
    from gridledger.sim.loop import run
    from gridledger.world import build_world

    sets = ['chain.backend="none"', f"members.per_load_bus={per_load_bus}"]
    scenario = load_scenario(ROOT / "scenarios" / "ieee33.toml", [*sets, "members.pv_share=0.2"])
    base = load_scenario(ROOT / "scenarios" / "ieee33.toml", [sets[0]])
    build_world(base)  # warm caches (numba, profiles)
    started = time.perf_counter()
    run(base, world=build_world(base))
    base_s = time.perf_counter() - started
    started = time.perf_counter()
    world = build_world(scenario)
    built_s = time.perf_counter() - started
    result = run(scenario, world=world)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    n = len(world.members.members)
    return [
        {
            "name": "members_1000_day_offchain",
            "value": round(elapsed, 2),
            "unit": "s",
            "target": 60.0,
            "note": f"ieee33, per_load_bus={per_load_bus}: {n} members, "
            f"{len(result.outcomes)} intervals, {scenario.market.rounds} rounds; world "
            f"{built_s:.1f} s; {elapsed / base_s:.1f}x the 34-member day ({base_s:.1f} s) "
            "of the same run",
        },
        {
            "name": "members_1000_day_peak_memory",
            "value": round(peak_mb, 0),
            "unit": "MB",
            "target": None,
            "note": "peak resident set size of the benchmark process (ru_maxrss)",
        },
    ]


def clearing_rows(n_bids: int = 10_000, n_buses: int = 1_000, repeats: int = 7) -> list[Row]:
    """Greedy clearing of ``n_bids`` on ``n_buses`` buses; merit order of the same run as the
    baseline, and greedy on 33 buses (the clearing group's market) for the bus-count effect."""
    from bench_clearing import _median_ms
    from markets import large_market

    from gridledger.market.greedy import clear_greedy
    from gridledger.market.merit_order import clear_merit_order

    bids, fees = large_market(0, n_bids, n_buses)
    started = time.perf_counter()
    clear_greedy(bids, fees)
    first_ms = 1000.0 * (time.perf_counter() - started)
    # seconds per call (the B x B rescan per trade): one timed call is enough
    greedy_ms = _median_ms(lambda: clear_greedy(bids, fees), repeats if first_ms < 1000 else 1)
    merit_ms = _median_ms(lambda: clear_merit_order(bids, fees), repeats)
    bids33, fees33 = large_market(0, n_bids, 33)
    greedy33_ms = _median_ms(lambda: clear_greedy(bids33, fees33), repeats)
    return [
        {
            "name": f"greedy_clearing_{n_bids}_bids_{n_buses}_buses",
            "value": round(greedy_ms, 1),
            "unit": "ms",
            "target": 100.0,
            "note": f"{greedy_ms / merit_ms:.1f}x merit order ({merit_ms:.1f} ms) and "
            f"{greedy_ms / greedy33_ms:.1f}x greedy on 33 buses ({greedy33_ms:.1f} ms), "
            f"same run; median of {repeats if first_ms < 1000 else 1}",
        }
    ]


BIG_FEEDER = "1-MVLV-rural-all-0-sw"
BIG_SETS = (
    f'network.feeder="{BIG_FEEDER}"',
    "members.household_pv_kwp=[3.0, 10.0]",  # LV households (the scenario's are MV plants)
    "members.dg_kwp=100.0",
    "members.load_scaling=1.0",
    "horizon.intervals=2",
    "horizon.first_interval=48",
)


def big_feeder_rows() -> list[Row]:
    """The whole rural SimBench MV/LV grid (5,477 buses, one member per load element) off
    chain, two noon intervals, as a user runs it: ``gridledger run simbench_mv --chain none``
    in its own process (wall time and that process's peak memory). Needs the simbench extra."""
    import subprocess
    import tempfile

    try:
        import simbench  # noqa: F401  # lazy: optional extra
    except ImportError:
        return []
    with tempfile.TemporaryDirectory() as out:
        cli = "import sys; from gridledger.cli import main; sys.exit(main(sys.argv[1:]))"
        args = [sys.executable, "-c", cli, "run", "simbench_mv", "--chain", "none"]
        args += ["--out", out, "-q"]
        for item in BIG_SETS:
            args += ["--set", item]
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        summary = json.loads((Path(out) / "summary.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    note = (
        f"{BIG_FEEDER}: {summary['members']} members, {summary['intervals']} noon intervals "
        f"({summary['runtime_s']:.0f} s of it the market loop; the rest loads the grid, its "
        "5,477 x 5,477 distances and impedances, and writes the report)"
    )
    return [
        {
            "name": "simbench_5477_buses_offchain",
            "value": round(elapsed, 1),
            "unit": "s",
            "target": None,
            "note": note,
        },
        {
            "name": "simbench_5477_buses_peak_memory",
            "value": round(peak_mb, 0),
            "unit": "MB",
            "target": None,
            "note": "peak resident set size of the run's process",
        },
    ]


def run() -> list[Row]:
    return [*power_flow_rows(), *day_rows(), *clearing_rows(), *big_feeder_rows()]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:32s} {row['value']:>10} {row['unit']:4s}  {row.get('note', '')}")
