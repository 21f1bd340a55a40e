"""The security stage's interface, its outcome, and the check without management.

A stage receives an interval's cleared trades and the members' scheduled net
injections, runs the AC power flow, and returns a :class:`SecurityOutcome`: the
(possibly curtailed) trades, the curtailments and the verdict before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gridledger.grid.powerflow import PowerFlowResult, run_ac, violations
from gridledger.market.justification import RowMargin
from gridledger.market.orders import Curtailment, Trade
from gridledger.world import World

__all__ = ["CheckOnlySecurity", "SecurityOutcome", "SecurityStage"]


@dataclass(frozen=True)
class SecurityOutcome:
    """Verdict of the security check for one interval."""

    trades: tuple[Trade, ...]
    curtailments: tuple[Curtailment, ...]
    before: PowerFlowResult
    after: PowerFlowResult
    violations_before: int
    violations_after: int
    lost_surplus_micro: int = 0
    """Surplus (at members' true values and costs) lost to curtailment."""
    reason: str = ""
    """Why management stopped when violations remain (empty when secure)."""
    margins: tuple[RowMargin, ...] = ()
    """The DSO's signed margin of every row the curtailments are made for (ascending rows)."""
    certificate: tuple[int, ...] = ()
    """lp rule: one scaled dual per margin (``SecurityVerifier.DUAL_SCALE``); else empty."""


class SecurityStage(Protocol):
    def check(
        self, world: World, interval: int, trades: tuple[Trade, ...], schedule_net_kw: np.ndarray
    ) -> SecurityOutcome:
        """Check the schedule (per-member net kW) and curtail ``trades`` if needed."""
        ...


@dataclass
class CheckOnlySecurity:
    """AC power flow verdict without congestion management (``security.congestion = none``)."""

    def check(
        self, world: World, interval: int, trades: tuple[Trade, ...], schedule_net_kw: np.ndarray
    ) -> SecurityOutcome:
        feeder = world.feeder
        result = run_ac(feeder, world.bus_injection_kw(schedule_net_kw))
        limit = world.scenario.security.thermal_limit_pct
        count = len(violations(result, feeder.v_min_pu, feeder.v_max_pu, limit))
        return SecurityOutcome(trades, (), result, result, count, count)
