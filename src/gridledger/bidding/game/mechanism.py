"""The ``best-response`` mechanism: every round of the dynamics is one recorded bidding round."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from gridledger.bidding.game.dynamics import BRDiagnostics, run_dynamics
from gridledger.bidding.game.model import (
    BestResponseError,
    BRSettings,
    Game,
    IntArray,
    Player,
    Strategy,
)
from gridledger.bidding.game.nash import check_equilibrium
from gridledger.bidding.game.start import start_profile
from gridledger.bidding.mechanism import ClearRule, Position
from gridledger.market.greedy import kappa_fraction
from gridledger.market.orders import Bid, Side
from gridledger.market.units import MICRO, price_to_micro
from gridledger.members.member import Member

__all__ = ["BestResponseMechanism", "players_from_positions"]

log = logging.getLogger(__name__)


def players_from_positions(
    members: Mapping[int, Member], positions: Sequence[Position]
) -> list[Player]:
    """Players for ``positions`` (``gridledger.bidding.mechanism.Position``) from member parameters."""
    players = []
    for pos in positions:
        member_id = int(pos.member)
        side = Side(pos.side)
        if member_id not in members:
            message = f"position of member {member_id}: no such member"
            raise BestResponseError(message)
        m = members[member_id]
        lin, quad = (
            (m.utility_alpha, m.utility_beta) if side == Side.BUY else (m.cost_per_kwh, m.cost_a)
        )
        players.append(
            Player(member_id, int(pos.bus), side, int(pos.e_wh), float(lin), float(quad))
        )
    return players


@dataclass
class BestResponseMechanism:
    """The ``br`` mechanism: every best-response round is one recorded round.

    ``fees`` (int64 (B, B) micro/kWh, ``fees[seller_bus, buyer_bus]``, or None)
    and ``kappa`` must be the ones the simulation clears with, under the
    ``greedy`` rule. ``members`` gives the quadratic parameters (per interval of
    ``interval_h`` hours, as the member generator scales them). Prices are bounded
    by the tariffs. ``nash_check`` runs :func:`gridledger.bidding.game.nash.check_equilibrium`
    after each interval (slower; grid of ``nash_prices`` x ``nash_quantities``).
    Per-interval results are appended to ``diagnostics``.
    """

    members: Sequence[Member]
    interval_h: float
    fees: npt.ArrayLike | None
    kappa: Fraction | float
    feed_in_per_kwh: float
    retail_per_kwh: float
    settings: BRSettings = field(default_factory=BRSettings)
    nash_check: bool = False
    nash_prices: int = 101
    nash_quantities: int = 11
    diagnostics: list[BRDiagnostics] = field(default_factory=list)
    last_price: dict[tuple[int, int], int] = field(default_factory=dict)

    def _fee_table(self, n_buses: int) -> IntArray:
        if self.fees is None:
            return np.zeros((n_buses, n_buses), dtype=np.int64)
        return np.asarray(self.fees, dtype=np.int64)

    def game_for(self, positions: Sequence[Position]) -> Game:
        by_id = {m.id: m for m in self.members}
        players = players_from_positions(by_id, positions)
        n_buses = max([m.bus for m in self.members] + [p.bus for p in players] + [0]) + 1
        feed_in = price_to_micro(self.feed_in_per_kwh)
        retail = price_to_micro(self.retail_per_kwh)
        return Game(
            tuple(players),
            self._fee_table(n_buses),
            kappa_fraction(self.kappa),
            feed_in,
            retail,
            max(1, round(self.settings.tick_fraction * (retail - feed_in))),
        )

    def initial_profile(self, game: Game, positions: Sequence[Position]) -> list[Strategy]:
        """The starting profile of ``settings.start`` (``bidding.game.start``); "warm"
        starts from each member's last price on the same side, else its limit."""
        del positions  # the players carry the positions' members, sides and caps
        model_fees = game.fees if self.settings.fees_in_utility else np.zeros_like(game.fees)
        last = [self.last_price.get((pl.member, int(pl.side))) for pl in game.players]
        return start_profile(game, self.settings.start, model_fees, last)

    def run_rounds(
        self, interval: int, positions: Sequence[Position], clear: ClearRule
    ) -> list[list[Bid]]:
        if not positions:
            return []
        game = self.game_for(positions)
        # one random stream per interval: intervals are independent of each other
        # (and of a resume) unless the start is warm
        seed = int(np.random.SeedSequence([self.settings.seed, interval]).generate_state(1)[0])
        settings = replace(self.settings, seed=seed)
        result = run_dynamics(game, self.initial_profile(game, positions), settings)
        rounds = [game.bids(p) for p in result.profiles[1:]]
        for pl, st in zip(game.players, result.final, strict=True):
            self.last_price[(pl.member, int(pl.side))] = st.price_per_kwh_micro
        diag = BRDiagnostics(
            interval=interval,
            players=len(game.players),
            rounds=result.rounds,
            converged=result.converged,
            max_change=result.max_change[-1] if result.max_change else 0.0,
            runtime_s=result.runtime_s,
            cycle_round=result.cycle_round,
            cycle_period=result.cycle_period,
            cycles=result.cycles,
            max_gain_rel=result.max_gain[-1] if result.max_gain else 0.0,
            moving=len(result.moving),
            epsilon=result.epsilon,
            restarts=result.restarts,
            fallback=result.fallback,
        )
        final_bids = rounds[-1]
        if final_bids:
            diag.rule_matches = clear(final_bids).trades == game.clear(result.final).trades
            if not diag.rule_matches:
                log.warning(
                    "interval %d: the simulation's clearing differs from the greedy rule "
                    "the best response assumes",
                    interval,
                )
        if self.nash_check:
            report = check_equilibrium(
                game,
                result.final,
                n_prices=self.nash_prices,
                n_quantities=self.nash_quantities,
                epsilon=result.epsilon,
            )
            diag.nash_checked = True
            diag.nash_max_gain_rel = report.max_gain_rel
            diag.nash_max_gain_tokens = report.max_gain_micro / MICRO
            diag.nash_member = report.member
            diag.nash_is_equilibrium = report.is_equilibrium
        self.diagnostics.append(diag)
        return rounds
