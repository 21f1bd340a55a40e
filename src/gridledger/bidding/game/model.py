"""The best-response game of one settlement interval: players, strategies, settings, payoffs.

The game
--------
Each member that holds a position plays a strategy ``x = (price, quantity)``:
a limit price in integer micro-tokens per kWh on the grid
``low, low + tick, ..., high`` (default: feed-in to retail tariff, tick 1 micro)
and a quantity ``0 <= q <= cap`` in whole Wh (``cap`` = the forecast position;
``q = 0`` means no order). The bids are cleared by the surplus-ranked pairwise
double auction with per-bus-pair fees (``market.greedy.clear_greedy``,
docs/methods.md). Payoffs, from the member's own trades only:

- seller ``j``: ``U_j = sum_t sigma_t e_t - (a_j Q_j**2 + b_j Q_j)``, with
  ``sigma_t`` the seller price of trade ``t`` (the clearing gives the seller
  ``ask + kappa s``, i.e. the pair's mid price ``p`` minus ``kappa c``);
- buyer ``i``: ``U_i = alpha_i D_i - beta_i D_i**2 / 2 - sum_t pi_t e_t``, with
  ``pi_t`` the buyer price of trade ``t`` (seller price plus the fee ``c``,
  i.e. ``p + (1 - kappa) c``).

``Q_j``, ``D_i`` are the energies traded P2P in kWh; ``a_j = cost_a``,
``b_j = cost_per_kwh``, ``alpha_i = utility_alpha``, ``beta_i = utility_beta``
of :class:`gridledger.members.Member` (tokens per kWh, per interval). This is the
game of docs/best_response.md with ``p_ij`` the pair's mid price: the fee enters
the utilities exactly as the clearing charges it. With ``fees_in_utility=False``
members best-respond as if the fee table were zero (the fee-unaware baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import numpy.typing as npt

from gridledger.errors import GridledgerError
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Bid, ClearingResult, Side, Trade
from gridledger.market.units import MICRO

__all__ = [
    "AT_SCALE",
    "BRSettings",
    "BestResponseError",
    "FloatArray",
    "Game",
    "IntArray",
    "Player",
    "Strategy",
    "payoff_micro",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class BestResponseError(GridledgerError):
    """The best-response game is set up inconsistently (bounds, settings, players)."""


@dataclass(frozen=True, slots=True)
class Player:
    """One member's game parameters for one interval.

    ``lin``/``quad`` (tokens per kWh, per kWh**2): a seller's ``b_j``/``a_j``
    (cost ``a Q**2 + b Q``) or a buyer's ``alpha_i``/``beta_i`` (utility
    ``alpha D - beta D**2 / 2``). ``cap_wh`` bounds the quantity.
    """

    member: int
    bus: int
    side: Side
    cap_wh: int
    lin: float
    quad: float


@dataclass(frozen=True, slots=True)
class Strategy:
    """A bid of the game: limit price (micro-tokens/kWh) and quantity (Wh, 0 = no order)."""

    price_per_kwh_micro: int
    e_wh: int


@dataclass(frozen=True, slots=True)
class BRSettings:
    """Dynamics settings (module docstring).

    ``omega``: damping in (0, 1]; ``epsilon``: a member moves only if its best
    response gains more than ``epsilon`` of its payoff scale (cap kWh x price
    span), and the run has converged after a round in which no member could gain
    more than that (an epsilon-equilibrium on the grid); None (default) = the
    payoff resolution of the price grid, :attr:`Game.tick_gain_rel` (what one
    price tick is worth on the full position); ``refine`` / ``strict_rounds``:
    after converging at ``epsilon``, the profile is refined at each tighter
    tolerance of ``refine`` in turn (default 1e-3, the verified equilibrium of
    issue 15, then 1e-4, an exact equilibrium on the grid), up to
    ``strict_rounds`` rounds each; the first that does not settle ends with a
    round returning to the last settled profile (0 rounds: no refinement);
    ``restart_rounds``: if the first phase has not settled after
    this many rounds, it starts again from the starting profile (the random
    stream goes on; 0: never); ``k_max``: round cap (all phases);
    ``tick_fraction``: price tick as a share of the tariff span (0 = 1 micro);
    ``order``: the sweep order, ``"shuffle"`` (a fresh permutation drawn from
    ``seed`` every round: random-order asynchronous best response), ``"seeded"``
    (one permutation drawn from ``seed``, kept while the dynamics are
    deterministic), ``"member"`` (member order) or ``"aggressive"`` (every round
    buyers by descending bid interleaved with sellers by ascending ask, ties in a
    fresh random order: the most aggressive quotes reply first); ``start``: the starting
    profile, ``"competitive"`` (bus competitive prices, ``bidding.game.start``),
    ``"truthful"`` (limit prices) or ``"warm"`` (each member's last price on the
    same side, in the mechanism). With a deterministic order (``seeded``,
    ``member``) a repeated profile proves a cycle; then ``inertia`` is the
    probability that an improving member keeps its bid during a burst of
    ``burst_rounds`` rounds (0 = stop at the first cycle; None = inertia until
    the end), and ``escape_rounds`` bounds the rounds after the first cycle.
    ``grid_refine``: the members bid on a price grid this many times finer than
    the game's (the tick divided by it; the game's grid is a subset, 1 = the
    game's grid); ``shade_ticks``: a member whose best response would move its
    price further than this many ticks away from the other side (a buyer down,
    a seller up) moves this far only, to the best bid within that step (0 =
    no limit). Convergence is always judged on the unrestricted best response.
    ``pair_ticks``: a member that alternated between two bids over the last
    four rounds, while exactly one other member did too (a two-member cycle),
    replies anticipating the other's best response: among its prices within
    this many ticks of its bid (and three quantities) it takes the best one
    after which its own gain is within the tolerance (0 = off).
    """

    omega: float = 1.0
    epsilon: float | None = None
    refine: tuple[float, ...] = (1e-3, 1e-4)
    strict_rounds: int = 40
    restart_rounds: int = 50
    k_max: int = 100
    tick_fraction: float = 0.01
    fees_in_utility: bool = True
    start: Literal["competitive", "truthful", "warm"] = "competitive"
    order: Literal["shuffle", "seeded", "member", "aggressive"] = "shuffle"
    inertia: float = 0.5
    seed: int = 0
    escape_rounds: int = 100
    burst_rounds: int | None = 5
    grid_refine: int = 1
    shade_ticks: int = 0
    pair_ticks: int = 0

    def __post_init__(self) -> None:
        problem = None
        if not 0 < self.omega <= 1:
            problem = f"omega = {self.omega} must lie in (0, 1]"
        elif self.epsilon is not None and not self.epsilon >= 0:
            problem = f"epsilon = {self.epsilon} must be >= 0 (or None: one tick's worth)"
        elif self.restart_rounds < 0:
            problem = f"restart_rounds = {self.restart_rounds} must be >= 0 (0: never)"
        elif not all(e >= 0 for e in self.refine) or self.strict_rounds < 0:
            problem = (
                f"refine = {self.refine} and strict_rounds = {self.strict_rounds} must be >= 0"
            )
        elif self.k_max < 1:
            problem = f"k_max = {self.k_max} must be >= 1"
        elif not 0 <= self.inertia < 1:
            problem = f"inertia = {self.inertia} must lie in [0, 1)"
        elif self.burst_rounds is not None and self.burst_rounds < 1:
            problem = f"burst_rounds = {self.burst_rounds} must be >= 1 or None"
        elif self.escape_rounds < 0:
            problem = f"escape_rounds = {self.escape_rounds} must be >= 0"
        elif not 0 <= self.tick_fraction <= 1:
            problem = f"tick_fraction = {self.tick_fraction} must lie in [0, 1]"
        elif self.order not in ("shuffle", "seeded", "member", "aggressive"):
            problem = (
                f"order = {self.order!r} must be 'shuffle', 'seeded', 'member' or 'aggressive'"
            )
        elif self.grid_refine < 1 or self.shade_ticks < 0 or self.pair_ticks < 0:
            problem = (
                f"grid_refine = {self.grid_refine} must be >= 1, "
                f"shade_ticks = {self.shade_ticks} and pair_ticks = {self.pair_ticks} >= 0"
            )
        elif self.start not in ("competitive", "truthful", "warm"):
            problem = f"start = {self.start!r} must be 'competitive', 'truthful' or 'warm'"
        if problem is not None:
            message = f"best-response settings: {problem}"
            raise BestResponseError(message)


#: The settings that reach a verified 1e-3 equilibrium at 100-300 members
#: (docs/best_response.md, "Dynamics and stopping"): a 0.2 % bid grid, one tick of shading per
#: reply, aggressive quotes first, two-member cycles answered with anticipation.
AT_SCALE = BRSettings(
    epsilon=1e-3,
    refine=(),
    order="aggressive",
    grid_refine=5,
    shade_ticks=1,
    restart_rounds=0,
    pair_ticks=8,
)


@dataclass(frozen=True)
class Game:
    """Players, fee table (``fees[seller_bus, buyer_bus]``, int64 micro/kWh), kappa, price grid."""

    players: tuple[Player, ...]
    fees: IntArray
    kappa: Fraction
    low_micro: int
    high_micro: int
    tick_micro: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.low_micro <= self.high_micro:
            message = f"price bounds [{self.low_micro}, {self.high_micro}] micro/kWh are invalid"
            raise BestResponseError(message)
        ids = [p.member for p in self.players]
        if len(set(ids)) != len(ids):
            message = f"players: a member appears twice in {sorted(ids)}"
            raise BestResponseError(message)
        max_bus = max((p.bus for p in self.players), default=0)
        if self.fees.ndim != 2 or min(self.fees.shape) <= max_bus:
            message = f"fee table of shape {self.fees.shape} does not cover bus {max_bus}"
            raise BestResponseError(message)

    @property
    def span_micro(self) -> int:
        return max(self.high_micro - self.low_micro, 1)

    @property
    def tick_gain_rel(self) -> float:
        """What one price tick is worth, relative to a payoff scale (cap x span).

        Moving one's own price by a tick moves the trade price by ``kappa`` tick
        (buyer) or ``1 - kappa`` tick (seller), so on the full position the gain is
        at most ``max(kappa, 1 - kappa) x tick / span``: the payoff resolution of
        the price grid.
        """
        share = max(self.kappa, 1 - self.kappa)
        return float(share * self.tick_micro / self.span_micro)

    def epsilon(self, settings: BRSettings) -> float:
        """The equilibrium tolerance of ``settings`` for this game (None: one tick's
        worth, widened by 1e-9 of itself so that float rounding of an exact
        one-tick gain does not count as more)."""
        if settings.epsilon is None:
            return self.tick_gain_rel * (1 + 1e-9)
        return settings.epsilon

    def snap_up(self, price: int) -> int:
        """Smallest grid price >= ``price`` (clipped to the bounds)."""
        k = -((self.low_micro - price) // self.tick_micro)
        return min(max(self.low_micro + k * self.tick_micro, self.low_micro), self.high_top)

    def snap_down(self, price: int) -> int:
        """Largest grid price <= ``price`` (clipped to the bounds)."""
        k = (price - self.low_micro) // self.tick_micro
        return min(max(self.low_micro + k * self.tick_micro, self.low_micro), self.high_top)

    @property
    def high_top(self) -> int:
        """Highest grid price (``high`` rounded down to the tick grid)."""
        return (
            self.low_micro
            + ((self.high_micro - self.low_micro) // self.tick_micro) * self.tick_micro
        )

    def refined(self, factor: int) -> Game:
        """The same game on a price grid ``factor`` times finer (it contains this
        game's grid: the tick must be a multiple of ``factor``)."""
        if factor == 1:
            return self
        if factor < 1 or self.tick_micro % factor:
            message = f"tick {self.tick_micro} micro cannot be divided into {factor} ticks"
            raise BestResponseError(message)
        return Game(
            self.players,
            self.fees,
            self.kappa,
            self.low_micro,
            self.high_micro,
            self.tick_micro // factor,
        )

    def with_fees(self, fees: IntArray) -> Game:
        return Game(
            self.players, fees, self.kappa, self.low_micro, self.high_micro, self.tick_micro
        )

    def bids(self, profile: Sequence[Strategy]) -> list[Bid]:
        """The orders of a strategy profile (zero quantities omitted)."""
        return [
            Bid(p.member, p.side, s.e_wh, s.price_per_kwh_micro, p.bus)
            for p, s in zip(self.players, profile, strict=True)
            if s.e_wh > 0
        ]

    def clear(self, profile: Sequence[Strategy]) -> ClearingResult:
        """Clear a profile with the reference rule (``clear_greedy``)."""
        return clear_greedy(self.bids(profile), self.fees, self.kappa)


# ---------------------------------------------------------------------------
# payoffs


def _value_micro(player: Player, e_wh: float) -> float:
    """Utility (buyer) or minus cost (seller) of ``e_wh`` in micro-tokens."""
    e_kwh = e_wh / 1000.0
    if player.side == Side.BUY:
        return MICRO * (player.lin * e_kwh - 0.5 * player.quad * e_kwh * e_kwh)
    return -MICRO * (player.quad * e_kwh * e_kwh + player.lin * e_kwh)


def payoff_micro(player: Player, trades: Sequence[Trade]) -> float:
    """``player``'s payoff (micro-tokens, float) from the cleared ``trades``."""
    energy = 0
    money = 0.0
    for t in trades:
        if player.side == Side.BUY and t.buyer == player.member:
            energy += t.e_wh
            money -= t.e_wh * t.buyer_price_per_kwh_micro / 1000.0
        elif player.side == Side.SELL and t.seller == player.member:
            energy += t.e_wh
            money += t.e_wh * t.seller_price_per_kwh_micro / 1000.0
    return _value_micro(player, energy) + money
