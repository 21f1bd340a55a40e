"""Best-response game: exact best response, dynamics, equilibrium check, mechanism."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from tests.bidding.games import FEES_2, market_2x2

from gridledger.bidding.game import (
    BestResponseError,
    BestResponseMechanism,
    BRSettings,
    Game,
    Player,
    Strategy,
    best_response,
    payoff_micro,
    run_dynamics,
)
from gridledger.bidding.game.book import RankedBook
from gridledger.bidding.game.nash import check_equilibrium
from gridledger.bidding.game.start import START_BLOCKS, competitive_profile, start_profile
from gridledger.bidding.game.synthetic import feeder_game, hop_distance_33, synthetic_game
from gridledger.bidding.mechanism import Position
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Side
from gridledger.members.member import Member, Role


def test_best_response_2x2_closed_form_linear() -> None:
    """B1 (bus 1, value 0.30/kWh, beta 0) against B2, S1, S2.

    B2-S2 (surplus 40_000, fee 0) beats B2-S1 (40_000, fee 10_000), so B2 takes
    all of S2 and never competes for S1. B1 gets S1's 600 Wh for any bid
    p >= 100_001 (surplus >= 1); it wins 400 Wh of S2 from B2 only if
    p - 120_000 > 40_000 (a tie loses on the fee): p >= 160_001.
    - p = 100_001: 600 Wh at 100_000 + floor(1/2) = 100_000 -> 0.6 x 200_000 = 120_000
    - p = 160_001: 600 Wh at 100_000 + floor(60_001/2) = 130_000 and
      400 Wh at 110_000 + floor(40_001/2) + 10_000 = 140_000
      -> 0.6 x 170_000 + 0.4 x 160_000 = 166_000 (best; payoff falls with p elsewhere).
    """
    game, profile = market_2x2(beta=0.0)
    reply = best_response(game, 0, profile)
    assert reply.strategy == Strategy(160_001, 1000)
    assert reply.payoff_micro == pytest.approx(166_000)
    trial = list(profile)
    trial[0] = reply.strategy
    assert payoff_micro(game.players[0], game.clear(trial).trades) == pytest.approx(166_000)


def test_best_response_2x2_closed_form_quadratic() -> None:
    """Same market, beta = 0.25/kWh^2: marginal value 300_000 - 250_000 D (micro/kWh).

    - p = 160_001: 600 Wh at 130_000 (marginal value 150_000 at 0.6 kWh, take all),
      then 140_000 = 300_000 - 250_000 D -> D = 0.64 kWh:
      1e6 (0.3 x 0.64 - 0.125 x 0.64^2) - (78_000 + 40 x 140) = 57_200
    - p = 100_001: price 100_000 -> D = 0.8 > 0.6, take the 600 Wh:
      180_000 - 45_000 - 60_000 = 75_000 (best).
    """
    game, profile = market_2x2(beta=0.25)
    reply = best_response(game, 0, profile)
    assert reply.strategy == Strategy(100_001, 600)
    assert reply.payoff_micro == pytest.approx(75_000)


def _random_game(rng: np.random.Generator, tick: int) -> tuple[Game, list[Strategy]]:
    n_bus = 4
    fees = rng.integers(0, 3, (n_bus, n_bus)) * 5000
    fees = np.maximum(fees, fees.T).astype(np.int64)
    players = []
    for i in range(int(rng.integers(2, 6))):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        lin = float(rng.uniform(0.15, 0.3) if side == Side.BUY else rng.uniform(0.03, 0.1))
        players.append(
            Player(
                3 * i + 1,
                int(rng.integers(0, n_bus)),
                side,
                int(rng.integers(1, 7)),
                lin,
                float(rng.uniform(0, 5)),
            )
        )
    game = Game(tuple(players), fees, Fraction(int(rng.integers(0, 3)), 2), 80_000, 300_000, tick)
    profile = [
        Strategy(
            game.snap_down(int(rng.integers(80_000, 300_000))), int(rng.integers(0, p.cap_wh + 1))
        )
        for p in players
    ]
    return game, profile


def test_best_response_equals_brute_force() -> None:
    """On the tick grid x whole Wh the reply is exactly the best (reference clearing)."""
    rng = np.random.default_rng(7)
    tick = 5000
    for _ in range(12):
        game, profile = _random_game(rng, tick)
        for i, player in enumerate(game.players):
            reply = best_response(game, i, profile)
            best = -np.inf
            for price in range(game.low_micro, game.high_top + 1, tick):
                for q in range(player.cap_wh + 1):
                    trial = list(profile)
                    trial[i] = Strategy(price, q)
                    best = max(best, payoff_micro(player, game.clear(trial).trades))
            trial = list(profile)
            trial[i] = reply.strategy
            realised = payoff_micro(player, game.clear(trial).trades)
            assert realised == pytest.approx(reply.payoff_micro, abs=1e-6)
            assert realised >= best - 1e-6


def test_prefix_shortcut_matches_strict_check() -> None:
    rng = np.random.default_rng(3)
    game, profile = _random_game(rng, 10_000)
    fast = check_equilibrium(game, profile, n_prices=12, n_quantities=5)
    strict = check_equilibrium(game, profile, n_prices=12, n_quantities=5, strict=True)
    assert [d.best_micro for d in fast.per_member] == pytest.approx(
        [d.best_micro for d in strict.per_member]
    )


# --- a 32-member market on an IEEE 33-bus-like radial feeder --------------------


def market_32(seed: int) -> tuple[Game, list[Strategy]]:
    return synthetic_game(32, seed)


def test_dynamics_32_members_converge_to_verified_equilibrium() -> None:
    game, start = market_32(seed=3)
    settings = BRSettings(k_max=100)
    result = run_dynamics(game, start, settings)
    assert result.converged, result.max_change[-5:]
    assert result.rounds <= settings.k_max
    # default: one tick's worth (0.005), refined to 1e-3 and exact (1e-4) where it settles
    assert min(abs(result.epsilon - e) for e in (1e-4, 1e-3, 0.005)) < 1e-8
    report = check_equilibrium(
        game, result.final, n_prices=101, n_quantities=11, epsilon=result.epsilon
    )
    assert report.is_equilibrium, (report.max_gain_rel, report.member, report.deviation)
    assert game.clear(result.final).traded_wh > 0


def test_equilibrium_check_fails_on_planted_deviation() -> None:
    game, start = market_32(seed=3)
    final = run_dynamics(game, start, BRSettings(k_max=100)).final
    traded = game.clear(final).trades
    buyer = next(
        i
        for i, p in enumerate(game.players)
        if p.side == Side.BUY and any(t.buyer == p.member for t in traded)
    )
    planted = list(final)
    planted[buyer] = Strategy(game.low_micro, final[buyer].e_wh)  # bids the floor: loses its trades
    report = check_equilibrium(game, planted, n_prices=51, n_quantities=11)
    assert not report.is_equilibrium
    assert report.member == game.players[buyer].member
    assert report.max_gain_micro > 0


def test_cap_reports_non_convergence() -> None:
    game, start = market_32(seed=3)
    result = run_dynamics(game, start, BRSettings(k_max=2))
    assert not result.converged
    assert result.rounds == 2
    assert len(result.max_change) == 2


def test_converged_round_leaves_the_profile_unchanged() -> None:
    """Convergence = a whole round with no gain > epsilon: the last round is a fixed point."""
    game, start = market_32(seed=4)
    for epsilon in (None, 1e-4):
        result = run_dynamics(game, start, BRSettings(k_max=50, epsilon=epsilon))
        assert result.converged
        assert result.rounds <= 50
        assert result.final == result.profiles[-2]
        assert result.max_gain[-1] <= result.epsilon


def test_deterministic_cycle_is_detected_and_reported() -> None:
    """Without inertia the dynamics are a deterministic map: a repeated profile is a
    cycle, reported instead of running to the cap; with inertia the run leaves it."""
    game, start = market_32(seed=6)
    stuck = run_dynamics(
        game,
        start,
        BRSettings(k_max=100, inertia=0.0, order="seeded", epsilon=1e-4, restart_rounds=0),
    )
    assert not stuck.converged
    assert stuck.cycle_round is not None and stuck.cycle_period is not None
    assert stuck.rounds == stuck.cycle_round < 100
    period = stuck.cycle_period
    assert stuck.profiles[-1] == stuck.profiles[-1 - period]
    assert stuck.max_gain[-1] > 1e-4
    escaped = run_dynamics(
        game, start, BRSettings(k_max=100, order="seeded", epsilon=1e-4, restart_rounds=0)
    )
    assert escaped.cycle_round == stuck.cycle_round
    assert escaped.converged
    report = check_equilibrium(game, escaped.final, n_prices=101, n_quantities=11)
    assert report.is_equilibrium, (report.max_gain_rel, report.member)


def test_damping_moves_part_of_the_way() -> None:
    game, profile = market_2x2(beta=0.0)
    full = best_response(game, 0, profile).strategy  # 160_001
    settings = BRSettings(omega=0.5, k_max=1, inertia=0.0, order="member", epsilon=0.0)
    damped = run_dynamics(game, profile, settings).profiles[1][0]
    old = profile[0].price_per_kwh_micro
    assert damped.price_per_kwh_micro == old + round(0.5 * (full.price_per_kwh_micro - old))
    assert damped.e_wh == profile[0].e_wh  # BR keeps 1000 Wh


def _member(i: int, bus: int, role: Role, kwp: float) -> Member:
    return Member(
        id=i,
        name=f"m{i}",
        bus=bus,
        role=role,
        load_annual_kwh=1000.0 if role != Role.PRODUCER else 0.0,
        load_profile="h0",
        pv_kwp=kwp,
        p_max_kw=10.0,
        cost_per_kwh=0.05 + 0.01 * i % 3,
        utility_per_kwh=0.25,
        cost_a=0.02,
        utility_alpha=0.25 + 0.01 * (i % 4),
        utility_beta=0.1,
        risk_attitude="neutral",
        strategy="br",
    )


def test_mechanism_records_rounds_and_diagnostics() -> None:
    members = [
        _member(
            i, 1 + i % 6, Role.CONSUMER if i % 2 == 0 else Role.PRODUCER, 0.0 if i % 2 == 0 else 5.0
        )
        for i in range(10)
    ]
    fees = np.round(hop_distance_33()[:7, :7] * 3000).astype(np.int64)
    mech = BestResponseMechanism(members, 0.25, fees, Fraction(1, 2), 0.08, 0.30)
    positions = [
        Position(
            m.id,
            m.bus,
            Side.BUY if m.role == Role.CONSUMER else Side.SELL,
            800 + 50 * m.id,
            0.25 if m.role == Role.CONSUMER else 0.08,
            "neutral",
            "br",
        )
        for m in members
    ]

    def clear(bids):  # the simulation's greedy clearing
        return clear_greedy(bids, fees, Fraction(1, 2))

    rounds = mech.run_rounds(0, positions, clear)
    diag = mech.diagnostics[-1]
    assert len(rounds) == diag.rounds >= 1
    assert diag.rule_matches is True
    assert diag.converged == (diag.max_gain_rel <= diag.epsilon)
    assert all(b.e_wh > 0 for b in rounds[-1])
    # the competitive start is stateless: the same interval replays identically
    assert mech.run_rounds(0, positions, clear) == rounds
    # a warm start begins at each member's last price (kept per member and side)
    warm = BestResponseMechanism(
        members, 0.25, fees, Fraction(1, 2), 0.08, 0.30, settings=BRSettings(start="warm")
    )
    warm.run_rounds(0, positions, clear)
    game = warm.game_for(positions)
    start = warm.initial_profile(game, positions)
    for player, strategy in zip(game.players, start, strict=True):
        assert strategy.price_per_kwh_micro == warm.last_price[(player.member, int(player.side))]


def test_bursts_restart_deterministic_phase_and_count_cycles() -> None:
    """After each detected cycle: a short inertia burst, then a fresh deterministic
    order with cycle detection restarted; every cycle is counted, and with
    ``burst_rounds=None`` the run stays in the inertia phase (one cycle recorded)."""
    game, start = market_32(seed=7)
    exact = {"order": "seeded", "epsilon": 1e-4, "restart_rounds": 0}
    bursts = run_dynamics(game, start, BRSettings(k_max=100, **exact))
    assert bursts.cycles >= 2 and bursts.cycle_round is not None
    assert bursts.converged
    report = check_equilibrium(game, bursts.final, n_prices=101, n_quantities=11)
    assert report.is_equilibrium, (report.max_gain_rel, report.member)
    stay = run_dynamics(game, start, BRSettings(k_max=100, burst_rounds=None, **exact))
    assert stay.cycles == 1
    assert stay.cycle_round == bursts.cycle_round
    assert stay.converged == (stay.max_gain[-1] <= 1e-4)
    with pytest.raises(BestResponseError, match="burst_rounds"):
        BRSettings(burst_rounds=0)


@pytest.mark.parametrize("seed", [3, 4, 6])
@pytest.mark.parametrize("start", ["competitive", "truthful"])
@pytest.mark.parametrize("epsilon", [None, pytest.param(1e-4, marks=pytest.mark.slow)])
def test_shuffled_dynamics_32_members_within_50_rounds(
    seed: int, start: str, epsilon: float | None
) -> None:
    """Issue 7 target: 32 members reach a verified equilibrium in <= 50 rounds with
    a fresh random sweep order every round (the default), both at the default
    tolerance (one tick's worth) and at 1e-4 (exact on the grid)."""
    game, truthful = market_32(seed)
    initial = competitive_profile(game) if start == "competitive" else truthful
    result = run_dynamics(game, initial, BRSettings(k_max=50, epsilon=epsilon))
    assert result.converged, (result.rounds, result.max_gain[-3:], result.moving)
    assert result.moving == ()
    report = check_equilibrium(
        game, result.final, n_prices=101, n_quantities=11, epsilon=result.epsilon
    )
    assert report.is_equilibrium, (report.max_gain_rel, report.member, report.deviation)


def test_shuffled_order_is_reproducible_from_the_seed() -> None:
    game, start = market_32(seed=6)
    one = run_dynamics(game, start, BRSettings(k_max=8, seed=11))
    two = run_dynamics(game, start, BRSettings(k_max=8, seed=11))
    other = run_dynamics(game, start, BRSettings(k_max=8, seed=12))
    assert one.profiles == two.profiles
    assert one.profiles != other.profiles


def test_competitive_profile_prices_routes_by_hand() -> None:
    """Seller at bus 1 (cost 0.10), buyer at bus 2 (value 0.20), fee 0.01 across:
    with ample supply the competitive bus prices are the seller's cost at bus 1 and
    cost + fee at bus 2 (the seller's marginal cost at the traded energy)."""
    players = (
        Player(1, 2, Side.BUY, 1000, 0.20, 0.0),
        Player(2, 1, Side.SELL, 5000, 0.10, 0.0),
    )
    game = Game(players, FEES_2, Fraction(1, 2), 0, 300_000, 1)
    bid, ask = competitive_profile(game)
    assert ask == Strategy(100_000, 5000)
    assert bid == Strategy(110_000, 1000)
    # a buyer priced out (value below cost + fee) bids its limit; so does a seller
    poor = (Player(1, 2, Side.BUY, 1000, 0.105, 0.0), players[1])
    game = Game(poor, FEES_2, Fraction(1, 2), 0, 300_000, 1)
    bid, ask = competitive_profile(game)
    assert bid.price_per_kwh_micro <= 105_000
    assert ask.price_per_kwh_micro >= 100_000
    with pytest.raises(BestResponseError, match="start"):
        start_profile(game, "sideways")


def _walrasian_price_micro(players: tuple[Player, ...]) -> float:
    """Price where the members' continuous demand meets their supply (one bus, no
    fee), by bisection: buyers take ``(alpha - p) / beta`` kWh, sellers offer
    ``(p - b) / (2 a)`` kWh, each clipped to ``[0, cap]``."""

    def excess(p_micro: float) -> float:
        p = p_micro / 1e6
        total = 0.0
        for pl in players:
            cap = pl.cap_wh / 1000.0
            if pl.side == Side.BUY:
                total += min(max((pl.lin - p) / pl.quad, 0.0), cap)
            else:
                total -= min(max((p - pl.lin) / (2.0 * pl.quad), 0.0), cap)
        return total

    low, high = 0.0, 1e6
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if excess(mid) > 0 else (low, mid)
    return (low + high) / 2


@pytest.mark.parametrize("seed", range(6))
def test_competitive_start_is_near_the_walrasian_price(seed: int) -> None:
    """Four members on one bus, no fee: the start's price is the continuous
    competitive price of their quadratic curves to within half a step's drop of the
    steepest curve plus a tick (64 steps: at most 912 micro off on these seeds; with
    8 steps up to 8,855, 20 ticks of the 0.2 % grid)."""
    game, _ = feeder_game(4, seed, np.zeros((2, 2), dtype=np.int64), [1])
    game = game.refined(5)
    p_star = _walrasian_price_micro(game.players)
    drop = max(pl.lin if pl.side == Side.BUY else 2 * pl.lin for pl in game.players) * 1e6
    bound = drop / START_BLOCKS / 2 + game.tick_micro
    profile = competitive_profile(game)
    checked = {Side.BUY: 0, Side.SELL: 0}
    for pl, st in zip(game.players, profile, strict=True):
        limit = pl.lin * 1e6
        inside = limit > p_star if pl.side == Side.BUY else limit < p_star
        if inside and abs(limit - p_star) > bound:  # trades at the competitive price
            assert abs(st.price_per_kwh_micro - p_star) <= bound, (pl.member, st, p_star)
            checked[pl.side] += 1
    assert checked[Side.BUY] >= 1 and checked[Side.SELL] >= 1, checked  # both sides checked


@pytest.mark.slow  # several full runs of the ladder (about 8 s)
def test_exact_refinement_or_fallback_to_the_tick_equilibrium() -> None:
    """Phase 1 settles at one tick's worth (0.005 with kappa 1/2); the refinement at
    1e-4 either settles (exact) or a last round returns to phase 1's profile."""
    game, start = market_32(seed=3)
    assert game.tick_gain_rel == pytest.approx(0.005)
    short = run_dynamics(game, start, BRSettings(strict_rounds=2, refine=(1e-4,)))
    assert short.converged and short.fallback
    assert short.epsilon == pytest.approx(0.005)
    quiet = next(k for k, g in enumerate(short.max_gain, start=1) if g <= short.epsilon)
    assert short.rounds == quiet + 2 + 1  # phase 1, two strict rounds, the return
    assert short.final == short.profiles[quiet]
    report = check_equilibrium(game, short.final, n_prices=101, n_quantities=11)
    assert report.max_gain_rel <= short.epsilon
    exact = [run_dynamics(g, s, BRSettings()) for g, s in map(market_32, (3, 4, 6))]
    assert any(r.epsilon == pytest.approx(1e-4) and not r.fallback for r in exact)
    for (game, _), r in zip(map(market_32, (3, 4, 6)), exact, strict=True):
        gain = check_equilibrium(game, r.final, n_prices=101, n_quantities=11).max_gain_rel
        assert gain <= r.epsilon
    with pytest.raises(BestResponseError, match="strict_rounds"):
        BRSettings(strict_rounds=-1)
    with pytest.raises(BestResponseError, match="refine"):
        BRSettings(refine=(-1e-3,))
    with pytest.raises(BestResponseError, match="restart_rounds"):
        BRSettings(restart_rounds=-1)


@pytest.mark.slow  # several full runs of the ladder (about 7 s)
def test_refinement_ladder_reports_the_tightest_tolerance_met() -> None:
    """Default ladder: one tick's worth, then 1e-3, then 1e-4; a rung that does not
    settle returns to the last settled profile, and the reported tolerance is met."""
    for seed in (3, 4, 6):
        game, _ = market_32(seed)
        result = run_dynamics(game, competitive_profile(game), BRSettings())
        assert result.converged
        assert min(abs(result.epsilon - e) for e in (1e-4, 1e-3, 0.005)) < 1e-8
        if result.fallback:  # the last round restored a profile met at the reported tolerance
            assert result.final in result.profiles[:-1]
        report = check_equilibrium(game, result.final, n_prices=101, n_quantities=11)
        assert report.max_gain_rel <= result.epsilon
    # at 1e-3 only (no exact rung) a settled profile is verified at 1e-3
    game, _ = market_32(4)
    result = run_dynamics(game, competitive_profile(game), BRSettings(refine=(1e-3,)))
    assert result.epsilon in (pytest.approx(1e-3), pytest.approx(0.005))
    report = check_equilibrium(game, result.final, n_prices=101, n_quantities=11)
    assert report.max_gain_rel <= result.epsilon


def test_ranked_book_follows_moves() -> None:
    """The incrementally kept pair list equals a fresh ranking after every move, and
    replies read from it equal the stand-alone best response."""
    game, _ = synthetic_game(40, 5)
    profile = competitive_profile(game)
    book = RankedBook(game, profile)
    rng = np.random.default_rng(0)
    for index in rng.permutation(len(profile)):
        price, e_wh, payoff, current, _ = book.reply(int(index))
        reply = best_response(game, int(index), profile)
        assert (price, e_wh) == (
            reply.strategy.price_per_kwh_micro,
            reply.strategy.e_wh,
        )
        assert payoff == pytest.approx(reply.payoff_micro)
        assert current == pytest.approx(reply.current_payoff_micro)
        if payoff > current:
            profile[index] = Strategy(price, e_wh)
            book.move(int(index), profile[index])
        fresh = RankedBook(game, profile)
        for name in ("pb", "ps", "psur", "pfee"):
            assert np.array_equal(getattr(book, name), getattr(fresh, name))
