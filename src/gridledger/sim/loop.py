"""The interval loop: forecast -> bidding rounds -> clearing -> security -> delivery -> settlement.

Each stage sits behind a small interface:

- bidding: a :class:`~gridledger.bidding.mechanism.Mechanism` (``market.mechanism``);
- clearing: a rule from :mod:`gridledger.market.rules` (``market.clearing``),
  with the scenario's use-of-system fee table;
- security: a :class:`~gridledger.security.SecurityStage` (power flow verdict,
  curtailments);
- ledger: an optional :class:`~gridledger.sim.ports.LedgerPort` (``chain.backend``);
  ``None`` runs the pure reference. Every on-chain result is compared with the
  reference, and a difference is returned in the interval's outcome.

The loop is deterministic for a given scenario and seed: a resumed run replays
the completed intervals off chain and carries on, so it ends with the same
results as an uninterrupted run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gridledger.bidding import BestResponseMechanism, BRSettings
from gridledger.bidding.game.model import AT_SCALE
from gridledger.bidding.mechanism import Mechanism, Position, TraderMechanism
from gridledger.market.optimal import solve_optimal
from gridledger.market.orders import (
    Bid,
    ClearingResult,
    Curtailment,
    Side,
    Trade,
    apply_curtailments,
)
from gridledger.market.rules import clear
from gridledger.market.settlement import Settlement, settle
from gridledger.market.units import kwh_to_wh, price_to_micro
from gridledger.market.welfare import bid_surplus_wh_micro as surplus_wh_micro
from gridledger.scenario import MarketSpec, Scenario
from gridledger.security import SecurityOutcome, SecurityStage, make_security
from gridledger.sim.ports import LedgerPort
from gridledger.world import World, build_world, welfare_micro

__all__ = [
    "IntervalOutcome",
    "RunResult",
    "make_mechanism",
    "positions_for",
    "run",
    "run_interval",
]

log = logging.getLogger(__name__)

MechanismValue = int | float | bool | None
ChainStatValue = int | float | dict[str, int]


@dataclass
class IntervalOutcome:
    """Everything one interval produced (integers where they are settled)."""

    interval: int
    rounds: list[list[Bid]]
    cleared: ClearingResult
    security: SecurityOutcome
    readings_wh: dict[int, int]
    settlement_trades: tuple[Trade, ...]
    settlement: Settlement
    optimum_welfare_micro: int | None = 0
    """Competitive optimum of the interval: the welfare-optimal clearing of truthful
    orders (members' true values and costs) under the same fees. None when the LP was
    too large to solve every interval (:data:`OPTIMUM_MAX_BUS_PAIRS`)."""
    bid_surplus_wh_micro: int = 0
    """Surplus of the clearing measured at the binding bids (Wh x micro/kWh)."""
    bid_optimum_wh_micro: int | None = 0
    """LP optimum of the same binding bids and fees (HiGHS), the clearing's reference
    (None, like ``optimum_welfare_micro``, when the LP was too large)."""
    mechanism_info: dict[str, MechanismValue] = field(default_factory=dict)
    """Per-interval diagnostics of the mechanism (best response: rounds, convergence, Nash gain)."""
    chain_mismatches: tuple[str, ...] = ()
    """Steps whose on-chain result differed from the reference (``clearing``, ``settlement``)."""


@dataclass
class RunResult:
    """A run's outcomes, in interval order, plus run-level facts."""

    world: World
    outcomes: list[IntervalOutcome] = field(default_factory=list)
    runtime_s: float = 0.0
    chain: str = "none"
    chain_stats: dict[str, ChainStatValue] = field(default_factory=dict)
    onchain_matches_reference: bool | None = None
    """None off chain; else whether every recorded interval matched the reference."""
    chain_conserved: bool | None = None
    chain_solvent: bool | None = None  # the contract's solvent() after the run
    audit_findings: int | None = None  # manipulations the audit named (None: not audited)
    """The contract's own check: deposits = balances + withdrawals = tokens held."""


def _br_settings(market: MarketSpec, seed: int) -> BRSettings:
    """The best-response settings of the scenario's ``br_*`` keys (``br_settings``
    picks the ladder or the at-scale target settings, docs/best_response.md)."""
    base = AT_SCALE if market.br_settings == "at_scale" else BRSettings(order=market.br_order)
    return replace(
        base,
        fees_in_utility=market.br_fees_in_utility,
        k_max=market.br_max_rounds,
        epsilon=base.epsilon if market.br_epsilon is None else market.br_epsilon,
        start=market.br_start,
        seed=seed,
    )


def make_mechanism(world: World) -> Mechanism:
    """The scenario's bidding mechanism."""
    scenario = world.scenario
    market = scenario.market
    if market.mechanism == "best-response":
        return BestResponseMechanism(
            world.members.members,
            world.interval_h,
            world.fees,
            world.kappa,
            market.feed_in_per_kwh,
            market.retail_per_kwh,
            settings=_br_settings(market, scenario.seed),
            nash_check=True,
        )
    return TraderMechanism(
        rounds=market.rounds,
        feed_in_per_kwh=market.feed_in_per_kwh,
        retail_per_kwh=market.retail_per_kwh,
        seed=scenario.seed,
        fees=world.fees,
    )


def positions_for(world: World, interval: int) -> list[Position]:
    """Members' orders for ``interval`` from their forecasts (no pricing yet)."""
    market = world.scenario.market
    net_kw = world.members.forecast_net_kw[:, interval]
    out = []
    for member, p_kw in zip(world.members.members, net_kw, strict=True):
        e_wh = kwh_to_wh(abs(float(p_kw)) * world.interval_h)
        if e_wh <= 0:
            continue
        if p_kw > 0:
            side, limit = Side.SELL, max(member.cost_per_kwh, market.feed_in_per_kwh)
        else:
            side, limit = Side.BUY, min(member.utility_per_kwh, market.retail_per_kwh)
        out.append(
            Position(
                member.id, member.bus, side, e_wh, limit, member.risk_attitude, member.strategy
            )
        )
    return out


def curtailed_generation_kw(
    world: World, trades: tuple[Trade, ...], curtailments: Sequence[Curtailment]
) -> np.ndarray:
    """Per-member generation curtailed (kW) by ``curtailments`` of ``trades``."""
    out = np.zeros(len(world.members.members))
    for c in curtailments:
        out[trades[c.trade_index].seller] += c.cut_wh / 1000.0 / world.interval_h
    return out


def run_interval(
    world: World,
    interval: int,
    mechanism: Mechanism,
    security: SecurityStage,
    ledger: LedgerPort | None = None,
) -> IntervalOutcome:
    """One interval through every stage; records on ``ledger`` when given."""
    scenario = world.scenario

    def clear_bids(bids: Sequence[Bid]) -> ClearingResult:
        return clear(scenario.market.clearing, bids, world.fees, world.kappa)

    positions = positions_for(world, interval)
    rounds = mechanism.run_rounds(interval, positions, clear_bids)
    info = _mechanism_info(mechanism, interval)
    if ledger is not None:
        ledger.sign_ahead(interval, rounds)  # signed while the node works on the rounds
        for k, bids in enumerate(rounds):
            ledger.record_round(interval, k, bids, binding=k == len(rounds) - 1)
    final_bids = rounds[-1] if rounds else []
    cleared = clear_bids(final_bids) if final_bids else ClearingResult((), None)
    mismatches: list[str] = []
    if ledger is not None:
        onchain = ledger.clear(interval)
        if onchain.trades != cleared.trades:
            log.error("interval %d: on-chain clearing differs from the reference", interval)
            mismatches.append("clearing")
    schedule = world.members.forecast_net_kw[:, interval]
    outcome = security.check(world, interval, cleared.trades, schedule)
    curtailed = curtailed_generation_kw(world, cleared.trades, outcome.curtailments)
    actual_kw = world.members.actual_net_kw[:, interval] - curtailed
    readings = {
        m.id: kwh_to_wh(float(p) * world.interval_h)
        for m, p in zip(world.members.members, actual_kw, strict=True)
    }
    if ledger is not None:
        ledger.sign_ahead(interval, readings=readings)  # signed while the verdict is recorded
        ledger.record_security(
            interval,
            list(outcome.curtailments),
            outcome.margins,
            outcome.certificate,
            unresolved=outcome.violations_after > 0,
        )
    trades = apply_curtailments(cleared.trades, outcome.curtailments)
    settlement = settle(trades, readings, world.tariffs)
    if ledger is not None:
        ledger.record_readings(interval, readings)
        deltas = ledger.settle(interval)
        if deltas != settlement.deltas():
            log.error("interval %d: on-chain settlement differs from the reference", interval)
            mismatches.append("settlement")
        ledger.end_interval(interval)
    bid_surplus = surplus_wh_micro(cleared.trades, final_bids)
    affordable = _lp_affordable(final_bids, interval)
    bid_optimum: int | None = None
    if scenario.market.clearing == "optimal" or not final_bids:
        bid_optimum = bid_surplus  # the clearing already is the LP optimum (or nothing to clear)
    elif affordable:
        bid_optimum = solve_optimal(final_bids, world.fees, world.kappa).welfare_wh_micro
    optimum = optimum_welfare_micro(world, positions) if affordable else None
    return IntervalOutcome(
        interval,
        rounds,
        cleared,
        outcome,
        readings,
        trades,
        settlement,
        optimum,
        bid_surplus,
        bid_optimum,
        info,
        tuple(mismatches),
    )


def _mechanism_info(mechanism: Mechanism, interval: int) -> dict[str, MechanismValue]:
    """The mechanism's diagnostics for ``interval``, if it keeps any."""
    diagnostics = getattr(mechanism, "diagnostics", None)
    if not diagnostics or getattr(diagnostics[-1], "interval", None) != interval:
        return {}
    last = diagnostics[-1]
    return {
        "br_rounds": last.rounds,
        "br_converged": last.converged,
        "nash_max_gain": last.nash_max_gain_rel,
        "nash_max_gain_tokens": last.nash_max_gain_tokens,
        "br_cycle_round": getattr(last, "cycle_round", None),
        "br_moving": getattr(last, "moving", 0),
        "br_epsilon": getattr(last, "epsilon", None),
        "br_restarts": getattr(last, "restarts", 0),
    }


OPTIMUM_MAX_BUS_PAIRS = 40_000
"""Largest seller-bus x buyer-bus count for which the two welfare optima (benchmarks of
the clearing, not part of it) are solved every interval. The LP has a flow per bus
pair: 10,000 orders on 200 buses take about 15 s, on 400 buses about 3 min."""


def _lp_affordable(bids: Sequence[Bid], interval: int) -> bool:
    sellers = {b.bus for b in bids if b.side == Side.SELL}
    buyers = {b.bus for b in bids if b.side == Side.BUY}
    pairs = len(sellers) * len(buyers)
    if pairs <= OPTIMUM_MAX_BUS_PAIRS:
        return True
    log.info(
        "interval %d: welfare optima not computed (%d seller x %d buyer buses > %d pairs)",
        interval,
        len(sellers),
        len(buyers),
        OPTIMUM_MAX_BUS_PAIRS,
    )
    return False


def optimum_welfare_micro(world: World, positions: Sequence[Position]) -> int:
    """Welfare of the LP-optimal clearing of truthful orders (the competitive optimum)."""
    truthful = [
        Bid(p.member, p.side, p.e_wh, price_to_micro(p.limit_price_per_kwh), p.bus)
        for p in positions
    ]
    if not truthful:
        return 0
    return welfare_micro(world, clear("optimal", truthful, world.fees, world.kappa).trades)


def run(
    scenario: Scenario,
    *,
    ledger: LedgerPort | None = None,
    progress: Callable[[int], None] | None = None,
    world: World | None = None,
    security: SecurityStage | None = None,
    resume_from: int = 0,
) -> RunResult:
    """Run ``scenario`` over its horizon.

    ``resume_from``: intervals before it are replayed off chain (the chain already
    holds them) so that every member's learning state is what it would have been.
    """
    started = time.perf_counter()
    world = world or build_world(scenario)
    mechanism = make_mechanism(world)
    security = security or make_security(scenario)
    result = RunResult(world=world, chain=scenario.chain.backend if ledger is not None else "none")
    for interval in range(scenario.horizon.intervals):
        use_ledger = ledger if interval >= resume_from else None
        result.outcomes.append(run_interval(world, interval, mechanism, security, use_ledger))
        if progress is not None:
            progress(interval)
    if ledger is not None:
        result.onchain_matches_reference = not any(o.chain_mismatches for o in result.outcomes)
    result.runtime_s = time.perf_counter() - started
    return result
