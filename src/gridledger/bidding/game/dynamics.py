"""Best-response dynamics of the non-cooperative bidding game (docs/best_response.md).

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
``strict_rounds`` rounds refining at each tolerance of ``refine`` in turn
(1e-3, the verified equilibrium of the issue, then 1e-4: an exact equilibrium
on the grid). If a refinement does not settle, a last round returns every
member to the last settled profile. The run reports the tolerance its final
profile meets.

Why relax. The game has Edgeworth-type dynamics (discriminatory kappa-split
prices: every member wants the thinnest positive margin; buyers over-bid each
other by a tick for a scarce seller and fall back when the price passes their
alternative; a seller raises its ask while its buyers lower their bids one tick
at a time), and below one tick's worth some intervals never settle. One tick's
worth is the payoff resolution of the grid (docs/best_response.md).

Reaching 1e-3 at scale (issue 15; ``grid_refine``, ``shade_ticks``, ``order =
"aggressive"``). The tolerance can only be met reliably on a grid whose tick is
worth no more than it, so with ``grid_refine`` the members bid on a grid that
many times finer than the game's (which it contains; 5 on the 1 % grid: one
tick's worth = 1e-3). A reply that would move the price more than
``shade_ticks`` ticks away from the other side (a buyer's bid down, a seller's
ask up) moves it that far only, with the best response's quantity: prices
descend one tick per round, like a clock, instead of collapsing together and
climbing back (the cycles below); a raise is never capped. The sweep order
``"aggressive"`` lets the most aggressive quotes reply first (docs/best_response.md).
With ``pair_ticks``, a member caught in a two-member cycle (both alternating
between two bids over the last four rounds, nobody else) replies anticipating
the other's best response: the best bid near its own after which its gain is
within the tolerance (``_Dynamics._pair_reply``).

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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gridledger.bidding.game.book import RankedBook
from gridledger.bidding.game.model import BestResponseError, BRSettings, Game, Player, Strategy
from gridledger.bidding.game.response import reply_of
from gridledger.market.orders import Side

__all__ = ["BRDiagnostics", "DynamicsResult", "run_dynamics"]

log = logging.getLogger(__name__)


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


def _cap_shade(game: Game, player: Player, old: Strategy, br: Strategy, ticks: int) -> Strategy:
    """Move at most ``ticks`` ticks away from the other side (a buyer's bid down, a
    seller's ask up) towards ``br``, with ``br``'s quantity (0: no limit)."""
    if ticks <= 0:
        return br
    limit = ticks * game.tick_micro
    gap = br.price_per_kwh_micro - old.price_per_kwh_micro
    if player.side == Side.BUY and gap < -limit:
        return Strategy(old.price_per_kwh_micro - limit, br.e_wh)
    if player.side == Side.SELL and gap > limit:
        return Strategy(old.price_per_kwh_micro + limit, br.e_wh)
    return br


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
        self.book = RankedBook(game, initial, self.model_fees)
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

    def aggressive_order(self) -> list[int]:
        """Buyers by descending bid interleaved with sellers by ascending ask (the
        most aggressive quote of each side first), ties in a fresh random order."""
        book = self.book
        tie = self.rng.random(len(self.game.players))
        buyers = np.flatnonzero(book.is_buy)
        sellers = np.flatnonzero(~book.is_buy)
        buyers = buyers[np.lexsort((tie[buyers], -book.price[buyers]))]
        sellers = sellers[np.lexsort((tie[sellers], book.price[sellers]))]
        order: list[int] = []
        for k in range(max(len(buyers), len(sellers))):
            order.extend(int(side[k]) for side in (buyers, sellers) if k < len(side))
        return order

    def _sweep(self, epsilon: float, inertia: float) -> tuple[float, float]:
        """One round; returns the largest change a reply asked for and the largest gain."""
        game, settings = self.game, self.settings
        change = 0.0
        gain_max = 0.0
        self.moved = []
        for index in self.order:
            player = game.players[index]
            old = self.profile[index]
            reply = reply_of(self.book, index)
            gain = (reply.payoff_micro - reply.current_payoff_micro) / _scale(game, player)
            gain_max = max(gain_max, gain)
            if gain <= epsilon:
                continue  # epsilon-best response already: keep the bid
            target = _cap_shade(game, player, old, reply.strategy, settings.shade_ticks)
            partner = self._cycle_partner(index) if settings.pair_ticks > 0 else None
            if partner is not None:
                target = self._pair_reply(index, partner, reply.strategy, epsilon) or target
            new = _damp(game, old, target, settings.omega, player.cap_wh)
            change = max(change, _relative_change(game, old, new, player.cap_wh))
            if inertia > 0 and self.rng.random() < inertia:
                continue
            self.profile[index] = new
            self.book.move(index, new)
            self.moved.append(player.member)
        return change, gain_max

    def _alternates(self, index: int) -> bool:
        """Member ``index`` alternated between two bids over the last four rounds."""
        h = self.profiles
        return h[-1][index] == h[-3][index] != h[-2][index] == h[-4][index]

    def _cycle_partner(self, index: int) -> int | None:
        """The other member of a two-member cycle ``index`` is in (None: no such cycle)."""
        if len(self.profiles) < 4 or not self._alternates(index):
            return None
        others = [j for j in range(len(self.profile)) if j != index and self._alternates(j)]
        return others[0] if len(others) == 1 else None

    def _pair_reply(
        self, index: int, partner: int, best: Strategy, epsilon: float
    ) -> Strategy | None:
        """A reply of ``index`` anticipating ``partner``'s best response: the bid
        within ``pair_ticks`` ticks of its own (quantities: the current one, the
        best response's and the one of the round before) after whose reply by
        ``partner`` its own gain is at most ``epsilon``, with the largest payoff
        then (None: no such bid). The book is left as it was."""
        game, book = self.game, self.book
        old, held = self.profile[index], self.profile[partner]
        quantities = sorted({old.e_wh, best.e_wh, self.profiles[-2][index].e_wh})
        span = self.settings.pair_ticks
        chosen: tuple[float, Strategy] | None = None
        for step in range(-span, span + 1):
            price = old.price_per_kwh_micro + step * game.tick_micro
            if not game.low_micro <= price <= game.high_top:
                continue
            for e_wh in quantities:
                bid = Strategy(price, e_wh)
                book.move(index, bid)
                answer = reply_of(book, partner)
                scale = _scale(game, game.players[partner])
                moves = answer.payoff_micro - answer.current_payoff_micro > epsilon * scale
                book.move(partner, answer.strategy if moves else held)
                mine = reply_of(book, index)
                book.move(partner, held)
                gain = (mine.payoff_micro - mine.current_payoff_micro) / _scale(
                    game, game.players[index]
                )
                if gain <= epsilon and (chosen is None or mine.current_payoff_micro > chosen[0]):
                    chosen = (mine.current_payoff_micro, bid)
        book.move(index, old)
        return None if chosen is None else chosen[1]

    def phase(self, epsilon: float, budget: int) -> bool:
        """Up to ``budget`` rounds at tolerance ``epsilon``; True if a round was quiet."""
        settings = self.settings
        shuffle = settings.order in ("shuffle", "aggressive")
        seen: dict[bytes, int] = {_profile_key(self.profile): self.rounds}
        first_cycle: int | None = None
        inertia = 0.0
        burst_start = 0
        for _ in range(budget):
            if settings.order == "aggressive":
                self.order = self.aggressive_order()
            elif self.rounds > 0 and (shuffle or (inertia > 0 and settings.order == "seeded")):
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
        self.set_profile(anchor)
        self._record(change, gain)

    def set_profile(self, profile: Sequence[Strategy]) -> None:
        """Every member bids ``profile`` (restart, fall back)."""
        self.profile = list(profile)
        self.book.reset(profile)
        self.moved = []


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
    2. For each tolerance of ``refine`` tighter than the one met (default 1e-3,
       then 1e-4), unless the settled profile already meets it: up to
       ``strict_rounds`` more rounds at it (within the cap, one round kept in
       reserve). If they settle, the profile meets it and the next one is
       tried; else a last round returns every member to the last settled
       profile (``fallback``) and the refinement ends.

    ``order = "shuffle"``: every round sweeps the members in a fresh permutation
    drawn from ``settings.seed``; end-of-round profiles seen before are counted
    (``revisits``) but prove nothing. Deterministic orders (``"seeded"``,
    ``"member"``): a repeated end-of-round profile proves a cycle; it is recorded
    (``cycle_round``, ``cycle_period``) and, if ``settings.inertia > 0``, followed
    by an inertia burst and a fresh order.
    """
    settings = settings or BRSettings()
    started = time.perf_counter()
    game = game.refined(settings.grid_refine)  # the grid the members bid on
    relaxed = game.epsilon(settings)
    run = _Dynamics(game, initial, settings, on_round)
    span = settings.restart_rounds or settings.k_max
    converged = run.phase(relaxed, min(span, settings.k_max))
    restarts = 0
    while not converged and settings.restart_rounds > 0 and run.rounds < settings.k_max:
        # trapped away from any equilibrium: start again from the starting profile
        # (the random stream goes on, so the path differs)
        restarts += 1
        run.set_profile(initial)
        log.info("best response: restart %d after round %d", restarts, run.rounds)
        converged = run.phase(relaxed, min(span, settings.k_max - run.rounds))
    epsilon = relaxed
    fallback = False
    for target in sorted({min(e, relaxed) for e in settings.refine}, reverse=True):
        if not converged or target >= epsilon:
            continue
        if run.gains[-1] <= target:  # the settled profile already meets it
            epsilon = target
            continue
        budget = min(settings.strict_rounds, settings.k_max - run.rounds - 1)
        if budget <= 0:
            break
        anchor, anchor_gain = list(run.profile), run.gains[-1]
        if not run.phase(target, budget):
            run.fall_back(anchor, anchor_gain)
            fallback = True
            break
        epsilon = target
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
