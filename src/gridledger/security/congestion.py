"""Security check and congestion management of a cleared interval (docs/security.md).

:class:`CongestionSecurity` implements :class:`gridledger.security.stage.SecurityStage`:

1. AC power flow (pandapower Newton-Raphson) of the schedule's net injections;
   voltages checked against ``[security.v_min_pu, security.v_max_pu]`` (slack bus
   excluded), line and transformer loadings against ``security.thermal_limit_pct``.
2. If a limit is violated: take each row's AC margin (:func:`row_margins_npct`) and let
   the congestion rule choose integer cuts on the DSO's *committed* linearised network
   (:func:`gridledger.security.justification.linear_network`, static LinDistFlow and
   PTDF sensitivities, the same integers the chain holds), so every curtailment passes
   the on-chain check (docs/security_on_chain.md). Each violated row is asked for an
   *allowance* more relief than its AC margin, starting at ``margin_pct``.
3. Apply the cuts (the seller's generation at its bus drops by the cut energy;
   the buyer still consumes and buys it from the grid), re-run the AC power flow; a
   row still violated gets its AC shortfall (plus ``margin_pct * growth**k``) added to
   its allowance and the rule chooses the total cuts again, until the AC power flow
   shows no violation, no trade can help any remaining violation (e.g. under-voltage
   caused by load alone, or exports that are not traded), or ``max_iterations`` is
   reached. Then the outcome keeps ``violations_after > 0`` and the reason is logged
   and kept in ``reports``. Rows no cut can fix get no curtailment at all.

Units: margins in nano-percent (1e-9 %) of the limit (0.01 p.u. = 1 % for voltages,
percent of the rating for loadings). The rules minimise (lp) or rank by (greedy) the
traded value a cut loses, ``seller price + 1`` micro-tokens per kWh, which the chain
can recompute from the trade words. :func:`linear_limits` (the AC-local linearisation
of earlier versions) is kept for studies and benchmarks.

Surplus lost per kWh cut of a trade, reported as a KPI: the gains from trade at the
members' true limits, ``min(utility, retail) - max(cost, feed_in) - fee`` clipped at 0,
the same quantity :func:`gridledger.world.welfare_micro` sums.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gridledger.errors import SecurityError
from gridledger.grid.catalogue import Feeder
from gridledger.grid.powerflow import PowerFlowResult, Violation, run_ac, violations
from gridledger.grid.sensitivities import Sensitivities, sensitivities
from gridledger.market.justification import NPCT_PER_PCT, LinearNetwork
from gridledger.market.orders import Trade
from gridledger.market.welfare import surplus_per_kwh_micro
from gridledger.scenario import SecuritySpec
from gridledger.security.curtailment import (
    LinearLimits,
    lost_surplus_micro,
    relief_from_bus_sensitivity,
)
from gridledger.security.justification import (
    Justified,
    justify,
    linear_network,
    relief_columns,
    row_margins_npct,
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
    network_form: str = "auto"
    """Form of a meshed feeder's committed network (``security.network_form``)."""
    reports: dict[int, CongestionReport] = field(default_factory=dict)
    _sens: tuple[Feeder, Sensitivities] | None = field(default=None, repr=False)
    _net: tuple[Feeder, float, LinearNetwork] | None = field(default=None, repr=False)

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

    def network(self, feeder: Feeder, interval_h: float) -> LinearNetwork:
        """The committed linearised network of ``feeder`` (computed once, see justification)."""
        if self._net is None or self._net[0] is not feeder or self._net[1] != interval_h:
            self._net = (
                feeder,
                interval_h,
                linear_network(feeder, self.sensitivities(feeder), interval_h, self.network_form),
            )
        return self._net[2]

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
        just, report, after = self._manage(world, interval, trades, p_bus, before, limits)
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
            just.curtailments,
            before,
            after,
            count_before,
            report.violations_after,
            lost_surplus_micro=report.lost_surplus_micro,
            reason=report.reason,
            margins=just.margins,
            certificate=just.certificate,
        )

    def _manage(
        self,
        world: World,
        interval: int,
        trades: tuple[Trade, ...],
        p_bus: np.ndarray,
        before: PowerFlowResult,
        limits: SecurityLimits,
    ) -> tuple[Justified, CongestionReport, PowerFlowResult]:
        """Cuts on the committed model, re-checked by AC; rows still violated get an allowance.

        Each iteration solves the rule afresh for the total cuts (the chain sees one set),
        asking every violated row for ``allowance`` more relief than its AC margin: the
        allowance starts at ``margin_pct`` and grows by the row's AC shortfall after the
        cuts plus ``margin_pct * growth**k``, which absorbs the static model's error.
        """
        feeder = world.feeder
        sens = self.sensitivities(feeder)
        net = self.network(feeder, world.interval_h)
        surplus = trade_surplus_per_kwh_micro(world, trades)
        seller_bus = np.array([t.seller_bus for t in trades], dtype=np.int64)
        margin = row_margins_npct(
            feeder, sens, before, p_bus, limits.v_max_pu, limits.thermal_limit_pct
        )
        violated = margin < 0
        step = round(self.margin_pct * NPCT_PER_PCT)
        allowance = np.where(violated, step, 0).astype(np.int64)
        just = Justified((), (0,) * len(trades), (), (), tuple(np.flatnonzero(violated).tolist()))
        result = before
        remaining = security_violations(result, limits)
        reason = "iteration limit reached"
        iterations = 0
        ac_runs = 1
        for k in range(self.max_iterations):
            iterations = k + 1
            if not trades:
                reason = "no trades to curtail"
                break
            attempt = justify(self.rule, net, trades, margin, allowance)
            if attempt.curtailed_wh == 0:
                just = attempt
                reason = _why_stuck(net, trades, remaining, margin)
                iterations = k
                break
            if k > 0 and attempt.cut_wh == just.cut_wh:
                reason = "cuts at their fixable limit leave " + _names(remaining)
                break
            just = attempt
            p_now = p_bus.copy()
            np.subtract.at(p_now, seller_bus, np.asarray(just.cut_wh) / 1000.0 / world.interval_h)
            result = run_ac(feeder, p_now)
            ac_runs += 1
            remaining = security_violations(result, limits)
            if not remaining:
                reason = "secure after curtailment"
                break
            after = row_margins_npct(
                feeder, sens, result, p_now, limits.v_max_pu, limits.thermal_limit_pct
            )
            short = violated & (after < 0)
            if not short.any():
                reason = (
                    f"no trade can relieve {_names(remaining)} (not caused by traded generation)"
                )
                break
            allowance[short] += -after[short] + round(step * self.growth**k)
        else:
            reason = f"iteration limit ({self.max_iterations}) reached with " + _names(remaining)
        unresolved = tuple(f"{a} {b}" for a, b in (net.element_of(r) for r in just.unresolvable))
        if remaining and unresolved and "no trade" not in reason:
            reason += "; violated rows no cut can fix: " + _listed(list(unresolved))
        report = CongestionReport(
            interval=interval,
            violations_before=0,
            violations_after=len(remaining),
            iterations=iterations,
            curtailed_wh=just.curtailed_wh,
            lost_surplus_micro=lost_surplus_micro(list(just.cut_wh), surplus),
            reason=reason,
            unresolved=unresolved,
            ac_runs=ac_runs,
        )
        return just, report, result


def _why_stuck(
    net: LinearNetwork, trades: tuple[Trade, ...], remaining: list[Violation], margin: np.ndarray
) -> str:
    """Why no cut helps: the violated rows no trade loads enough, or no curtailable row."""
    names = _names(remaining)
    rows = np.flatnonzero(margin < 0)
    if rows.size and (relief_columns(net, trades)[rows] > 0).any():
        return (
            f"no trade can relieve {names} enough: cutting every trade that helps is not "
            "enough; the rest comes from untraded exports or load"
        )
    return f"no trade can relieve {names} (not caused by traded generation)"


NAMED_MAX = 12
"""Violations named in a reason; the rest are counted (a 5,000-bus feeder can list hundreds)."""


def _listed(names: list[str]) -> str:
    if len(names) <= NAMED_MAX:
        return ", ".join(names)
    return ", ".join(names[:NAMED_MAX]) + f" and {len(names) - NAMED_MAX} more"


def _names(violations: Sequence[Violation]) -> str:
    return _listed([_violation_name(v) for v in violations])


def _violation_name(v: Violation) -> str:
    unit = "p.u." if v.kind == "bus" else "%"
    return f"{v.kind} {v.index} ({v.value:.4g} {unit} vs limit {v.limit:.4g})"
