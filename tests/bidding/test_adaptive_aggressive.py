"""AA: the array formulas against hand-computed values and properties, and the vectorised
population against the scalar implementation it replaced (kept below as the reference),
bit for bit."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.special import lambertw
from tests.bidding.aa_reference import (
    RefTrader,
    ref_equilibrium_estimate,
    ref_shape,
    ref_shout_aggressiveness,
    ref_smith_alpha,
    ref_solve_theta_bar,
    ref_target_price,
)

from gridledger.bidding import STRATEGIES, PublicView, RoundInfo, TraderSpec, aa_math, make_trader
from gridledger.bidding.adaptive_aggressive import AAParams, AAPopulation, AATrader
from gridledger.bidding.mechanism import Position, TraderMechanism
from gridledger.errors import GridledgerError
from gridledger.market import clear_uniform
from gridledger.market.orders import Side

P_MIN, P_MAX = 0.05, 0.30


# ---------------------------------------------------------------- the library, one element


def _one(x: float) -> np.ndarray:
    return np.array([x], dtype=np.float64)


def shape(s: float, theta: float) -> float:
    return float(aa_math.shape(_one(s), _one(theta))[0])


def shape_inverse(y: float, theta: float) -> float:
    return float(aa_math.shape_inverse(_one(y), _one(theta))[0])


def solve_theta_bar(theta: float, near: float, far: float) -> float:
    return float(aa_math.solve_theta_bar(_one(theta), _one(near), _one(far))[0])


def target_price(
    is_buyer: bool,
    r: float,
    limit: float,
    p_star: float,
    theta: float,
    tb: float,
    p_min: float,
    p_max: float,
) -> float:
    args = (np.array([is_buyer]), _one(r), _one(limit), _one(p_star), _one(theta), _one(tb))
    return float(aa_math.target_prices(*args, p_min, p_max)[0])


def shout_aggressiveness(
    is_buyer: bool,
    q: float,
    limit: float,
    p_star: float,
    theta: float,
    tb: float,
    p_min: float,
    p_max: float,
) -> float:
    args = (np.array([is_buyer]), _one(q), _one(limit), _one(p_star), _one(theta), _one(tb))
    return float(aa_math.shout_aggressiveness(*args, p_min, p_max)[0])


def theta_star(alpha_bar: float, params: AAParams) -> float:
    return float(aa_math.theta_star(_one(alpha_bar), params)[0])


# ---------------------------------------------------------------- hand values


def g(x: float) -> float:
    """x / (e^x - 1), the slope factor of f at s = 0."""
    return 1.0 if x == 0 else x / math.expm1(x)


def tau(is_buyer: bool, r: float, limit: float, p_star: float, theta: float) -> float:
    near = limit - p_star if is_buyer else p_star - limit
    far = p_star - P_MIN if is_buyer else P_MAX - p_star
    tb = solve_theta_bar(theta, near, far)
    return target_price(is_buyer, r, limit, p_star, theta, tb, P_MIN, P_MAX)


def test_shape_hand_values() -> None:
    # f(0.5, -2) = (e^-1 - 1)/(e^-2 - 1) = (1 - e^-1)/(1 - e^-2) = 1/(1 + e^-1) = 0.7310585786
    assert shape(0.5, -2.0) == pytest.approx(0.7310585786, rel=1e-9)
    # f(0.5, 2) = (e - 1)/(e^2 - 1) = 1/(e + 1) = 0.2689414214
    assert shape(0.5, 2.0) == pytest.approx(0.2689414214, rel=1e-9)
    assert shape(0.3, 0.0) == 0.3  # th -> 0: f(s) = s
    assert shape(0.0, -8.0) == 0.0 and shape(1.0, -8.0) == pytest.approx(1.0)
    assert shape(0.5, 1000.0) == pytest.approx(math.exp(-500.0), rel=1e-9)  # no overflow
    for y in (0.0, 0.1, 0.7310585786, 1.0):
        for th in (-8.0, -2.0, 1e-12, 2.0, 40.0):
            assert shape(shape_inverse(y, th), th) == pytest.approx(y, abs=1e-12)


def test_target_hand_values() -> None:
    # P_min = 0.05, P_max = 0.30, p* = 0.175, theta = -2, f(0.5, -2) = 0.7310585786
    p, th = 0.175, -2.0
    # buyer intra (l = 0.275), r = 0.5: 0.175 + (0.275 - 0.175) * 0.7310585786 = 0.2481058579
    assert tau(True, 0.5, 0.275, p, th) == pytest.approx(0.2481058579, rel=1e-9)
    assert tau(True, 0.0, 0.275, p, th) == pytest.approx(0.175)  # r = 0: p*
    assert tau(True, 1.0, 0.275, p, th) == pytest.approx(0.275)  # r = 1: limit
    assert tau(True, -1.0, 0.275, p, th) == pytest.approx(P_MIN)  # r = -1: floor
    # seller intra (l = 0.075), r = 0.5: 0.075 + (0.175 - 0.075)(1 - 0.7310585786) = 0.1018941421
    assert tau(False, 0.5, 0.075, p, th) == pytest.approx(0.1018941421, rel=1e-9)
    assert tau(False, -1.0, 0.075, p, th) == pytest.approx(P_MAX)
    # buyer extra (l = 0.15 <= p*), r = -0.5: 0.05 + (0.15 - 0.05)(1 - 0.7310585786) = 0.0768941421
    assert tau(True, -0.5, 0.15, p, th) == pytest.approx(0.0768941421, rel=1e-9)
    assert tau(True, 0.4, 0.15, p, th) == 0.15  # extra-marginal, r >= 0: limit
    # seller extra (l = 0.2 >= p*), r = -0.5: 0.2 + (0.30 - 0.2) * 0.7310585786 = 0.2731058579
    assert tau(False, -0.5, 0.2, p, th) == pytest.approx(0.2731058579, rel=1e-9)
    assert tau(False, 0.4, 0.2, p, th) == 0.2


def test_theta_bar_matches_lambert_w() -> None:
    # x / (e^x - 1) = c has the closed form x = -c - W(-c e^-c) on the branch that is
    # not the trivial root x = 0 (W_0 for c > 1, W_-1 for c < 1).
    for theta in (-8.0, -2.0, -0.5, 0.7, 2.0):
        for near, far in ((0.1, 0.125), (0.01, 0.2), (0.2, 0.01), (1e-6, 0.1), (0.1, 1e-6)):
            c = g(theta) * near / far
            branch = 0 if c > 1 else -1
            expected = (-c - lambertw(-c * math.exp(-c), branch)).real
            assert solve_theta_bar(theta, near, far) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert solve_theta_bar(-2.0, 0.0, 0.1) == -2.0  # zero-width branch: theta unchanged


def test_equilibrium_and_alpha_hand_values() -> None:
    # newest 0.20 weight 1, then 0.10 weight 0.9: (0.2 + 0.09) / 1.9 = 0.1526315789
    assert ref_equilibrium_estimate([0.10, 0.20], 0.9) == pytest.approx(0.1526315789, rel=1e-9)
    population = AAPopulation([TraderSpec(1, "buy", 0.2, "neutral", P_MIN, P_MAX)])
    population.quote(PublicView(0, 0, 5, P_MIN, P_MAX, past_trade_prices=[0.10, 0.20]))
    p_star = population.p_star(np.zeros(1, dtype=np.intp))[0]
    assert p_star == pytest.approx(0.1526315789, rel=1e-9)
    # sqrt(((0.1 - 0.15)^2 + (0.2 - 0.15)^2) / 2) / 0.15 = 0.05 / 0.15
    assert ref_smith_alpha([0.1, 0.2], 0.15) == pytest.approx(1 / 3)
    params = AAParams()
    assert theta_star(0.0, params) == pytest.approx(2.0)  # calm market: theta_max
    assert theta_star(1.0, params) == pytest.approx(-8.0)  # most volatile: theta_min


def test_short_term_update_hand_values() -> None:
    spec = TraderSpec(1, "buy", 0.275, "neutral", P_MIN, P_MAX)
    trader = AATrader(spec)
    view = PublicView(0, 0, 5, P_MIN, P_MAX, past_trade_prices=[0.175] * 5)
    trader.quote(view)
    # a round without trade whose best ask 0.20 is above the target p* = 0.175:
    # r_shout = f^-1((0.20 - 0.175)/(0.275 - 0.175), -2) = ln(1 + 0.25 (e^-2 - 1)) / -2
    r_shout = math.log1p(0.25 * math.expm1(-2.0)) / -2.0
    delta = 1.05 * r_shout + 0.025  # neutral: lambda_r = 0.05, lambda_a = 0.025
    trader.observe(view, RoundInfo(best_bid=0.17, best_ask=0.20))
    assert trader.r == pytest.approx(0.4 * delta, rel=1e-12)  # r0 = 0, beta1 = 0.4


# ---------------------------------------------------------------- properties

prices = st.floats(P_MIN, P_MAX)
inner = st.floats(0.06, 0.29)
thetas = st.floats(-8.0, 2.0)
rs = st.floats(-1.0, 1.0)


@given(st.booleans(), rs, rs, prices, inner, thetas)
def test_tau_monotone_in_r(
    is_buyer: bool, r1: float, r2: float, limit: float, p_star: float, theta: float
) -> None:
    """Buyers' tau is non-decreasing in r (more aggressive = higher bid); sellers' non-increasing."""
    lo, hi = min(r1, r2), max(r1, r2)
    t_lo, t_hi = (tau(is_buyer, r, limit, p_star, theta) for r in (lo, hi))
    if is_buyer:
        assert t_hi >= t_lo - 1e-12
    else:
        assert t_hi <= t_lo + 1e-12
    assert P_MIN - 1e-12 <= t_lo <= P_MAX + 1e-12


@given(st.booleans(), prices, inner, thetas)
def test_tau_and_slope_continuous_at_zero(
    is_buyer: bool, limit: float, p_star: float, theta: float
) -> None:
    at_zero = tau(is_buyer, 0.0, limit, p_star, theta)
    for r in (-1e-13, 1e-13):
        assert tau(is_buyer, r, limit, p_star, theta) == pytest.approx(at_zero, rel=1e-9)
    near = limit - p_star if is_buyer else p_star - limit
    if near > 1e-9:  # intra-marginal: theta_bar makes the one-sided slopes equal
        far = p_star - P_MIN if is_buyer else P_MAX - p_star
        tb = solve_theta_bar(theta, near, far)
        assert far * g(tb) == pytest.approx(near * g(theta), rel=1e-9)


@given(st.booleans(), rs, prices, inner, thetas)
@example(True, -1.0, 0.25, 0.060546875, -2.0)  # theta_bar ~ -40: e^theta_bar below float resolution
def test_shout_inverts_tau(
    is_buyer: bool, r: float, limit: float, p_star: float, theta: float
) -> None:
    near = limit - p_star if is_buyer else p_star - limit
    far = p_star - P_MIN if is_buyer else P_MAX - p_star
    tb = solve_theta_bar(theta, near, far)
    q = target_price(is_buyer, r, limit, p_star, theta, tb, P_MIN, P_MAX)
    r_back = shout_aggressiveness(is_buyer, q, limit, p_star, theta, tb, P_MIN, P_MAX)
    q_back = target_price(is_buyer, r_back, limit, p_star, theta, tb, P_MIN, P_MAX)
    assert q_back == pytest.approx(q, abs=1e-9)


round_infos = st.builds(
    RoundInfo,
    st.one_of(st.none(), prices),
    st.one_of(st.none(), prices),
    st.lists(prices, max_size=3).map(tuple),
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["buy", "sell"]),
    prices,
    st.one_of(st.sampled_from(["averse", "neutral", "seeking"]), rs),  # str | float
    st.lists(round_infos, min_size=1, max_size=12),
    st.lists(prices, max_size=6),
)
def test_quotes_within_limit_and_tariffs(
    side: str, limit: float, attitude: str | float, infos: list[RoundInfo], past: list[float]
) -> None:
    spec = TraderSpec(3, "buy" if side == "buy" else "sell", limit, attitude, P_MIN, P_MAX)
    trader = AATrader(spec)
    reference = RefTrader(spec)
    view = PublicView(0, 0, 5, P_MIN, P_MAX, past_trade_prices=past)
    for k, info in enumerate(infos):
        view.round = k % 5
        price = trader.quote(view)
        assert P_MIN <= price <= P_MAX
        assert price <= limit if side == "buy" else price >= limit
        assert price == reference.quote(view)  # bit for bit
        trader.observe(view, info)
        reference.observe(view, info)
        view.history.append(info)
        assert -1.0 <= trader.r <= 1.0 and -8.0 <= trader.theta <= 2.0
        assert (trader.r, trader.theta) == (reference.r, reference.theta)


def test_limit_outside_tariffs_wins() -> None:
    view = PublicView(0, 0, 5, P_MIN, P_MAX)
    low_buyer = AATrader(TraderSpec(1, "buy", 0.04, "averse", P_MIN, P_MAX))
    assert low_buyer.quote(view) == 0.04  # a buyer never bids above its limit
    high_seller = AATrader(TraderSpec(2, "sell", 0.31, "seeking", P_MIN, P_MAX))
    assert high_seller.quote(view) == 0.31  # a seller never asks below its limit


# ---------------------------------------------------------------- vectorised and protocol


def test_population_equals_traders_over_a_run() -> None:
    """Rows joining at different times, in six groups that see different books and
    trades: every quote, r and theta equal the scalar reference traders' exactly."""
    rng = np.random.default_rng(5)
    specs = []
    for i in range(200):
        side: Literal["buy", "sell"] = "buy" if i % 2 == 0 else "sell"
        limit = float(rng.uniform(0.02, 0.33))
        names: list[str | float] = ["averse", "neutral", "seeking", float(rng.uniform(-1, 1))]
        specs.append(TraderSpec(i, side, limit, names[i % 4], P_MIN, P_MAX))
    group = rng.integers(0, 6, len(specs))
    joins = rng.integers(0, 30, len(specs))
    population = AAPopulation([], p_min=P_MIN, p_max=P_MAX)
    traders: dict[int, RefTrader] = {}
    rows: dict[int, int] = {}
    past: list[float] = []
    views: dict[int, PublicView] = {}
    active: list[int] = []
    for k in range(60):
        if k % 5 == 0:
            views = {
                g: PublicView(k // 5, 0, 5, P_MIN, P_MAX, list(), list(past)) for g in range(6)
            }
            active = [i for i in range(len(specs)) if joins[i] <= k and rng.random() < 0.8]
            for i in active:
                if i not in traders:
                    traders[i], rows[i] = RefTrader(specs[i]), population.add(specs[i])
        at = np.array([rows[i] for i in active], dtype=np.intp)
        seen = [views[int(group[i])] for i in active]
        quotes = population.quote_rows(at, seen)
        expected = [traders[i].quote(v) for i, v in zip(active, seen, strict=True)]
        assert quotes.tolist() == expected
        infos = []
        for _ in range(6):
            n_trades = int(rng.integers(0, 3))
            bid = None if rng.random() < 0.1 else float(rng.uniform(P_MIN, P_MAX))
            ask = None if rng.random() < 0.1 else float(rng.uniform(P_MIN, P_MAX))
            infos.append(RoundInfo(bid, ask, tuple(rng.uniform(0.1, 0.25, n_trades).tolist())))
        got = [infos[int(group[i])] for i in active]
        population.observe_rows(at, seen, got)
        for i, v, info in zip(active, seen, got, strict=True):
            traders[i].observe(v, info)
        for g, view in views.items():
            view.history.append(infos[g])
        if k % 5 == 4:
            past = (past + list(infos[0].trade_prices))[-50:]
    order = sorted(traders)
    r = [traders[i].r for i in order]
    assert population.r[[rows[i] for i in order]].tolist() == r
    assert population.theta[[rows[i] for i in order]].tolist() == [traders[i].theta for i in order]
    assert np.ptp(r) > 0.1  # the run did move the traders


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), rs, prices, inner, thetas, prices), min_size=1))
def test_array_formulas_equal_the_scalar_ones(
    rows: list[tuple[bool, float, float, float, float, float]],
) -> None:
    buyer = np.array([row[0] for row in rows])
    r, limit, p, theta, q = (np.array([row[k] for row in rows]) for k in (1, 2, 3, 4, 5))
    near = np.where(buyer, limit - p, p - limit)
    far = np.where(buyer, p - P_MIN, P_MAX - p)
    tb = aa_math.solve_theta_bar(theta, near, far)
    tau_v = aa_math.target_prices(buyer, r, limit, p, theta, tb, P_MIN, P_MAX)
    shout_v = aa_math.shout_aggressiveness(buyer, q, limit, p, theta, tb, P_MIN, P_MAX)
    for i, (b, r_i, l_i, p_i, th_i, q_i) in enumerate(rows):
        n_i, f_i = (l_i - p_i, p_i - P_MIN) if b else (p_i - l_i, P_MAX - p_i)
        tb_i = ref_solve_theta_bar(th_i, n_i, f_i)
        assert tb[i] == tb_i
        assert tau_v[i] == ref_target_price(b, r_i, l_i, p_i, th_i, tb_i, P_MIN, P_MAX)
        assert shout_v[i] == ref_shout_aggressiveness(b, q_i, l_i, p_i, th_i, tb_i, P_MIN, P_MAX)
    assert aa_math.shape(np.abs(r), theta).tolist() == [
        ref_shape(abs(x), t) for x, t in zip(r.tolist(), theta.tolist(), strict=True)
    ]


def test_registered_and_rejects_bad_specs() -> None:
    assert "aa" in STRATEGIES
    spec = TraderSpec(1, "buy", 0.2, "neutral", P_MIN, P_MAX)
    assert isinstance(make_trader("aa", spec, np.random.default_rng(0)), AATrader)
    with pytest.raises(GridledgerError, match="'bold'"):
        AATrader(TraderSpec(1, "buy", 0.2, "bold", P_MIN, P_MAX))
    with pytest.raises(GridledgerError, match="feed_in_per_kwh < retail_per_kwh"):
        AATrader(TraderSpec(1, "buy", 0.2, "neutral", 0.3, 0.3))
    with pytest.raises(GridledgerError, match="side"):
        AATrader(TraderSpec(1, "hold", 0.2, "neutral", P_MIN, P_MAX))  # type: ignore[arg-type]
    with pytest.raises(GridledgerError, match="differ"):
        AAPopulation([spec, TraderSpec(2, "sell", 0.1, "neutral", 0.04, P_MAX)])


def test_first_round_bid_formula() -> None:
    # no trade seen, empty book: o_bid = P_min, o_ask = P_max, eta = 3, lambda_r = 0.05,
    # lambda_a = 0.02 * (0.30 - 0.05) = 0.005.
    view = PublicView(0, 0, 5, P_MIN, P_MAX)
    buyer = AATrader(TraderSpec(1, "buy", 0.26, "neutral", P_MIN, P_MAX))
    # b = 0.05 + (min(0.26, 1.05 * 0.30 + 0.005) - 0.05) / 3 = 0.05 + 0.21 / 3 = 0.12
    assert buyer.quote(view) == pytest.approx(0.12)
    seller = AATrader(TraderSpec(2, "sell", 0.11, "neutral", P_MIN, P_MAX))
    # a = 0.30 - (0.30 - max(0.11, 0.95 * 0.05 - 0.005)) / 3 = 0.30 - 0.19 / 3
    assert seller.quote(view) == pytest.approx(0.30 - 0.19 / 3)


def test_mechanism_mixes_population_and_registry_traders() -> None:
    """AA members are rows of the mechanism's population, ZI members registry traders;
    ZI bids depend only on each member's own random stream, so they are the same
    whether or not AA members share the market."""
    positions = [
        Position(
            i,
            i % 3,
            Side.BUY if i % 2 == 0 else Side.SELL,
            1000,
            0.1 + 0.01 * i,
            "neutral",
            "aa" if i % 3 else "zi",
        )
        for i in range(12)
    ]
    zi_only = [pos for pos in positions if pos.strategy == "zi"]
    mixed = TraderMechanism(4, P_MIN, P_MAX, seed=3)
    alone = TraderMechanism(4, P_MIN, P_MAX, seed=3)
    for interval in range(3):
        both = mixed.run_rounds(interval, positions, clear_uniform)
        zi = alone.run_rounds(interval, zi_only, clear_uniform)
        for bids, zi_bids in zip(both, zi, strict=True):
            assert [b for b in bids if b.member % 3 == 0] == zi_bids
    assert mixed.aa is not None and len(mixed.aa) == len(mixed.aa_rows) == 8
    assert sorted(member for member, _ in mixed.traders) == [0, 3, 6, 9]
