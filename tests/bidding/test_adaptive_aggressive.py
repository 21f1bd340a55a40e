"""AA: the array formulas against hand-computed values, properties and the scalar reference
(bit for bit), and the population's protocol (bounds, registry, mechanism)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.special import lambertw
from tests.bidding.aa_reference import (
    ref_equilibrium_estimate,
    ref_shape,
    ref_shout_aggressiveness,
    ref_smith_alpha,
    ref_solve_theta_bar,
    ref_target_price,
)

from gridledger.bidding import STRATEGIES, PublicView, RoundInfo, TraderSpec, aa_math, make_trader
from gridledger.bidding.adaptive_aggressive import AAParams, AAPopulation, AATrader
from gridledger.bidding.base import FILLED, NOT_MATCHED, PARTLY_FILLED, RATIONED, OwnResult
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
    """Neutral buyer, l = 0.275, p* = 0.175 (theta = -2), r0 = 0.1; beta1 = 0.4,
    lambda_r = 0.05, lambda_a = 0.3 (up and down)."""
    spec = TraderSpec(1, "buy", 0.275, "neutral", P_MIN, P_MAX)
    view = PublicView(0, 0, 5, P_MIN, P_MAX, past_trade_prices=[0.175] * 5)
    # rationed: more aggressive toward the round price q = 0.18 (public)
    trader = AATrader(spec)
    trader.quote(view)
    x = math.log1p(0.05 * math.expm1(-2.0)) / -2.0  # r_shout(0.18) = f^-1(0.05 / 0.1, -2)
    up = max(1.05 * x + 0.3, 0.1 + 0.3)
    trader.observe(view, RoundInfo(0.19, 0.17, (0.18,), (1000,)), OwnResult(RATIONED, 1000))
    assert trader.r == pytest.approx(0.1 + 0.4 * (up - 0.1), rel=1e-12)
    # filled at its own price 0.18: less aggressive toward it; the round price 0.18
    # enters the memory first, so p* = (0.18 + 0.175 (0.9 + 0.81 + 0.729 + 0.6561)) / 4.0951
    trader = AATrader(spec)
    trader.quote(view)
    p_new = (0.18 + 0.175 * (0.9 + 0.81 + 0.729 + 0.6561)) / 4.0951
    x = math.log1p((0.18 - p_new) / (0.275 - p_new) * math.expm1(-2.0)) / -2.0
    down = min(0.95 * x - 0.3, 0.1 - 0.3)
    info = RoundInfo(0.19, 0.17, (0.18,), (1000,))
    trader.observe(view, info, OwnResult(FILLED, 1000, 1000, 0.18))
    assert trader.r == pytest.approx(0.1 + 0.4 * (down - 0.1), rel=1e-12)


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
own_results = st.builds(
    OwnResult,
    st.sampled_from([FILLED, PARTLY_FILLED, RATIONED, NOT_MATCHED]),
    st.just(1000),
    st.just(0),
    st.one_of(st.none(), prices),
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["buy", "sell"]),
    prices,
    st.one_of(st.sampled_from(["averse", "neutral", "seeking"]), rs),  # str | float
    st.lists(st.tuples(round_infos, own_results), min_size=1, max_size=12),
    st.lists(prices, max_size=6),
)
def test_quotes_within_limit_and_tariffs(
    side: str,
    limit: float,
    attitude: str | float,
    infos: list[tuple[RoundInfo, OwnResult]],
    past: list[float],
) -> None:
    spec = TraderSpec(3, "buy" if side == "buy" else "sell", limit, attitude, P_MIN, P_MAX)
    trader = AATrader(spec)
    view = PublicView(0, 0, 5, P_MIN, P_MAX, past_trade_prices=past)
    for k, (info, own) in enumerate(infos):
        view.round = k % 5
        view.interval = k // 5
        if view.round == 0:
            view.history = []
        price = trader.quote(view)
        assert P_MIN <= price <= P_MAX
        assert price <= limit if side == "buy" else price >= limit
        trader.observe(view, info, own)
        view.history.append(info)
        assert -1.0 <= trader.r <= 1.0 and -8.0 <= trader.theta <= 2.0


def test_limit_outside_tariffs_wins() -> None:
    view = PublicView(0, 0, 5, P_MIN, P_MAX)
    low_buyer = AATrader(TraderSpec(1, "buy", 0.04, "averse", P_MIN, P_MAX))
    assert low_buyer.quote(view) == 0.04  # a buyer never bids above its limit
    high_seller = AATrader(TraderSpec(2, "sell", 0.31, "seeking", P_MIN, P_MAX))
    assert high_seller.quote(view) == 0.31  # a seller never asks below its limit


# ---------------------------------------------------------------- vectorised and protocol


def test_population_equals_one_row_traders() -> None:
    """Rows of one population and one-row traders (the registry's AATrader) that see the
    same views and results quote the same, bit for bit."""
    rng = np.random.default_rng(5)
    specs = []
    for i in range(40):
        side: Literal["buy", "sell"] = "buy" if i % 2 == 0 else "sell"
        names: list[str | float] = ["averse", "neutral", "seeking", float(rng.uniform(-1, 1))]
        specs.append(
            TraderSpec(i, side, float(rng.uniform(0.02, 0.33)), names[i % 4], P_MIN, P_MAX)
        )
    population = AAPopulation(specs)
    traders = [AATrader(spec) for spec in specs]
    rows = np.arange(len(specs))
    for k in range(30):
        view = PublicView(k // 5, k % 5, 5, P_MIN, P_MAX)
        quotes = population.quote_rows(rows, [view] * len(specs))
        assert quotes.tolist() == [t.quote(view) for t in traders]
        prices = tuple(rng.uniform(0.1, 0.25, int(rng.integers(0, 3))).tolist())
        info = RoundInfo(float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.05, 0.25)), prices)
        outcomes = rng.integers(0, 4, len(specs))
        own = [
            OwnResult(
                int(o),
                1000,
                1000 if o == FILLED else 0,
                prices[0] if o == FILLED and prices else None,
            )
            for o in outcomes
        ]
        population.observe_rows(rows, [view] * len(specs), [info] * len(specs), own)
        for trader, mine in zip(traders, own, strict=True):
            trader.observe(view, info, mine)
    assert population.r.tolist() == [t.r for t in traders]
    assert np.ptp(population.r) > 0.1  # the run did move the traders


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


def test_cold_start_probes_with_the_limit() -> None:
    """No trade price ever seen: the first quote is the limit (no fixed point of the band)."""
    view = PublicView(0, 0, 5, P_MIN, P_MAX)
    assert AATrader(TraderSpec(1, "buy", 0.26, "neutral", P_MIN, P_MAX)).quote(view) == 0.26
    assert AATrader(TraderSpec(2, "sell", 0.11, "averse", P_MIN, P_MAX)).quote(view) == 0.11


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
