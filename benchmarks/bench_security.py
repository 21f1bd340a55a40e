"""Security-check benchmark: AC check, linear screening and congestion management.

``run()`` returns rows ``{"name", "value", "unit", "target", "note"}`` (target: a
number the value must not exceed, or None). Times are medians over repeats on a
warm feeder (first power flow compiles numba). Figures:

- ieee33: AC power flow check of one interval (target <= 30 ms), linear screening
  (``grid.screen``, target <= 2 ms), building the linearised limits, the full
  security stage on the stressed noon interval (greedy and LP, AC re-runs included);
- the curtailment rules alone and the LP-vs-greedy lost-surplus gap on seeded
  random stressed intervals;
- the stressed day (scenarios/ieee33_stressed.toml): violations without and with
  management, curtailed energy, lost surplus;
- a SimBench LV feeder when the optional ``simbench`` package is importable.

``python benchmarks/bench_security.py`` prints them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gridledger.grid import Feeder, load_feeder, run_ac, screen, sensitivities
from gridledger.scenario import load_scenario
from gridledger.security import CheckOnlySecurity
from gridledger.security.congestion import CongestionSecurity, SecurityLimits, linear_limits
from gridledger.security.curtailment import LinearLimits, curtail_greedy, curtail_lp
from gridledger.sim.loop import make_mechanism, run_interval
from gridledger.world import build_world

Row = dict[str, Any]
ROOT = Path(__file__).resolve().parents[1]
STRESSED = ROOT / "scenarios" / "ieee33_stressed.toml"
NOON = 54
SIMBENCH_CODE = "1-LV-rural1--0-sw"


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def _feeder_rows(feeder: Feeder, p_bus: np.ndarray, label: str) -> list[Row]:
    sens = sensitivities(feeder)
    ac_ms = _median_ms(lambda: run_ac(feeder, p_bus), 50)
    screen_ms = _median_ms(lambda: screen(feeder, sens, p_bus), 200)
    result = run_ac(feeder, p_bus)
    limits = SecurityLimits(feeder.v_min_pu, feeder.v_max_pu, 100.0)
    sellers = np.flatnonzero(p_bus > 0)
    lin_ms = _median_ms(
        lambda: linear_limits(feeder, sens, result, p_bus, limits, sellers, 0.25), 200
    )
    note = f"{feeder.n_buses} buses, {feeder.n_lines} lines, {feeder.n_trafos} trafos"
    return [
        {"name": f"{label}_ac_check", "value": round(ac_ms, 2), "unit": "ms", "target": 30.0,
         "note": note + "; pandapower NR, recycled model"},
        {"name": f"{label}_linear_screening", "value": round(screen_ms, 3), "unit": "ms",
         "target": 2.0, "note": "grid.screen: LinDistFlow voltages + PTDF loadings"},
        {"name": f"{label}_linear_limits", "value": round(lin_ms, 3), "unit": "ms",
         "target": 2.0, "note": f"all limit rows x {len(sellers)} seller columns"},
    ]  # fmt: skip


def _rule_rows() -> list[Row]:
    rng = np.random.default_rng(11)
    instances = []
    for _ in range(300):
        n, m = 30, 70
        relief = rng.uniform(0, 1e-4, (m, n)) * (rng.random((m, n)) < 0.6)
        margin = rng.uniform(-2.0, 3.0, m)
        kinds = ("bus",) * m
        instances.append(
            (LinearLimits(kinds, np.arange(m), margin, relief),
             rng.integers(1_000, 80_000, n), rng.integers(10_000, 300_000, n))
        )  # fmt: skip
    greedy_s = lp_s = 0.0
    gaps = []
    for limits, energy, surplus in instances:
        t0 = time.perf_counter()
        g = curtail_greedy(limits, energy, surplus)
        t1 = time.perf_counter()
        lp = curtail_lp(limits, energy, surplus)
        t2 = time.perf_counter()
        greedy_s += t1 - t0
        lp_s += t2 - t1
        if not g.unresolved and not lp.unresolved and lp.lost_surplus_micro > 0:
            gaps.append(g.lost_surplus_micro / lp.lost_surplus_micro - 1.0)
    k = len(instances)
    return [
        {"name": "curtail_greedy", "value": round(1000 * greedy_s / k, 3), "unit": "ms",
         "target": None, "note": "30 trades x 70 rows, mean of 300 seeded instances"},
        {"name": "curtail_lp", "value": round(1000 * lp_s / k, 3), "unit": "ms",
         "target": None, "note": "HiGHS, same instances"},
        {"name": "greedy_extra_lost_surplus_vs_lp", "value": round(100 * float(np.mean(gaps)), 2),
         "unit": "%", "target": None,
         "note": f"mean over {len(gaps)} instances both resolve; max "
         f"{100 * max(gaps):.1f} %"},
    ]  # fmt: skip


def _physical_gap_rows(feeder: Feeder) -> list[Row]:
    """Greedy vs LP on random stressed ieee33 intervals, AC-verified.

    Each: 2-5 random sellers with 0.3-1.2 MW export each at random buses, light
    load elsewhere, 1-4 trades per seller with random surplus; both rules run the
    full security stage (AC re-runs) and are compared on lost surplus.
    """
    rng = np.random.default_rng(5)
    base = -0.5 * np.asarray(feeder.base_load_p_kw, dtype=float)
    gaps, secured, tried = [], 0, 0
    from gridledger.market.orders import Trade

    while tried < 60:
        p_bus = base.copy()
        seller_buses = rng.choice(np.arange(6, feeder.n_buses), rng.integers(2, 6), replace=False)
        p_bus[seller_buses] += rng.uniform(300.0, 1200.0, len(seller_buses))
        result = run_ac(feeder, p_bus)
        if result.v_pu.max() <= 1.05 and result.line_loading_pct.max() <= 100:
            continue
        tried += 1
        trades = []
        for b in seller_buses:
            export_wh = int(p_bus[b] * 250)
            parts = rng.dirichlet(np.ones(rng.integers(1, 5)))
            for share in parts:
                trades.append(Trade(0, int(b), int(export_wh * share), 150_000, 150_000, 1, int(b)))
        surplus = rng.integers(20_000, 250_000, len(trades))
        outcome = {}
        for rule in ("greedy", "lp"):
            sec = CongestionSecurity(rule)
            lost, after = _check_members_free(sec, feeder, p_bus, tuple(trades), surplus)
            outcome[rule] = (lost, after)
        if outcome["greedy"][1] == 0 and outcome["lp"][1] == 0:
            secured += 1
            if outcome["lp"][0] > 0:
                gaps.append(outcome["greedy"][0] / outcome["lp"][0] - 1.0)
    return [
        {"name": "greedy_extra_lost_surplus_vs_lp_ieee33", "value": round(100 * float(np.mean(gaps)), 2),
         "unit": "%", "target": None,
         "note": f"{secured}/{tried} random stressed ieee33 intervals secured by both (AC); "
         f"max {100 * max(gaps):.1f} %, min {100 * min(gaps):.1f} %"},
    ]  # fmt: skip


def _check_members_free(
    sec: CongestionSecurity,
    feeder: Feeder,
    p_bus: np.ndarray,
    trades: tuple[Any, ...],
    surplus: np.ndarray,
) -> tuple[int, int]:
    """The stage's iteration without a World: returns (lost surplus, violations after)."""
    from gridledger.security.congestion import security_violations
    from gridledger.security.curtailment import curtail, lost_surplus_micro

    limits = SecurityLimits(feeder.v_min_pu, feeder.v_max_pu, 100.0)
    sens = sec.sensitivities(feeder)
    seller_bus = np.array([t.seller_bus for t in trades])
    energy = np.array([t.e_wh for t in trades])
    cut = np.zeros(len(trades), dtype=np.int64)
    p_now = p_bus.copy()
    result = run_ac(feeder, p_now)
    for k in range(sec.max_iterations):
        lin = linear_limits(feeder, sens, result, p_now, limits, seller_bus, 0.25,
                            sec.margin_pct * sec.growth**k)  # fmt: skip
        plan = curtail(sec.rule, lin, energy - cut, surplus)
        if plan.curtailed_wh == 0:
            break
        cut += np.asarray(plan.cut_wh)
        np.subtract.at(p_now, seller_bus, np.asarray(plan.cut_wh) / 250.0)
        result = run_ac(feeder, p_now)
        if not security_violations(result, limits):
            break
    return lost_surplus_micro(cut.tolist(), surplus), len(security_violations(result, limits))


def _stressed_rows() -> list[Row]:
    scenario = load_scenario(STRESSED, ['chain.backend="none"'])
    world = build_world(scenario)
    limits = SecurityLimits.from_spec(scenario.security)
    rows: list[Row] = _feeder_rows(
        world.feeder, world.bus_injection_kw(world.members.forecast_net_kw[:, NOON]), "ieee33"
    )
    rows += _physical_gap_rows(world.feeder)
    summary: dict[str, tuple[int, int, int, int, float]] = {}
    for rule in ("none", "greedy", "lp"):
        sec = CheckOnlySecurity() if rule == "none" else CongestionSecurity(rule, limits)  # type: ignore[arg-type]
        mechanism = make_mechanism(world)
        before = after = cut_wh = lost = 0
        managed_s: list[float] = []
        for k in range(scenario.horizon.intervals):
            out = run_interval(world, k, mechanism, sec)
            before += out.security.violations_before
            after += out.security.violations_after
            cut_wh += sum(c.cut_wh for c in out.security.curtailments)
            if isinstance(sec, CongestionSecurity):
                report = sec.reports[k]
                lost += report.lost_surplus_micro
                if report.violations_before:
                    managed_s.append(report.runtime_s)
        per = 1000 * statistics.median(managed_s) if managed_s else 0.0
        summary[rule] = (before, after, cut_wh, lost, per)
    for rule, (before, after, cut_wh, lost, per) in summary.items():
        rows.append(
            {"name": f"stressed_day_{rule}_violations_after", "value": after, "unit": "count",
             "target": None if rule == "none" else 0,
             "note": f"before {before}; curtailed {cut_wh / 1000:.1f} kWh; lost surplus "
             f"{lost / 1e6:.3f} tokens"}
        )  # fmt: skip
        if rule != "none":
            rows.append(
                {"name": f"stressed_interval_{rule}_security_stage", "value": round(per, 1),
                 "unit": "ms", "target": None,
                 "note": "median over violating intervals, AC check + curtailment + AC re-runs"}
            )  # fmt: skip
    return rows


def _simbench_rows() -> list[Row]:
    try:
        import simbench  # noqa: F401
    except ImportError:
        return [
            {"name": "simbench_lv_ac_check", "value": None, "unit": "ms", "target": 30.0,
             "note": "simbench not installed (pip install 'gridledger[simbench]')"}
        ]  # fmt: skip
    feeder = load_feeder(SIMBENCH_CODE)
    rng = np.random.default_rng(0)
    p_bus = -np.asarray(feeder.base_load_p_kw, dtype=float) * 0.5
    pv = rng.random(feeder.n_buses) < 0.3
    p_bus[pv] += 20.0
    p_bus[0] = 0.0
    return _feeder_rows(feeder, p_bus, f"simbench_{SIMBENCH_CODE}")


def run() -> list[Row]:
    return [*_stressed_rows(), *_rule_rows(), *_simbench_rows()]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:45s} {row['value']!s:>10} {row['unit']:6s} "
              f"target {row['target']!s:>6}  {row.get('note', '')}")  # fmt: skip
