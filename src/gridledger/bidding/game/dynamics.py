"""Best-response dynamics of the non-cooperative bidding game (METHODS.md section 5).

The game (one settlement interval)
----------------------------------
Each member that holds a position plays a strategy ``x = (price, quantity)``:
a limit price in integer micro-tokens per kWh on the grid
``low, low + tick, ..., high`` (default: feed-in to retail tariff, tick 1 micro)
and a quantity ``0 <= q <= cap`` in whole Wh (``cap`` = the forecast position;
``q = 0`` means no order). The bids are cleared by the surplus-ranked pairwise
double auction with per-bus-pair fees (``market.greedy.clear_greedy``, METHODS.md
section 3). Payoffs, from the member's own trades only:

- seller ``j``: ``U_j = sum_t sigma_t e_t - (a_j Q_j**2 + b_j Q_j)``, with
  ``sigma_t`` the seller price of trade ``t`` (the clearing gives the seller
  ``ask + kappa s``, i.e. the pair's mid price ``p`` minus ``kappa c``);
- buyer ``i``: ``U_i = alpha_i D_i - beta_i D_i**2 / 2 - sum_t pi_t e_t``, with
  ``pi_t`` the buyer price of trade ``t`` (seller price plus the fee ``c``,
  i.e. ``p + (1 - kappa) c``).

``Q_j``, ``D_i`` are the energies traded P2P in kWh; ``a_j = cost_a``,
``b_j = cost_per_kwh``, ``alpha_i = utility_alpha``, ``beta_i = utility_beta``
of :class:`gridledger.members.Member` (tokens per kWh, per interval). This is
METHODS.md section 5 with ``p_ij`` the pair's mid price: the fee enters the
utilities exactly as the clearing charges it. With ``fees_in_utility=False``
members best-respond as if the fee table were zero (the fee-unaware baseline).

Exact best response
-------------------
The clearing outcome depends only on how each candidate pair ranks against the
pairs that share a member with it (greedy b-matching: the quantity of a pair is
``min`` of both members' residuals after their higher-ranked pairs). Moving
member ``i``'s price shifts all of ``i``'s pair surpluses equally, so ``i``'s
allocation can only change where one of its pairs (a) appears (surplus reaches
1 micro) or (b) crosses a pair of another member with the same counterpart
(tie-breaks included: fee, then member ids). Between two such breakpoints the
allocation is fixed and the price paid/received is monotone in ``i``'s own
price, so a buyer's best price in a segment is its lowest, a seller's its
highest grid price. The best response enumerates these O(n m) breakpoints
(snapped to the tick grid), clears the market once per breakpoint with a
numba kernel equivalent to ``clear_greedy`` (property-tested against it), and
picks the quantity exactly: ``i``'s trades with quantity ``q`` are the first
``q`` Wh of its trades at full cap (the greedy run is identical until ``i`` is
exhausted) and marginal prices are monotone along them, so the optimum is
where marginal utility (cost) meets the marginal price, in whole Wh.
The result is the exact best response on the tick grid x whole Wh.

Dynamics
--------
Asynchronous sweeps: in each round every member in turn replies to the others'
latest bids, by default in a fresh permutation drawn from ``seed`` every round
(random-order best response); optional damping ``x <- (1 - omega) x_old + omega
BR`` (rounded to the grid). Satisficing: a member moves only if its best
response gains more than the tolerance (a share of its payoff scale) and keeps
its bid on ties. Converged = a round in which no member could gain more than the
tolerance: the profile did not change during that round, so it is an
epsilon-equilibrium on the grid (the reply is exact), which
``nash.check_equilibrium`` verifies independently. Two phases: rounds at the
tolerance ``epsilon`` (default: what one price tick is worth on the full
position, :attr:`Game.tick_gain_rel`) until a round is quiet; then up to
``strict_rounds`` rounds refining at ``strict_epsilon`` (1e-4: an exact
equilibrium on the grid). If the refinement does not settle, a last round
returns every member to the first phase's equilibrium. The run reports the
tolerance its final profile meets.

Why relax. The game has Edgeworth-type dynamics (discriminatory kappa-split
prices: every member wants the thinnest positive margin; buyers over-bid each
other by a tick for a scarce seller and fall back when the price passes their
alternative; a seller raises its ask while its buyers lower their bids one tick
at a time), and below one tick's worth some intervals never settle. One tick's
worth is the payoff resolution of the grid (docs/best_response.md).

Cycles. With a fixed order (``order = "seeded"`` or ``"member"``) and nobody
randomising, the dynamics are a deterministic map of the profile, so a repeated
end-of-round profile proves a cycle: it is recorded (``cycle_round``,
``cycle_period``). Then either the run stops (``inertia = 0``) or it continues
with a burst of ``burst_rounds`` rounds of best response with inertia (each
improving member keeps its bid with probability ``inertia``, fresh seeded order
each round), which leaves such cycles with positive probability (Young 1993,
weakly acyclic games); then the dynamics are deterministic again in a fresh
seeded order, with cycle detection restarted, and every further detected cycle
triggers another burst, for at most ``escape_rounds`` rounds after the first
cycle (``burst_rounds = None``: stay in the inertia phase). Non-convergence (cap,
or escape budget spent) is reported with the members still moving and logged;
never hidden.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

import numba
import numpy as np
import numpy.typing as npt

from gridledger.errors import GridledgerError
from gridledger.market.greedy import clear_greedy, kappa_fraction
from gridledger.market.orders import Bid, ClearingResult, Side, Trade
from gridledger.market.units import MICRO, price_to_micro
from gridledger.members.member import Member

if TYPE_CHECKING:
    from gridledger.bidding.mechanism import Position

__all__ = [
    "BRDiagnostics",
    "BRSettings",
    "BestResponse",
    "BestResponseError",
    "BestResponseMechanism",
    "DynamicsResult",
    "Game",
    "Player",
    "Strategy",
    "best_response",
    "payoff_micro",
    "players_from_positions",
    "run_dynamics",
]

log = logging.getLogger(__name__)

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
    price tick is worth on the full position); ``strict_epsilon`` /
    ``strict_rounds``: after converging at ``epsilon``, up to ``strict_rounds``
    rounds refine the profile at the tighter tolerance ``strict_epsilon`` (an
    exact equilibrium on the grid, METHODS.md's 1e-4); if they do not settle, a
    last round returns to the ``epsilon``-equilibrium (0 rounds: no
    refinement); ``restart_rounds``: if the first phase has not settled after
    this many rounds, it starts again from the starting profile (the random
    stream goes on; 0: never); ``k_max``: round cap (all phases);
    ``tick_fraction``: price tick as a share of the tariff span (0 = 1 micro);
    ``order``: the sweep order, ``"shuffle"`` (a fresh permutation drawn from
    ``seed`` every round: random-order asynchronous best response), ``"seeded"``
    (one permutation drawn from ``seed``, kept while the dynamics are
    deterministic) or ``"member"`` (member order); ``start``: the starting
    profile, ``"competitive"`` (bus competitive prices, ``bidding.br_start``),
    ``"truthful"`` (limit prices) or ``"warm"`` (each member's last price on the
    same side, in the mechanism). With a deterministic order (``seeded``,
    ``member``) a repeated profile proves a cycle; then ``inertia`` is the
    probability that an improving member keeps its bid during a burst of
    ``burst_rounds`` rounds (0 = stop at the first cycle; None = inertia until
    the end), and ``escape_rounds`` bounds the rounds after the first cycle.
    """

    omega: float = 1.0
    epsilon: float | None = None
    strict_epsilon: float = 1e-4
    strict_rounds: int = 40
    restart_rounds: int = 50
    k_max: int = 100
    tick_fraction: float = 0.01
    fees_in_utility: bool = True
    start: Literal["competitive", "truthful", "warm"] = "competitive"
    order: Literal["shuffle", "seeded", "member"] = "shuffle"
    inertia: float = 0.5
    seed: int = 0
    escape_rounds: int = 100
    burst_rounds: int | None = 5

    def __post_init__(self) -> None:
        problem = None
        if not 0 < self.omega <= 1:
            problem = f"omega = {self.omega} must lie in (0, 1]"
        elif self.epsilon is not None and not self.epsilon >= 0:
            problem = f"epsilon = {self.epsilon} must be >= 0 (or None: one tick's worth)"
        elif self.restart_rounds < 0:
            problem = f"restart_rounds = {self.restart_rounds} must be >= 0 (0: never)"
        elif not self.strict_epsilon >= 0 or self.strict_rounds < 0:
            problem = (
                f"strict_epsilon = {self.strict_epsilon} and strict_rounds = "
                f"{self.strict_rounds} must be >= 0"
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
        elif self.order not in ("shuffle", "seeded", "member"):
            problem = f"order = {self.order!r} must be 'shuffle', 'seeded' or 'member'"
        elif self.start not in ("competitive", "truthful", "warm"):
            problem = f"start = {self.start!r} must be 'competitive', 'truthful' or 'warm'"
        if problem is not None:
            message = f"best-response settings: {problem}"
            raise BestResponseError(message)


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


@dataclass(frozen=True, slots=True)
class BestResponse:
    """A member's best response, its payoff (micro-tokens) and the prices it tried."""

    strategy: Strategy
    payoff_micro: float
    current_payoff_micro: float
    candidates: int


@dataclass
class DynamicsResult:
    """Strategy profile after each round (``profiles[0]`` = start), and the verdict."""

    profiles: list[list[Strategy]]
    converged: bool
    max_change: list[float]
    runtime_s: float
    max_gain: list[float] = field(default_factory=list)
    """Largest relative best-response gain of any member, per round."""
    cycle_round: int | None = None
    """Round after which a profile repeated in the deterministic phase (None: no cycle)."""
    cycle_period: int | None = None
    cycles: int = 0
    """Number of cycles detected (each ends a deterministic phase)."""
    revisits: int = 0
    """Shuffled order: end-of-round profiles that had been seen before."""
    moving: tuple[int, ...] = ()
    """Not converged: the members that still changed their bids in the last round."""
    epsilon: float = 0.0
    """The tolerance the final profile meets (relative to each member's payoff scale)."""
    fallback: bool = False
    """The strict refinement did not settle and the last round returned to the
    equilibrium of the first phase."""
    restarts: int = 0
    """Times the first phase started again from the starting profile."""

    @property
    def rounds(self) -> int:
        return len(self.profiles) - 1

    @property
    def final(self) -> list[Strategy]:
        return self.profiles[-1]


@dataclass
class BRDiagnostics:
    """Per-interval record of :class:`BestResponseMechanism` (read by the lead/report)."""

    interval: int
    players: int
    rounds: int
    converged: bool
    max_change: float
    runtime_s: float
    cycle_round: int | None = None
    """Round after which the deterministic phase repeated a profile (None: no cycle)."""
    cycle_period: int | None = None
    cycles: int = 0
    """Cycles detected in the interval (each followed by an inertia burst)."""
    max_gain_rel: float = 0.0
    """Largest best-response gain (share of the payoff scale) in the last round."""
    moving: int = 0
    """Not converged: members that still changed their bids in the last round."""
    epsilon: float = 0.0
    """Equilibrium tolerance used (relative to each member's payoff scale)."""
    restarts: int = 0
    """Times the first phase started again from the starting profile."""
    fallback: bool = False
    """The exact refinement did not settle; the last round returned to the first
    phase's equilibrium."""
    nash_checked: bool = False
    nash_max_gain_rel: float | None = None
    nash_max_gain_tokens: float | None = None
    nash_member: int | None = None
    nash_is_equilibrium: bool | None = None
    rule_matches: bool | None = None


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


# ---------------------------------------------------------------------------
# numba kernel: player i's trades for candidate prices, exact greedy order


@numba.njit(cache=True)
def _better(s1: int, f1: int, b1: int, j1: int, s2: int, f2: int, b2: int, j2: int) -> bool:
    """Pair key 1 ranks above pair key 2 (surplus desc, fee asc, buyer id, seller id)."""
    if s1 != s2:
        return s1 > s2
    if f1 != f2:
        return f1 < f2
    if b1 != b2:
        return b1 < b2
    return j1 < j2


@numba.njit(cache=True)
def _best_quantity(
    e: IntArray, price: IntArray, n: int, cap: int, is_buyer: bool, lin: float, quad: float
) -> tuple[int, float]:
    """Best prefix quantity (Wh) of ``n`` trades and its payoff (micro-tokens).

    Marginal prices are monotone along the trades and the value is concave, so
    the optimum lies where marginal value meets marginal price; whole Wh are
    checked either side.
    """
    best_q = 0
    best_u = 0.0
    done = 0
    money = 0.0  # paid (buyer) or received (seller), micro-tokens
    for t in range(n):
        x = min(e[t], cap - done)
        if x <= 0:
            break
        pr = price[t] / 1000.0  # micro per Wh
        # continuous optimum within [done, done + x]; value'(w) in micro per Wh
        if is_buyer:
            # d/dw [lin*w/1000 - quad/2 (w/1000)^2] * 1e6 = 1000 lin - quad w
            if quad > 0:
                w_star = (1000.0 * lin - pr) / quad * 1.0
            else:
                w_star = 1e300 if 1000.0 * lin > pr else -1e300
        else:
            # received pr per Wh; cost'(w) = (2 quad w/1000 + lin) * 1000 micro per Wh
            if quad > 0:
                w_star = (pr - 1000.0 * lin) / (2.0 * quad)
            else:
                w_star = 1e300 if pr > 1000.0 * lin else -1e300
        lo = float(done)
        hi = float(done + x)
        w_c = min(max(w_star, lo), hi)
        for w_try in (math.floor(w_c), math.ceil(w_c)):
            w = int(min(max(w_try, done), done + x))
            d = w - done
            kwh = w / 1000.0
            if is_buyer:
                u = 1e6 * (lin * kwh - 0.5 * quad * kwh * kwh) - (money + d * pr)
            else:
                u = (money + d * pr) - 1e6 * (quad * kwh * kwh + lin * kwh)
            if u > best_u:
                best_u = u
                best_q = w
        money += x * pr
        done += x
    return best_q, best_u


@numba.njit(cache=True)
def _prefix_payoff(
    e: IntArray, price: IntArray, n: int, q: int, is_buyer: bool, lin: float, quad: float
) -> float:
    """Payoff (micro-tokens) of the first ``q`` Wh of ``n`` trades."""
    done = 0
    money = 0.0
    for t in range(n):
        x = min(e[t], q - done)
        if x <= 0:
            break
        money += x * price[t] / 1000.0
        done += x
    kwh = done / 1000.0
    if is_buyer:
        return 1e6 * (lin * kwh - 0.5 * quad * kwh * kwh) - money
    return money - 1e6 * (quad * kwh * kwh + lin * kwh)


@numba.njit(cache=True)
def _evaluate_candidates(
    cand: IntArray,
    is_buyer: bool,
    my_id: int,
    my_cap: int,
    lin: float,
    quad: float,
    # my pairs, sorted by rank (independent of my price): counterpart index, base, fee, id
    m_idx: IntArray,
    m_base: IntArray,
    m_fee: IntArray,
    m_cid: IntArray,
    # others' pairs sorted by rank: buyer idx, seller idx, surplus, fee, buyer id, seller id
    o_b: IntArray,
    o_s: IntArray,
    o_sur: IntArray,
    o_fee: IntArray,
    o_bid: IntArray,
    o_sid: IntArray,
    b_cap: IntArray,
    s_cap: IntArray,
    c_price: IntArray,
    num: int,
    den: int,
    cur_c: int,
    cur_q: int,
) -> tuple[IntArray, FloatArray, float]:
    """For each candidate price: my best quantity and payoff under the greedy rule.

    For a buyer my pair surplus with seller l is ``price - m_base[l]`` (base =
    ask + fee); for a seller with buyer k it is ``m_base[k] - price`` (base =
    bid - fee). ``c_price`` holds the counterparts' limit prices.
    """
    n_c = cand.shape[0]
    n_m = m_idx.shape[0]
    n_o = o_b.shape[0]
    out_q = np.zeros(n_c, dtype=np.int64)
    out_u = np.zeros(n_c, dtype=np.float64)
    e_buf = np.zeros(n_m, dtype=np.int64)
    p_buf = np.zeros(n_m, dtype=np.int64)
    u_cur = 0.0
    for c in range(n_c):
        p = cand[c]
        b_rem = b_cap.copy()
        s_rem = s_cap.copy()
        rem = my_cap
        n_tr = 0
        o = 0
        m = 0
        while m < n_m and rem > 0:
            ms = p - m_base[m] if is_buyer else m_base[m] - p
            if ms < 1:
                break  # pairs are in rank order: no later pair of mine has surplus
            if is_buyer:
                mb, mj = my_id, m_cid[m]
            else:
                mb, mj = m_cid[m], my_id
            if o < n_o and _better(o_sur[o], o_fee[o], o_bid[o], o_sid[o], ms, m_fee[m], mb, mj):
                k = o_b[o]
                j = o_s[o]
                x = min(b_rem[k], s_rem[j])
                if x > 0:
                    b_rem[k] -= x
                    s_rem[j] -= x
                o += 1
                continue
            k = m_idx[m]
            if is_buyer:
                x = min(rem, s_rem[k])
                if x > 0:
                    s_rem[k] -= x
                    seller_price = c_price[k] + (ms * num) // den
                    e_buf[n_tr] = x
                    p_buf[n_tr] = seller_price + m_fee[m]
                    n_tr += 1
                    rem -= x
            else:
                x = min(rem, b_rem[k])
                if x > 0:
                    b_rem[k] -= x
                    e_buf[n_tr] = x
                    p_buf[n_tr] = p + (ms * num) // den
                    n_tr += 1
                    rem -= x
            m += 1
        q, u = _best_quantity(e_buf, p_buf, n_tr, my_cap, is_buyer, lin, quad)
        out_q[c] = q
        out_u[c] = u
        if c == cur_c:
            u_cur = _prefix_payoff(e_buf, p_buf, n_tr, cur_q, is_buyer, lin, quad)
    return out_q, out_u, u_cur


# ---------------------------------------------------------------------------
# best response


def _book(game: Game, profile: Sequence[Strategy], skip: int) -> tuple[IntArray, ...]:
    """Others' orders split by side: (member id, price, cap, bus) per side."""
    rows_b: list[tuple[int, int, int, int]] = []
    rows_s: list[tuple[int, int, int, int]] = []
    for index, (pl, st) in enumerate(zip(game.players, profile, strict=True)):
        if index == skip or st.e_wh <= 0:
            continue
        row = (pl.member, st.price_per_kwh_micro, st.e_wh, pl.bus)
        (rows_b if pl.side == Side.BUY else rows_s).append(row)
    b = np.array(rows_b, dtype=np.int64).reshape(-1, 4)
    s = np.array(rows_s, dtype=np.int64).reshape(-1, 4)
    return b[:, 0], b[:, 1], b[:, 2], b[:, 3], s[:, 0], s[:, 1], s[:, 2], s[:, 3]


def _snap_all(game: Game, prices: IntArray, *, up: bool) -> IntArray:
    """Vectorised :meth:`Game.snap_up` / :meth:`Game.snap_down`."""
    tick = game.tick_micro
    offset = prices.astype(np.int64) - game.low_micro
    steps = -((-offset) // tick) if up else offset // tick
    snapped = game.low_micro + steps * tick
    return np.clip(snapped, game.low_micro, game.high_top)


def best_response(
    game: Game, index: int, profile: Sequence[Strategy], fees: IntArray | None = None
) -> BestResponse:
    """Exact best response of player ``index`` to ``profile`` (see module docstring).

    ``fees`` overrides the game's fee table for the member's model of the market
    (e.g. zeros for a fee-unaware member).
    """
    fee_tab = game.fees if fees is None else fees
    me = game.players[index]
    current = profile[index]
    bid_id, bid_p, bid_cap, bid_bus, ask_id, ask_p, ask_cap, ask_bus = _book(game, profile, index)
    # others' pairs, ranked like clear_greedy
    fee_o = fee_tab[ask_bus[None, :], bid_bus[:, None]]  # (nb, ns)
    sur_o = bid_p[:, None] - ask_p[None, :] - fee_o
    kb, js = np.nonzero(sur_o >= 1)
    o_sur = sur_o[kb, js]
    o_fee = fee_o[kb, js]
    order = np.lexsort((ask_id[js], bid_id[kb], o_fee, -o_sur))
    kb, js, o_sur, o_fee = kb[order], js[order], o_sur[order], o_fee[order]
    is_buyer = me.side == Side.BUY
    if is_buyer:
        m_fee = fee_tab[ask_bus, me.bus]
        m_base = ask_p + m_fee  # my surplus = price - base
        m_cid = ask_id
        m_order = np.lexsort((m_cid, m_fee, m_base))
        # breakpoints: pair appears; I overtake buyer k at seller j
        entry = m_base + 1
        c_mine = fee_tab[ask_bus[js], me.bus]
        t = bid_p[kb] - o_fee + c_mine
        wins = (c_mine < o_fee) | ((c_mine == o_fee) & (me.member < bid_id[kb]))
        cross = t + np.where(wins, 0, 1)
        raw = np.concatenate([entry, cross, [game.low_micro, current.price_per_kwh_micro]])
        snapped = _snap_all(game, raw, up=True)
        c_price = ask_p
    else:
        m_fee = fee_tab[me.bus, bid_bus]
        m_base = bid_p - m_fee  # my surplus = base - price
        m_cid = bid_id
        m_order = np.lexsort((m_cid, m_fee, -m_base))
        entry = m_base - 1
        c_mine = fee_tab[me.bus, bid_bus[kb]]
        t = ask_p[js] + o_fee - c_mine
        wins = (c_mine < o_fee) | ((c_mine == o_fee) & (me.member < ask_id[js]))
        cross = t - np.where(wins, 0, 1)
        raw = np.concatenate([entry, cross, [game.high_micro, current.price_per_kwh_micro]])
        snapped = _snap_all(game, raw, up=False)
        c_price = bid_p
    cur_price = current.price_per_kwh_micro
    cand = np.unique(np.append(snapped, np.int64(cur_price)))
    at_current = int(np.searchsorted(cand, cur_price))
    lin = me.lin
    quad = me.quad
    q, u, u_cur = _evaluate_candidates(
        cand,
        is_buyer,
        me.member,
        me.cap_wh,
        float(lin),
        float(quad),
        np.ascontiguousarray(m_order, dtype=np.int64),
        np.ascontiguousarray(m_base[m_order], dtype=np.int64),
        np.ascontiguousarray(m_fee[m_order], dtype=np.int64),
        np.ascontiguousarray(m_cid[m_order], dtype=np.int64),
        np.ascontiguousarray(kb, dtype=np.int64),
        np.ascontiguousarray(js, dtype=np.int64),
        np.ascontiguousarray(o_sur, dtype=np.int64),
        np.ascontiguousarray(o_fee, dtype=np.int64),
        np.ascontiguousarray(bid_id[kb], dtype=np.int64),
        np.ascontiguousarray(ask_id[js], dtype=np.int64),
        np.ascontiguousarray(bid_cap, dtype=np.int64),
        np.ascontiguousarray(ask_cap, dtype=np.int64),
        np.ascontiguousarray(c_price, dtype=np.int64),
        game.kappa.numerator,
        game.kappa.denominator,
        at_current,
        current.e_wh,
    )
    top = float(u.max())
    tol = 1e-9 * max(1.0, abs(top))
    if top <= u_cur + tol:  # the current bid is a best response: no change
        return BestResponse(current, u_cur, u_cur, len(cand))
    # among equal payoffs prefer the price closest to the current one
    ties = np.flatnonzero(u >= top - tol)
    best = int(ties[np.argmin(np.abs(cand[ties] - cur_price))])
    return BestResponse(Strategy(int(cand[best]), int(q[best])), float(u[best]), u_cur, len(cand))


# ---------------------------------------------------------------------------
# dynamics


def _relative_change(game: Game, old: Strategy, new: Strategy, cap_wh: int) -> float:
    dp = abs(new.price_per_kwh_micro - old.price_per_kwh_micro) / game.span_micro
    dq = abs(new.e_wh - old.e_wh) / max(cap_wh, 1)
    return max(dp, dq)


def _scale(game: Game, player: Player) -> float:
    """Payoff scale of a player (micro-tokens): its cap in kWh times the price span."""
    return max(player.cap_wh / 1000.0 * game.span_micro, 1e-9)


def _damp(game: Game, old: Strategy, br: Strategy, omega: float, cap_wh: int) -> Strategy:
    """Move ``omega`` of the way to ``br``, at least one tick / one Wh (so that a
    fixed point of the damped map is a best response), rounded to the grid."""
    if omega >= 1.0:
        return br

    def step(old_v: int, new_v: int, unit: int) -> int:
        gap = new_v - old_v
        if gap == 0:
            return old_v
        move = max(unit, round(omega * abs(gap) / unit) * unit)
        return old_v + min(move, abs(gap)) * (1 if gap > 0 else -1)

    p = step(old.price_per_kwh_micro, br.price_per_kwh_micro, game.tick_micro)
    q = step(old.e_wh, br.e_wh, 1)
    return Strategy(p, min(max(q, 0), cap_wh))


def _profile_key(profile: Sequence[Strategy]) -> bytes:
    """Exact fingerprint of a profile (for cycle detection)."""
    flat = [v for st in profile for v in (st.price_per_kwh_micro, st.e_wh)]
    return np.asarray(flat, dtype=np.int64).tobytes()


class _Dynamics:
    """State of one run of the dynamics: the profile, the record, the random stream."""

    def __init__(
        self,
        game: Game,
        initial: Sequence[Strategy],
        settings: BRSettings,
        on_round: Callable[[int, list[Strategy]], None] | None,
    ) -> None:
        if len(initial) != len(game.players):
            message = (
                f"initial profile has {len(initial)} strategies for {len(game.players)} players"
            )
            raise BestResponseError(message)
        self.game = game
        self.settings = settings
        self.on_round = on_round
        self.model_fees = game.fees if settings.fees_in_utility else np.zeros_like(game.fees)
        self.profile = list(initial)
        self.profiles = [list(initial)]
        self.changes: list[float] = []
        self.gains: list[float] = []
        self.rng = np.random.default_rng(settings.seed)
        self.order = list(range(len(game.players)))
        if settings.order != "member":
            self.rng.shuffle(self.order)
        self.cycle_round: int | None = None
        self.cycle_period: int | None = None
        self.cycles = 0
        self.revisits = 0
        self.moved: list[int] = []

    @property
    def rounds(self) -> int:
        return len(self.profiles) - 1

    def _record(self, change: float, gain: float) -> None:
        self.profiles.append(list(self.profile))
        self.changes.append(change)
        self.gains.append(gain)
        if self.on_round is not None:
            self.on_round(self.rounds - 1, list(self.profile))

    def _sweep(self, epsilon: float, inertia: float) -> tuple[float, float]:
        """One round; returns the largest change a reply asked for and the largest gain."""
        game, settings = self.game, self.settings
        change = 0.0
        gain_max = 0.0
        self.moved = []
        for index in self.order:
            player = game.players[index]
            old = self.profile[index]
            reply = best_response(game, index, self.profile, self.model_fees)
            gain = (reply.payoff_micro - reply.current_payoff_micro) / _scale(game, player)
            gain_max = max(gain_max, gain)
            if gain <= epsilon:
                continue  # epsilon-best response already: keep the bid
            new = _damp(game, old, reply.strategy, settings.omega, player.cap_wh)
            change = max(change, _relative_change(game, old, new, player.cap_wh))
            if inertia > 0 and self.rng.random() < inertia:
                continue
            self.profile[index] = new
            self.moved.append(player.member)
        return change, gain_max

    def phase(self, epsilon: float, budget: int) -> bool:
        """Up to ``budget`` rounds at tolerance ``epsilon``; True if a round was quiet."""
        settings = self.settings
        shuffle = settings.order == "shuffle"
        seen: dict[bytes, int] = {_profile_key(self.profile): self.rounds}
        first_cycle: int | None = None
        inertia = 0.0
        burst_start = 0
        for _ in range(budget):
            if self.rounds > 0 and (shuffle or (inertia > 0 and settings.order == "seeded")):
                self.rng.shuffle(self.order)
            change, gain = self._sweep(epsilon, inertia)
            self._record(change, gain)
            if gain <= epsilon:
                return True
            key = _profile_key(self.profile)
            k = self.rounds
            if shuffle:
                self.revisits += key in seen
                seen.setdefault(key, k)
                continue
            if first_cycle is not None and k - first_cycle >= settings.escape_rounds:
                return False  # the phase after the first cycle did not settle
            if inertia > 0:
                if settings.burst_rounds is not None and k - burst_start >= settings.burst_rounds:
                    # burst over: deterministic again in a fresh order, new cycle detection
                    inertia = 0.0
                    if settings.order == "seeded":
                        self.rng.shuffle(self.order)
                    seen = {key: k}
                continue
            if key not in seen:
                seen[key] = k
                continue
            self.cycles += 1
            period = k - seen[key]
            if first_cycle is None:
                first_cycle = k
            if self.cycle_round is None:
                self.cycle_round, self.cycle_period = k, period
            log.info("best-response cycle of period %d detected after round %d", period, k)
            if settings.inertia <= 0:
                return False  # deterministic: it would repeat until the cap
            inertia = settings.inertia
            burst_start = k
        return False

    def fall_back(self, anchor: list[Strategy], gain: float) -> None:
        """Record one round in which every member returns to ``anchor``."""
        change = max(
            _relative_change(self.game, old, new, pl.cap_wh)
            for old, new, pl in zip(self.profile, anchor, self.game.players, strict=True)
        )
        self.profile = list(anchor)
        self.moved = []
        self._record(change, gain)


def run_dynamics(
    game: Game,
    initial: Sequence[Strategy],
    settings: BRSettings | None = None,
    *,
    on_round: Callable[[int, list[Strategy]], None] | None = None,
) -> DynamicsResult:
    """Asynchronous best-response rounds from ``initial`` (see module docstring).

    1. Rounds at the tolerance ``epsilon`` (default one tick's worth) until a
       round is quiet or ``k_max`` rounds are used; every ``restart_rounds``
       rounds without a quiet one it starts again from ``initial``.
    2. If that profile is not already within ``strict_epsilon``: up to
       ``strict_rounds`` more rounds at ``strict_epsilon`` (within the cap, one
       round kept in reserve). If they settle, the run ends at an equilibrium
       within ``strict_epsilon``; else a last round returns every member to the
       profile of step 1 (``fallback``), which is within ``epsilon``.

    ``order = "shuffle"``: every round sweeps the members in a fresh permutation
    drawn from ``settings.seed``; end-of-round profiles seen before are counted
    (``revisits``) but prove nothing. Deterministic orders (``"seeded"``,
    ``"member"``): a repeated end-of-round profile proves a cycle; it is recorded
    (``cycle_round``, ``cycle_period``) and, if ``settings.inertia > 0``, followed
    by an inertia burst and a fresh order.
    """
    settings = settings or BRSettings()
    started = time.perf_counter()
    relaxed = game.epsilon(settings)
    strict = min(settings.strict_epsilon, relaxed)
    run = _Dynamics(game, initial, settings, on_round)
    span = settings.restart_rounds or settings.k_max
    converged = run.phase(relaxed, min(span, settings.k_max))
    restarts = 0
    while not converged and settings.restart_rounds > 0 and run.rounds < settings.k_max:
        # trapped away from any equilibrium: start again from the starting profile
        # (the random stream goes on, so the path differs)
        restarts += 1
        run.profile = list(initial)
        log.info("best response: restart %d after round %d", restarts, run.rounds)
        converged = run.phase(relaxed, min(span, settings.k_max - run.rounds))
    epsilon = relaxed
    fallback = False
    if converged and run.gains[-1] <= strict:
        epsilon = strict
    elif converged and settings.strict_rounds > 0:
        budget = min(settings.strict_rounds, settings.k_max - run.rounds - 1)
        if budget > 0:
            anchor, anchor_gain = list(run.profile), run.gains[-1]
            if run.phase(strict, budget):
                epsilon = strict
            else:
                run.fall_back(anchor, anchor_gain)
                fallback = True
    runtime = time.perf_counter() - started
    if not converged:
        log.warning(
            "best response did not converge in %d rounds (largest gain %.3g > %.3g; "
            "%d member(s) still moving%s)",
            run.rounds,
            run.gains[-1] if run.gains else float("nan"),
            relaxed,
            len(run.moved),
            f"; {run.cycles} cycle(s), first of period {run.cycle_period} after round "
            f"{run.cycle_round}"
            if run.cycle_round is not None
            else "",
        )
    return DynamicsResult(
        run.profiles,
        converged,
        run.changes,
        runtime,
        run.gains,
        run.cycle_round,
        run.cycle_period,
        run.cycles,
        run.revisits,
        tuple(sorted(run.moved)) if not converged else (),
        epsilon,
        fallback,
        restarts,
    )


# ---------------------------------------------------------------------------
# mechanism


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
        """The starting profile of ``settings.start`` (``bidding.br_start``); "warm"
        starts from each member's last price on the same side, else its limit."""
        from gridledger.bidding.game.start import start_profile

        del positions  # the players carry the positions' members, sides and caps
        model_fees = game.fees if self.settings.fees_in_utility else np.zeros_like(game.fees)
        last = [self.last_price.get((pl.member, int(pl.side))) for pl in game.players]
        return start_profile(game, self.settings.start, model_fees, last)

    def run_rounds(
        self,
        interval: int,
        positions: Sequence[Position],
        clear: Callable[[Sequence[Bid]], ClearingResult],
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
            from gridledger.bidding.game.nash import check_equilibrium

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
