"""Security check and congestion management of a cleared interval (docs/security.md).

:class:`CongestionSecurity` implements :class:`gridledger.security.stage.SecurityStage`:

1. AC power flow (pandapower Newton-Raphson) of the schedule's net injections;
   voltages checked against ``[security.v_min_pu, security.v_max_pu]`` (slack bus
   excluded), line and transformer loadings against ``security.thermal_limit_pct``.
2. If a limit is violated: linearise every limit around the AC operating point
   (LinDistFlow ``dv_dp`` for voltages, PTDF for branch flows, from
   :mod:`gridledger.grid.sensitivities`), take each trade's column at its seller's
   bus, and let the congestion rule (:mod:`gridledger.security.curtailment`, greedy
   or LP) choose integer cuts. The linearised limits are tightened by a safety
   margin that grows each iteration (``margin_pct * growth**k``).
3. Apply the cuts (the seller's generation at its bus drops by the cut energy;
   the buyer still consumes and buys it from the grid), re-run the AC power flow
   and repeat until it shows no violation, or until no trade can help any
   remaining violation (e.g. under-voltage caused by load alone, or exports that
   are not traded), or ``max_iterations`` is reached. Then the outcome keeps
   ``violations_after > 0`` and the reason is logged and kept in ``reports``.

Units inside the linear model: voltage margins in percent of 1 p.u. (0.01 p.u. =
1 %), loading margins in percent of the rating, so the rules compare like with like.

Surplus lost per kWh cut of a trade: the gains from trade at the members' true
limits, ``min(utility, retail) - max(cost, feed_in) - fee`` clipped at 0, the same
quantity :func:`gridledger.world.welfare_micro` sums (not the bid prices: with uniform
clearing both sides pay the same price and the bids carry no surplus).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gridledger.errors import SecurityError
from gridledger.grid.catalogue import Feeder
from gridledger.grid.powerflow import PowerFlowResult, Violation, run_ac, violations
from gridledger.grid.sensitivities import Sensitivities, sensitivities
from gridledger.market.orders import Curtailment, Trade
from gridledger.market.welfare import surplus_per_kwh_micro
from gridledger.scenario import SecuritySpec
from gridledger.security.curtailment import (
    CurtailmentPlan,
    LinearLimits,
    curtail,
    lost_surplus_micro,
    relief_from_bus_sensitivity,
)
from gridledger.security.stage import SecurityOutcome
from gridledger.world import World, true_limits_micro

__all__ = [
    "CongestionReport",
    "CongestionSecurity",
    "SecurityLimits",
    "linear_limits",
    "security_violations",
    "trade_surplus_per_kwh_micro",
]

log = logging.getLogger(__name__)

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class SecurityLimits:
    """The limits the check enforces."""

    v_min_pu: float
    v_max_pu: float
    thermal_limit_pct: float

    @classmethod
    def from_spec(cls, spec: SecuritySpec) -> SecurityLimits:
        return cls(spec.v_min_pu, spec.v_max_pu, spec.thermal_limit_pct)


def security_violations(result: PowerFlowResult, limits: SecurityLimits) -> list[Violation]:
    """Voltages outside the band (slack excluded) and loadings above the thermal limit."""
    return violations(result, limits.v_min_pu, limits.v_max_pu, limits.thermal_limit_pct)


def trade_surplus_per_kwh_micro(world: World, trades: tuple[Trade, ...]) -> np.ndarray:
    """Gains from trade per kWh of each trade at the members' limits, net of fee, >= 0."""
    values, costs = true_limits_micro(world)
    return np.array(
        [max(0, surplus_per_kwh_micro(t, values, costs)) for t in trades], dtype=np.int64
    )


def linear_limits(
    feeder: Feeder,
    sens: Sensitivities,
    result: PowerFlowResult,
    p_inj_kw: np.ndarray,
    limits: SecurityLimits,
    seller_bus: np.ndarray,
    interval_h: float,
    tighten_pct: float = 0.0,
) -> LinearLimits:
    """Every limit linearised around the AC ``result`` of ``p_inj_kw``, per Wh cut of each trade.

    Rows: upper then lower voltage bound of every non-slack bus, every line, every
    transformer. Margins in percent (see module docstring), reduced by ``tighten_pct``.
    Voltage sensitivities are LinDistFlow's ``dv_dp`` scaled by ``v0 / v_j`` (the
    local voltage; dV = R dP / V). Loading sensitivities follow the branch's active
    power share of its apparent power, ``d|S|/dp = (P/|S|) PTDF``.
    """
    v = result.v_pu
    buses = np.arange(1, feeder.n_buses)
    dv_dp_pct = 100.0 * sens.dv_dp[buses] * (sens.v0_pu / v[buses])[:, None]
    # lines: |S| from the AC current at the from-bus voltage; P from the AC result
    v_from = v[feeder.line_from]
    s_line_kva = SQRT3 * feeder.line_vn_kv * v_from * result.line_i_ka * 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        p_share = np.where(s_line_kva > 1e-9, result.line_p_from_kw / s_line_kva, 0.0)
    p_share = np.clip(p_share, -1.0, 1.0)
    i_max_kva = SQRT3 * feeder.line_vn_kv * v_from * feeder.line_max_i_ka * 1000.0
    dline_pct = 100.0 * (p_share / i_max_kva)[:, None] * sens.ptdf_line
    rows_d = [-dv_dp_pct, dv_dp_pct, -dline_pct]
    margins = [
        100.0 * (limits.v_max_pu - v[buses]),
        100.0 * (v[buses] - limits.v_min_pu),
        limits.thermal_limit_pct - result.line_loading_pct,
    ]
    kinds = ["bus"] * (2 * len(buses)) + ["line"] * feeder.n_lines
    index = [buses, buses, np.arange(feeder.n_lines)]
    if feeder.n_trafos:
        # transformer active power from the linear estimate of the LV side's net injection
        p_trafo = sens.ptdf_trafo @ np.asarray(p_inj_kw, dtype=float)
        s_trafo = result.trafo_loading_pct / 100.0 * feeder.trafo_sn_kva
        with np.errstate(divide="ignore", invalid="ignore"):
            t_share = np.where(s_trafo > 1e-9, p_trafo / s_trafo, 0.0)
        t_share = np.clip(t_share, -1.0, 1.0)
        rows_d.append(-100.0 * (t_share / feeder.trafo_sn_kva)[:, None] * sens.ptdf_trafo)
        margins.append(limits.thermal_limit_pct - result.trafo_loading_pct)
        kinds += ["trafo"] * feeder.n_trafos
        index.append(np.arange(feeder.n_trafos))
    dmargin_dp = np.vstack(rows_d)
    return LinearLimits(
        element=tuple(kinds),
        element_index=np.concatenate(index).astype(np.int64),
        margin=np.concatenate(margins) - tighten_pct,
        relief_per_wh=relief_from_bus_sensitivity(dmargin_dp, seller_bus, interval_h),
    )


@dataclass
class CongestionReport:
    """What congestion management did in one interval (kept per interval)."""

    interval: int
    violations_before: int
    violations_after: int
    iterations: int
    curtailed_wh: int
    lost_surplus_micro: int
    reason: str
    unresolved: tuple[str, ...] = ()
    ac_runs: int = 0
    runtime_s: float = 0.0


@dataclass
class CongestionSecurity:
    """AC check plus congestion management by the ``rule`` (``greedy`` or ``lp``).

    ``limits`` defaults to the feeder's own band and 100 % loading; ``make_security``
    passes the scenario's ``[security]`` values. ``margin_pct`` (percent, see the
    module docstring) tightens the linearised limits, multiplied by ``growth`` after
    every iteration that leaves a violation.
    """

    rule: Literal["greedy", "lp"] = "greedy"
    limits: SecurityLimits | None = None
    max_iterations: int = 8
    margin_pct: float = 0.01
    growth: float = 3.0
    reports: dict[int, CongestionReport] = field(default_factory=dict)
    _sens: tuple[Feeder, Sensitivities] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rule not in ("greedy", "lp"):
            msg = f"CongestionSecurity: rule {self.rule!r} is not 'greedy' or 'lp'"
            raise SecurityError(msg)
        if self.max_iterations < 1 or self.margin_pct < 0 or self.growth < 1:
            msg = (
                f"CongestionSecurity: need max_iterations >= 1, margin_pct >= 0, growth >= 1; "
                f"got {self.max_iterations}, {self.margin_pct}, {self.growth}"
            )
            raise SecurityError(msg)

    def sensitivities(self, feeder: Feeder) -> Sensitivities:
        """The feeder's sensitivities, computed once per feeder."""
        if self._sens is None or self._sens[0] is not feeder:
            self._sens = (feeder, sensitivities(feeder))
        return self._sens[1]

    def _limits(self, feeder: Feeder) -> SecurityLimits:
        return self.limits or SecurityLimits(feeder.v_min_pu, feeder.v_max_pu, 100.0)

    def check(
        self, world: World, interval: int, trades: tuple[Trade, ...], schedule_net_kw: np.ndarray
    ) -> SecurityOutcome:
        started = time.perf_counter()
        feeder = world.feeder
        limits = self._limits(feeder)
        p_bus = world.bus_injection_kw(schedule_net_kw)
        before = run_ac(feeder, p_bus)
        count_before = len(security_violations(before, limits))
        if count_before == 0:
            self.reports[interval] = CongestionReport(
                interval, 0, 0, 0, 0, 0, "secure", ac_runs=1,
                runtime_s=time.perf_counter() - started,
            )  # fmt: skip
            return SecurityOutcome(trades, (), before, before, 0, 0)
        records, report, after = self._manage(world, interval, trades, p_bus, before, limits)
        report.violations_before = count_before
        report.runtime_s = time.perf_counter() - started
        self.reports[interval] = report
        level = logging.INFO if report.violations_after == 0 else logging.WARNING
        log.log(
            level,
            "interval %d: %d violation(s) -> %d after %d iteration(s), %d Wh curtailed (%s)",
            interval,
            count_before,
            report.violations_after,
            report.iterations,
            report.curtailed_wh,
            report.reason,
        )
        return SecurityOutcome(
            trades,
            records,
            before,
            after,
            count_before,
            report.violations_after,
            lost_surplus_micro=report.lost_surplus_micro,
            reason=report.reason,
        )

    def _manage(
        self,
        world: World,
        interval: int,
        trades: tuple[Trade, ...],
        p_bus: np.ndarray,
        before: PowerFlowResult,
        limits: SecurityLimits,
    ) -> tuple[tuple[Curtailment, ...], CongestionReport, PowerFlowResult]:
        feeder = world.feeder
        sens = self.sensitivities(feeder)
        interval_h = world.interval_h
        seller_bus = np.array([t.seller_bus for t in trades], dtype=np.int64)
        surplus = trade_surplus_per_kwh_micro(world, trades)
        energy = np.array([t.e_wh for t in trades], dtype=np.int64)
        cut_total = np.zeros(len(trades), dtype=np.int64)
        merged: dict[tuple[int, str, int], int] = {}
        p_now = p_bus.copy()
        result = before
        remaining = security_violations(result, limits)
        reason = "iteration limit reached"
        unresolved: tuple[str, ...] = ()
        iterations = 0
        ac_runs = 1
        correction: np.ndarray | None = None
        for k in range(self.max_iterations):
            iterations = k + 1
            if not trades:
                reason = "no trades to curtail"
                break
            lin = linear_limits(
                feeder,
                sens,
                result,
                p_now,
                limits,
                seller_bus,
                interval_h,
                tighten_pct=self.margin_pct * self.growth**k,
            )
            if correction is not None:
                lin = LinearLimits(
                    lin.element,
                    lin.element_index,
                    lin.margin,
                    lin.relief_per_wh * correction[:, None],
                )
            plan = curtail(self.rule, lin, energy - cut_total, surplus)
            unresolved = _names(lin, plan)
            if plan.curtailed_wh == 0:
                reason = _why_stuck(lin, remaining, energy - cut_total)
                iterations = k
                break
            for c in plan.curtailments:
                key = (c.trade_index, c.element, c.element_index)
                merged[key] = merged.get(key, 0) + c.cut_wh
            cut_now = np.asarray(plan.cut_wh, dtype=np.int64)
            cut_total += cut_now
            np.subtract.at(p_now, seller_bus, cut_now / 1000.0 / interval_h)
            predicted = lin.relief_per_wh @ cut_now.astype(float)
            previous = result
            result = run_ac(feeder, p_now)
            ac_runs += 1
            remaining = security_violations(result, limits)
            if not remaining:
                reason = "secure after curtailment"
                break
            correction = _secant_correction(feeder, previous, result, predicted, correction)
        else:
            reason = f"iteration limit ({self.max_iterations}) reached with " + ", ".join(
                _violation_name(v) for v in remaining
            )
        if remaining and unresolved and "no trade" not in reason:
            reason += "; linearised limits no trade can satisfy: " + ", ".join(unresolved)
        records = tuple(Curtailment(t, wh, el, idx) for (t, el, idx), wh in sorted(merged.items()))
        report = CongestionReport(
            interval=interval,
            violations_before=0,
            violations_after=len(remaining),
            iterations=iterations,
            curtailed_wh=int(cut_total.sum()),
            lost_surplus_micro=lost_surplus_micro(cut_total.tolist(), surplus),
            reason=reason,
            unresolved=unresolved,
            ac_runs=ac_runs,
        )
        return records, report, result


def _margins_pct(feeder: Feeder, result: PowerFlowResult) -> np.ndarray:
    """AC margins in the row order of ``linear_limits`` (limits cancel in differences)."""
    v = 100.0 * result.v_pu[1:]
    parts = [-v, v, -result.line_loading_pct]
    if feeder.n_trafos:
        parts.append(-result.trafo_loading_pct)
    return np.concatenate(parts)


def _secant_correction(
    feeder: Feeder,
    before: PowerFlowResult,
    after: PowerFlowResult,
    predicted: np.ndarray,
    previous: np.ndarray | None,
) -> np.ndarray:
    """Per-row factor observed / predicted margin change of the last cuts, in [0.25, 4].

    Rows the cuts hardly moved keep their previous factor (1 at first). Factors
    compound, so a row's model converges on the AC response over iterations.
    """
    observed = _margins_pct(feeder, after) - _margins_pct(feeder, before)
    out = np.ones_like(predicted) if previous is None else previous.copy()
    informative = np.abs(predicted) > 1e-4
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(informative, observed / np.where(informative, predicted, 1.0), 1.0)
    ok = informative & np.isfinite(ratio) & (ratio > 0)
    out[ok] = np.clip(out[ok] * ratio[ok], 0.25, 4.0)
    return out


def _why_stuck(lin: LinearLimits, remaining: list[Violation], room_wh: np.ndarray) -> str:
    """Why no cut helps: every relieving trade is cut to zero, or none relieves at all."""
    names = ", ".join(_violation_name(v) for v in remaining)
    rows = lin.violated()
    helps = (lin.relief_per_wh[rows] > 0).any(axis=0) if rows.size else np.zeros(0, bool)
    if helps.size and helps.any() and not (room_wh[helps] > 0).any():
        return (
            f"no trade can relieve {names} any further: every trade that helps is cut to "
            "zero; the rest comes from untraded exports or load"
        )
    return f"no trade can relieve {names} (not caused by traded generation)"


def _violation_name(v: Violation) -> str:
    unit = "p.u." if v.kind == "bus" else "%"
    return f"{v.kind} {v.index} ({v.value:.4g} {unit} vs limit {v.limit:.4g})"


def _names(lin: LinearLimits, plan: CurtailmentPlan) -> tuple[str, ...]:
    return tuple(f"{lin.element[i]} {int(lin.element_index[i])}" for i in plan.unresolved)
