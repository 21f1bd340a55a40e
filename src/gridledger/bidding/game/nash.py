"""Equilibrium check for the best-response game (docs/best_response.md).

Independent of the best-response search: for every player, try unilateral
deviations on a grid and clear each with the reference rule
(``market.greedy.clear_greedy``), then report the largest improvement of any
player's payoff over its payoff in the profile.

Grid: ``n_prices`` evenly spaced prices over the game's price bounds (snapped to
the tick grid), plus the player's own price and its neighbours one tick away;
``n_quantities`` evenly spaced quantities ``0 .. cap``. By default one clearing
per price gives the payoff of every grid quantity, because a player's trades at
quantity ``q`` are the first ``q`` Wh of its trades at full cap (the greedy run
is identical until the player is exhausted); ``strict=True`` clears every
(price, quantity) pair instead (slower; used by the tests to confirm the
shortcut).

A gain is relative to the player's scale ``cap_kwh * (high - low)`` (the most
surplus its energy could carry across the price range); the profile is an
epsilon-equilibrium on the grid when every relative gain is ``<= epsilon``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gridledger.bidding.game.model import Game, Strategy, payoff_micro
from gridledger.market.orders import Side, Trade

__all__ = ["Deviation", "NashReport", "check_equilibrium", "payoff_by_quantity"]


@dataclass(frozen=True, slots=True)
class Deviation:
    """The best deviation found for one player."""

    member: int
    base_micro: float
    best_micro: float
    strategy: Strategy
    gain_rel: float

    @property
    def gain_micro(self) -> float:
        return self.best_micro - self.base_micro


@dataclass
class NashReport:
    """Result of :func:`check_equilibrium`; ``member``/``deviation`` name the largest gain."""

    epsilon: float
    max_gain_rel: float
    max_gain_micro: float
    member: int | None
    deviation: Strategy | None
    per_member: list[Deviation] = field(default_factory=list)
    clearings: int = 0

    @property
    def is_equilibrium(self) -> bool:
        return self.max_gain_rel <= self.epsilon


def payoff_by_quantity(
    game: Game, index: int, trades: Sequence[Trade], quantities: Sequence[int]
) -> list[float]:
    """Payoff of player ``index`` for each quantity, from its trades at full cap.

    Uses the prefix property (module docstring): the first ``q`` Wh of the
    player's trades, in clearing order.
    """
    player = game.players[index]
    mine = [
        t
        for t in trades
        if (t.buyer == player.member if player.side == Side.BUY else t.seller == player.member)
    ]
    out = []
    for q in quantities:
        left = q
        part: list[Trade] = []
        for t in mine:
            if left <= 0:
                break
            take = min(t.e_wh, left)
            part.append(
                Trade(
                    t.buyer,
                    t.seller,
                    take,
                    t.buyer_price_per_kwh_micro,
                    t.seller_price_per_kwh_micro,
                    t.buyer_bus,
                    t.seller_bus,
                )
            )
            left -= take
        out.append(payoff_micro(player, part))
    return out


def _price_grid(game: Game, own: int, n_prices: int) -> list[int]:
    span = game.high_top - game.low_micro
    grid = {
        game.snap_down(game.low_micro + round(span * k / max(n_prices - 1, 1)))
        for k in range(n_prices)
    }
    for p in (own - game.tick_micro, own, own + game.tick_micro):
        if game.low_micro <= p <= game.high_top:
            grid.add(p)
    return sorted(grid)


def check_equilibrium(
    game: Game,
    profile: Sequence[Strategy],
    *,
    n_prices: int = 201,
    n_quantities: int = 21,
    epsilon: float = 1e-4,
    strict: bool = False,
    members: Sequence[int] | None = None,
) -> NashReport:
    """Largest payoff gain of any unilateral deviation on the grid (module docstring).

    ``members`` restricts the check to those member ids (default: all players).
    """
    profile = list(profile)
    base_trades = game.clear(profile).trades
    report = NashReport(epsilon, 0.0, 0.0, None, None)
    clearings = 1
    for index, player in enumerate(game.players):
        if members is not None and player.member not in members:
            continue
        base = payoff_micro(player, base_trades)
        quantities = sorted(
            {round(player.cap_wh * k / max(n_quantities - 1, 1)) for k in range(n_quantities)}
            | {profile[index].e_wh}
        )
        best = base
        best_strategy = profile[index]
        for price in _price_grid(game, profile[index].price_per_kwh_micro, n_prices):
            if strict:
                values = []
                for q in quantities:
                    trial = list(profile)
                    trial[index] = Strategy(price, q)
                    values.append(payoff_micro(player, game.clear(trial).trades))
                    clearings += 1
            else:
                trial = list(profile)
                trial[index] = Strategy(price, player.cap_wh)
                values = payoff_by_quantity(game, index, game.clear(trial).trades, quantities)
                clearings += 1
            at = int(np.argmax(values))
            if values[at] > best:
                best = values[at]
                best_strategy = Strategy(price, quantities[at])
        scale = player.cap_wh / 1000.0 * game.span_micro
        gain_rel = (best - base) / scale if scale > 0 else 0.0
        dev = Deviation(player.member, base, best, best_strategy, gain_rel)
        report.per_member.append(dev)
        if gain_rel > report.max_gain_rel:
            report.max_gain_rel = gain_rel
            report.max_gain_micro = dev.gain_micro
            report.member = player.member
            report.deviation = best_strategy
    report.clearings = clearings
    return report
