"""Adaptive-Aggressive (AA) trader of Vytelingum, Cliff & Jennings (2008), for a call market.

Registered as strategy ``"aa"``. One :class:`AATrader` prices one member's order on
one side; it persists across intervals, so the long-term shape parameter theta and
the aggressiveness r carry over. :class:`AAPopulation` is the same algorithm on
numpy arrays (one row per trader) for large markets and the benchmark; both give
the same prices (tested).

Notation: limit price ``l``, aggressiveness ``r`` in [-1, 1], shape ``theta``,
market bounds ``P_min`` = feed-in tariff and ``P_max`` = retail tariff, and
``f(s, th) = (exp(s th) - 1) / (exp(th) - 1)`` (``f(s, 0) = s``).

Equilibrium estimate
    ``p* = sum_k rho^k p_(T-k) / sum_k rho^k`` over the last ``N`` round prices,
    newest first (k = 0). A *round price* is the mean trade price of one round that
    cleared something (with the uniform rule every trade of a round has the same
    price); indicative and binding rounds both count, and a trader created late is
    seeded from ``PublicView.past_trade_prices``. Before any trade: the midpoint of
    the latest best bid and best ask if both exist, else ``(P_min + P_max) / 2``.

Target price tau(r) (the paper's formulas with the buyer's floor 0 generalised to
``P_min``; with ``P_min = 0`` they are exactly the paper's)
    buyer,  l > p*:  r >= 0: p* + (l - p*) f(r, th);   r < 0: P_min + (p* - P_min)(1 - f(-r, thb))
    buyer,  l <= p*: r >= 0: l;                        r < 0: P_min + (l - P_min)(1 - f(-r, th))
    seller, l < p*:  r >= 0: l + (p* - l)(1 - f(r, th)); r < 0: p* + (P_max - p*) f(-r, thb)
    seller, l >= p*: r >= 0: l;                        r < 0: l + (P_max - l) f(-r, th)
    ``thb`` makes d tau / d r continuous at r = 0:
    buyer ``thb (p* - P_min) / (e^thb - 1) = th (l - p*) / (e^th - 1)``, seller
    ``thb (P_max - p*) / (e^thb - 1) = th (p* - l) / (e^th - 1)``; solved by Newton on
    ``ln(x / (e^x - 1))`` (concave and decreasing, so Newton converges monotonically
    after the first step; at most 10 iterations) and cached while (p*, theta) are
    unchanged. Buyers' tau increases with r, sellers' decreases (weakly).

Short-term learning (after every round)
    ``r_shout`` solves tau(r_shout) = q in closed form (``f`` is inverted exactly,
    ``f^-1(y, th) = ln(1 + y (e^th - 1)) / th``), clipped to [-1, 1].
    q is the round price if the round cleared, else the best bid (buyers) or best
    ask (sellers). Buyer: after a trade, tau >= q -> less aggressive, else more; no
    trade and best bid >= tau -> more. Seller: after a trade, tau <= q -> less
    aggressive, else more; no trade and best ask <= tau -> more.
    more: ``delta = (1 + lambda_r_up) r_shout + lambda_a_up``;
    less: ``delta = (1 - lambda_r_dn) r_shout - lambda_a_dn``;
    ``r <- r + beta1 (delta - r)``. The lambdas and beta1 come from the risk attitude
    (:mod:`gridledger.bidding.risk`); lambda_a is in units of r, which is already
    normalised to the price range.

Long-term learning (after every round that cleared)
    ``alpha = sqrt(mean_k (p_k - p*)^2) / p*`` over the same N round prices;
    ``alpha_bar = (alpha - alpha_min) / (alpha_max - alpha_min)`` with the running
    min/max of alpha (no update while they are equal);
    ``th* = (th_max - th_min)(1 - alpha_bar e^(gamma (alpha_bar - 1))) + th_min``;
    ``theta <- theta + beta2 (th* - theta)``.

Bid formation (call-market adaptation of the paper's CDA rule; o_bid / o_ask are the
best bid and ask of the previous round, or of the last round of the previous
interval in round 0, ``[P_min, P_max]`` when none was ever seen)
    no trade seen yet: buyer ``b = o_bid + (min(l, (1 + lambda_r) o_ask + lambda_a_price) - o_bid) / eta``,
    seller ``a = o_ask - (o_ask - max(l, (1 - lambda_r) o_bid - lambda_a_price)) / eta``,
    with ``lambda_a_price = lambda_a_rel (P_max - P_min)`` (lambda_a scaled to the price range);
    afterwards, buyer: ``b = o_bid + (tau - o_bid) / eta`` if o_bid < tau else tau, raised
    to o_ask when o_ask <= tau; seller: ``a = o_ask - (o_ask - tau) / eta`` if o_ask > tau
    else tau, lowered to o_bid when o_bid >= tau. (In a CDA the paper's "accept the
    best ask" means trading at it; in a call market the matching action is to bid at
    least that ask, while a bid *equal* to the lowest ask would not clear against the
    other sellers.) Finally the price is clamped to [P_min, P_max] and then to the
    limit: a buyer never bids above l, a seller never asks below l.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gridledger.bidding.base import PublicView, RoundInfo, TraderSpec, register_strategy
from gridledger.bidding.risk import RiskProfile, risk_profile
from gridledger.errors import GridledgerError

__all__ = [
    "AAParams",
    "AAPopulation",
    "AATrader",
    "equilibrium_estimate",
    "shape",
    "shape_inverse",
    "shout_aggressiveness",
    "shout_aggressiveness_v",
    "smith_alpha",
    "solve_theta_bar",
    "solve_theta_bar_v",
    "target_price",
    "target_prices",
    "theta_star",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_SMALL_THETA = 1e-8
NEWTON_MAX_ITER = 10


@dataclass(frozen=True, slots=True)
class AAParams:
    """Algorithm constants (defaults: Vytelingum et al. 2008 and the BSE AA trader).

    ``theta0 = -2``: initial shape, inside [theta_min, theta_max] (BSE draws it from
    [-5, 0]; we take a fixed value for reproducibility). ``lambda_a_rel``: lambda_a
    of the first-round bid as a share of the price range (P_max - P_min).
    """

    eta: float = 3.0
    n_prices: int = 5
    rho: float = 0.9
    lambda_r: float = 0.05
    lambda_a_rel: float = 0.02
    beta2: float = 0.4
    gamma: float = 2.0
    theta_min: float = -8.0
    theta_max: float = 2.0
    theta0: float = -2.0


# ---------------------------------------------------------------------------
# scalar formulas


def shape(s: float, theta: float) -> float:
    """``f(s, th) = (e^(s th) - 1) / (e^th - 1)`` for s in [0, 1], overflow-safe."""
    if abs(theta) < _SMALL_THETA:
        return s
    if theta > 0.0:
        return math.exp(theta * (s - 1.0)) * math.expm1(-s * theta) / math.expm1(-theta)
    return math.expm1(s * theta) / math.expm1(theta)


def shape_inverse(y: float, theta: float) -> float:
    """The s in [0, 1] with ``f(s, theta) = y`` (y clipped to [0, 1])."""
    y = min(max(y, 0.0), 1.0)
    if abs(theta) < _SMALL_THETA:
        return y
    if theta > 0.0:
        inner = y + (1.0 - y) * math.exp(-theta)
        return 1.0 + math.log(inner) / theta if inner > 0.0 else 0.0
    arg = y * math.expm1(theta)
    if arg > -1.0:
        return math.log1p(arg) / theta
    inner = (1.0 - y) + y * math.exp(theta)  # y ~ 1 and e^theta below the float resolution
    return math.log(inner) / theta if inner > 0.0 else 1.0


def _log_g(x: float) -> float:
    """``ln(x / (e^x - 1))`` (= 0 at x = 0)."""
    if abs(x) < 1e-6:
        return -x / 2.0 + x * x / 24.0
    if x > 0.0:
        return math.log(x) - x - math.log(-math.expm1(-x))
    return math.log(-x) - math.log(-math.expm1(x))


def _dlog_g(x: float) -> float:
    """Derivative of :func:`_log_g`: ``1/x - 1/(1 - e^-x)``."""
    if abs(x) < 1e-6:
        return -0.5 + x / 6.0
    if x < -700.0:
        return 1.0 / x
    return 1.0 / x + 1.0 / math.expm1(-x)


def _theta_bar_start(log_c: float) -> float:
    if log_c <= 0.0:  # root x >= 0: ln g ~ ln x - x
        return -log_c + math.log1p(-log_c)
    return -max(2.0 * log_c, math.expm1(log_c))  # root x < 0: ln g ~ -x/2 near 0, ln(-x) far


def solve_theta_bar(theta: float, near: float, far: float, start: float | None = None) -> float:
    """thb with ``thb far / (e^thb - 1) = theta near / (e^theta - 1)``.

    Buyer: near = l - p*, far = p* - P_min; seller: near = p* - l, far = P_max - p*.
    Newton on ``ln(x / (e^x - 1)) = ln c`` (at most 10 iterations) from ``start`` (a
    previous root, e.g. the cached one) or an asymptotic first guess. When ``near`` or
    ``far`` is not positive the r < 0 branch has zero width and theta is returned.
    """
    if near <= 0.0 or far <= 0.0:
        return theta
    log_c = _log_g(theta) + math.log(near) - math.log(far)
    x = _theta_bar_start(log_c) if start is None or not math.isfinite(start) else start
    for _ in range(NEWTON_MAX_ITER):
        step = (_log_g(x) - log_c) / _dlog_g(x)
        x -= step
        if abs(step) <= 1e-13 * (1.0 + abs(x)):
            break
    return x


def target_price(
    is_buyer: bool,
    r: float,
    limit: float,
    p_star: float,
    theta: float,
    theta_bar: float,
    p_min: float,
    p_max: float,
) -> float:
    """tau(r) of the module docstring (no clamping)."""
    if is_buyer:
        if limit > p_star:
            if r >= 0.0:
                return p_star + (limit - p_star) * shape(r, theta)
            return p_min + (p_star - p_min) * (1.0 - shape(-r, theta_bar))
        if r >= 0.0:
            return limit
        return p_min + (limit - p_min) * (1.0 - shape(-r, theta))
    if limit < p_star:
        if r >= 0.0:
            return limit + (p_star - limit) * (1.0 - shape(r, theta))
        return p_star + (p_max - p_star) * shape(-r, theta_bar)
    if r >= 0.0:
        return limit
    return limit + (p_max - limit) * shape(-r, theta)


def _share(num: float, den: float) -> float:
    return 1.0 if den <= 0.0 else min(max(num / den, 0.0), 1.0)


def shout_aggressiveness(
    is_buyer: bool,
    q: float,
    limit: float,
    p_star: float,
    theta: float,
    theta_bar: float,
    p_min: float,
    p_max: float,
) -> float:
    """r_shout with tau(r_shout) = q (clipped to [-1, 1]; 0 where tau is flat at l)."""
    if is_buyer:
        if limit > p_star:
            if q >= p_star:
                return shape_inverse(_share(q - p_star, limit - p_star), theta)
            return -shape_inverse(_share(p_star - q, p_star - p_min), theta_bar)
        if q >= limit:
            return 0.0
        return -shape_inverse(_share(limit - q, limit - p_min), theta)
    if limit < p_star:
        if q <= p_star:
            return shape_inverse(_share(p_star - q, p_star - limit), theta)
        return -shape_inverse(_share(q - p_star, p_max - p_star), theta_bar)
    if q <= limit:
        return 0.0
    return -shape_inverse(_share(q - limit, p_max - limit), theta)


def equilibrium_estimate(prices_newest_last: Sequence[float], rho: float) -> float:
    """``sum_k rho^k p_(T-k) / sum_k rho^k`` (k = 0 the newest price)."""
    num = den = 0.0
    w = 1.0
    for p in reversed(prices_newest_last):
        num += w * p
        den += w
        w *= rho
    return num / den


def smith_alpha(prices: Sequence[float], p_ref: float) -> float:
    """Smith's alpha ``sqrt(mean (p - p_ref)^2) / p_ref``."""
    return math.sqrt(sum((p - p_ref) ** 2 for p in prices) / len(prices)) / p_ref


def theta_star(alpha_bar: float, params: AAParams) -> float:
    """Desired theta for a normalised volatility alpha_bar in [0, 1]."""
    span = params.theta_max - params.theta_min
    return span * (1.0 - alpha_bar * math.exp(params.gamma * (alpha_bar - 1.0))) + params.theta_min


def _check_market(spec_name: str, p_min: float, p_max: float) -> None:
    if not (math.isfinite(p_min) and math.isfinite(p_max) and p_max > p_min):
        message = (
            f"{spec_name}: need feed_in_per_kwh < retail_per_kwh (finite), "
            f"got feed-in {p_min!r}, retail {p_max!r}"
        )
        raise GridledgerError(message)


# ---------------------------------------------------------------------------
# the trader


@dataclass
class _Book:
    best_bid: float | None = None
    best_ask: float | None = None


@dataclass
class AATrader:
    """AA pricing for one member and one side (see the module docstring)."""

    spec: TraderSpec
    rng: np.random.Generator | None = None
    params: AAParams = field(default_factory=AAParams)
    profile: RiskProfile = field(init=False)
    r: float = field(init=False)
    theta: float = field(init=False)
    alpha_min: float = field(init=False, default=math.inf)
    alpha_max: float = field(init=False, default=-math.inf)
    prices: deque[float] = field(init=False)
    book: _Book = field(init=False, default_factory=_Book)
    is_buyer: bool = field(init=False)
    p_min: float = field(init=False)
    p_max: float = field(init=False)
    limit: float = field(init=False)
    _theta_bar_key: tuple[float, float] = field(init=False, default=(math.nan, math.nan))
    _theta_bar: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        s = self.spec
        if s.side not in ("buy", "sell"):
            message = f"member {s.member}: side {s.side!r} must be 'buy' or 'sell'"
            raise GridledgerError(message)
        _check_market(f"member {s.member}", s.feed_in_per_kwh, s.retail_per_kwh)
        if not math.isfinite(s.limit_price_per_kwh):
            message = (
                f"member {s.member}: limit_price_per_kwh={s.limit_price_per_kwh!r} is not finite"
            )
            raise GridledgerError(message)
        self.profile = risk_profile(s.risk_attitude)
        self.r = self.profile.r0
        self.theta = self.params.theta0
        self.prices = deque(maxlen=self.params.n_prices)
        self.is_buyer = s.side == "buy"
        self.p_min, self.p_max = s.feed_in_per_kwh, s.retail_per_kwh
        # the limit used inside tau; the final price is still capped by the raw limit
        self.limit = min(max(s.limit_price_per_kwh, self.p_min), self.p_max)

    # -- estimates -----------------------------------------------------------

    def _seed(self, view: PublicView) -> None:
        if not self.prices and view.past_trade_prices:
            self.prices.extend(view.past_trade_prices[-self.params.n_prices :])

    def p_star(self) -> float:
        """Current equilibrium estimate (fallback before any trade: see module doc)."""
        if self.prices:
            return equilibrium_estimate(self.prices, self.params.rho)
        b, a = self.book.best_bid, self.book.best_ask
        if b is not None and a is not None:
            return min(max((b + a) / 2.0, self.p_min), self.p_max)
        return (self.p_min + self.p_max) / 2.0

    def theta_bar(self, p_star: float) -> float:
        key = (p_star, self.theta)
        if key != self._theta_bar_key:
            if self.is_buyer:
                near, far = self.limit - p_star, p_star - self.p_min
            else:
                near, far = p_star - self.limit, self.p_max - p_star
            warm = self._theta_bar if near > 0.0 and far > 0.0 else None
            self._theta_bar = solve_theta_bar(self.theta, near, far, warm)
            self._theta_bar_key = key
        return self._theta_bar

    def target(self, p_star: float | None = None) -> float:
        """tau at the current aggressiveness."""
        p = self.p_star() if p_star is None else p_star
        return target_price(
            self.is_buyer,
            self.r,
            self.limit,
            p,
            self.theta,
            self.theta_bar(p),
            self.p_min,
            self.p_max,
        )

    # -- protocol -------------------------------------------------------------

    def quote(self, view: PublicView) -> float:
        self._seed(view)
        if view.history:
            last = view.history[-1]
            self.book = _Book(last.best_bid, last.best_ask)
        o_bid = self.book.best_bid if self.book.best_bid is not None else self.p_min
        o_ask = self.book.best_ask if self.book.best_ask is not None else self.p_max
        eta = self.params.eta
        if not self.prices:
            lam_a = self.params.lambda_a_rel * (self.p_max - self.p_min)
            lam_r = self.params.lambda_r
            if self.is_buyer:
                price = o_bid + (min(self.limit, (1 + lam_r) * o_ask + lam_a) - o_bid) / eta
            else:
                price = o_ask - (o_ask - max(self.limit, (1 - lam_r) * o_bid - lam_a)) / eta
        else:
            tau = self.target()
            if self.is_buyer:
                price = o_bid + (tau - o_bid) / eta if o_bid < tau else tau
                if o_ask <= tau:
                    price = max(price, o_ask)
            else:
                price = o_ask - (o_ask - tau) / eta if o_ask > tau else tau
                if o_bid >= tau:
                    price = min(price, o_bid)
        return self._clamp(price)

    def _clamp(self, price: float) -> float:
        price = min(max(price, self.p_min), self.p_max)
        lim = self.spec.limit_price_per_kwh
        return min(price, lim) if self.is_buyer else max(price, lim)

    def observe(self, view: PublicView, info: RoundInfo) -> None:
        self._seed(view)
        self.book = _Book(info.best_bid, info.best_ask)
        traded = bool(info.trade_prices)
        if traded:
            q = math.fsum(info.trade_prices) / len(info.trade_prices)
            self.prices.append(q)
            self._learn_theta()
        else:
            q_opt = self._no_trade_reference(info)
            if q_opt is None:
                return
            q = q_opt
        p = self.p_star()
        tau = self.target(p)
        if self.is_buyer:
            more = tau < q if traded else q >= tau
        else:
            more = tau > q if traded else q <= tau
        r_shout = shout_aggressiveness(
            self.is_buyer, q, self.limit, p, self.theta, self.theta_bar(p), self.p_min, self.p_max
        )
        prof = self.profile
        if traded and not more and self.r <= r_shout + _hold_band(r_shout, prof):
            return  # call-market hold band: traded with a margin smaller than one step
        self.r = _update_r(self.r, r_shout, more, prof)

    def _no_trade_reference(self, info: RoundInfo) -> float | None:
        """Reference price q after a round without trade (see module doc)."""
        tau = self.target()
        own, other = (
            (info.best_bid, info.best_ask) if self.is_buyer else (info.best_ask, info.best_bid)
        )
        if other is not None and (other > tau if self.is_buyer else other < tau):
            return other
        return own

    def _learn_theta(self) -> None:
        p = self.p_star()
        if p <= 0.0:
            return
        alpha = smith_alpha(self.prices, p)
        self.alpha_min = min(self.alpha_min, alpha)
        self.alpha_max = max(self.alpha_max, alpha)
        if self.alpha_max - self.alpha_min <= 1e-12:
            return
        alpha_bar = (alpha - self.alpha_min) / (self.alpha_max - self.alpha_min)
        th = self.theta + self.params.beta2 * (theta_star(alpha_bar, self.params) - self.theta)
        self.theta = min(max(th, self.params.theta_min), self.params.theta_max)


def _hold_band(r_shout: float, prof: RiskProfile) -> float:
    return prof.lambda_a_up + prof.lambda_r_up * abs(r_shout)


def _update_r(r: float, r_shout: float, more: bool, prof: RiskProfile) -> float:
    if more:
        delta = (1.0 + prof.lambda_r_up) * r_shout + prof.lambda_a_up
    else:
        delta = (1.0 - prof.lambda_r_down) * r_shout - prof.lambda_a_down
    delta = min(max(delta, -1.0), 1.0)
    return min(max(r + prof.beta1 * (delta - r), -1.0), 1.0)


register_strategy("aa")(AATrader)


# ---------------------------------------------------------------------------
# vectorised: the same algorithm on arrays (one row per trader)


def _shape_v(s: FloatArray, theta: FloatArray) -> FloatArray:
    pos = theta > _SMALL_THETA
    neg = theta < -_SMALL_THETA
    th_p = np.where(pos, theta, 1.0)
    th_n = np.where(neg, theta, -1.0)
    out_p = np.exp(th_p * (s - 1.0)) * np.expm1(-s * th_p) / np.expm1(-th_p)
    out_n = np.expm1(s * th_n) / np.expm1(th_n)
    return np.where(pos, out_p, np.where(neg, out_n, s))


def _shape_inverse_v(y: FloatArray, theta: FloatArray) -> FloatArray:
    y = np.clip(y, 0.0, 1.0)
    pos = theta > _SMALL_THETA
    neg = theta < -_SMALL_THETA
    th_p = np.where(pos, theta, 1.0)
    th_n = np.where(neg, theta, -1.0)
    inner = y + (1.0 - y) * np.exp(-th_p)
    with np.errstate(divide="ignore"):
        out_p = np.where(inner > 0.0, 1.0 + np.log(np.maximum(inner, 1e-300)) / th_p, 0.0)
    arg = y * np.expm1(th_n)
    inner_n = (1.0 - y) + y * np.exp(th_n)
    out_n = np.where(
        arg > -1.0,
        np.log1p(np.where(arg > -1.0, arg, 0.0)) / th_n,
        np.where(inner_n > 0.0, np.log(np.maximum(inner_n, 1e-300)) / th_n, 1.0),
    )
    return np.where(pos, out_p, np.where(neg, out_n, y))


def _log_g_v(x: FloatArray) -> FloatArray:
    small = np.abs(x) < 1e-6
    xp = np.where(x >= 1e-6, x, 1.0)
    xn = np.where(x <= -1e-6, x, -1.0)
    out_p = np.log(xp) - xp - np.log(-np.expm1(-xp))
    out_n = np.log(-xn) - np.log(-np.expm1(xn))
    return np.where(small, -x / 2.0 + x * x / 24.0, np.where(x > 0.0, out_p, out_n))


def _dlog_g_v(x: FloatArray) -> FloatArray:
    small = np.abs(x) < 1e-6
    very_neg = x < -700.0
    xs = np.where(small | very_neg, 1.0, x)
    out = 1.0 / xs + 1.0 / np.expm1(-xs)
    return np.where(
        small, -0.5 + x / 6.0, np.where(very_neg, 1.0 / np.where(very_neg, x, 1.0), out)
    )


def solve_theta_bar_v(theta: FloatArray, near: FloatArray, far: FloatArray) -> FloatArray:
    """Array version of :func:`solve_theta_bar` (same start, at most 10 Newton steps)."""
    valid = (near > 0.0) & (far > 0.0)
    near_s = np.where(valid, near, 1.0)
    far_s = np.where(valid, far, 1.0)
    log_c = _log_g_v(theta) + np.log(near_s) - np.log(far_s)
    lc_pos = np.maximum(log_c, 0.0)
    lc_neg = np.minimum(log_c, 0.0)
    x = np.where(
        log_c <= 0.0,
        -lc_neg + np.log1p(-lc_neg),
        -np.maximum(2.0 * lc_pos, np.expm1(np.minimum(lc_pos, 700.0))),
    )
    active = valid.copy()
    for _ in range(NEWTON_MAX_ITER):
        step = (_log_g_v(x) - log_c) / _dlog_g_v(x)
        x = np.where(active, x - step, x)
        active &= np.abs(step) > 1e-13 * (1.0 + np.abs(x))
        if not active.any():
            break
    return np.where(valid, x, theta)


def target_prices(
    is_buyer: BoolArray,
    r: FloatArray,
    limit: FloatArray,
    p_star: float,
    theta: FloatArray,
    theta_bar: FloatArray,
    p_min: float,
    p_max: float,
) -> FloatArray:
    """Array version of :func:`target_price` (one row per trader, shared p*)."""
    up = r >= 0.0
    s_up = np.where(up, r, 0.0)
    s_dn = np.where(up, 0.0, -r)
    f_up = _shape_v(s_up, theta)
    f_dn_bar = _shape_v(s_dn, theta_bar)
    f_dn = _shape_v(s_dn, theta)
    buy_intra = np.where(
        up, p_star + (limit - p_star) * f_up, p_min + (p_star - p_min) * (1.0 - f_dn_bar)
    )
    buy_extra = np.where(up, limit, p_min + (limit - p_min) * (1.0 - f_dn))
    sell_intra = np.where(
        up, limit + (p_star - limit) * (1.0 - f_up), p_star + (p_max - p_star) * f_dn_bar
    )
    sell_extra = np.where(up, limit, limit + (p_max - limit) * f_dn)
    buy = np.where(limit > p_star, buy_intra, buy_extra)
    sell = np.where(limit < p_star, sell_intra, sell_extra)
    return np.where(is_buyer, buy, sell)


def _share_v(num: FloatArray, den: FloatArray) -> FloatArray:
    ok = den > 0.0
    return np.where(ok, np.clip(num / np.where(ok, den, 1.0), 0.0, 1.0), 1.0)


def shout_aggressiveness_v(
    is_buyer: BoolArray,
    q: FloatArray,
    limit: FloatArray,
    p_star: float,
    theta: FloatArray,
    theta_bar: FloatArray,
    p_min: float,
    p_max: float,
) -> FloatArray:
    """Array version of :func:`shout_aggressiveness`."""
    inv = _shape_inverse_v
    buy_intra = np.where(
        q >= p_star,
        inv(_share_v(q - p_star, limit - p_star), theta),
        -inv(_share_v(p_star - q, np.full_like(q, p_star - p_min)), theta_bar),
    )
    buy_extra = np.where(q >= limit, 0.0, -inv(_share_v(limit - q, limit - p_min), theta))
    sell_intra = np.where(
        q <= p_star,
        inv(_share_v(p_star - q, p_star - limit), theta),
        -inv(_share_v(q - p_star, np.full_like(q, p_max - p_star)), theta_bar),
    )
    sell_extra = np.where(q <= limit, 0.0, -inv(_share_v(q - limit, p_max - limit), theta))
    buy = np.where(limit > p_star, buy_intra, buy_extra)
    sell = np.where(limit < p_star, sell_intra, sell_extra)
    return np.where(is_buyer, buy, sell)


class AAPopulation:
    """Many AA traders priced together; same results as one :class:`AATrader` each.

    All traders share one market (tariffs) and see the same public information, so
    the price memory, p* and the volatility statistics are shared; r, theta and the
    risk parameters are per trader. Use it where one member set is priced as a
    block (large markets, the benchmark): ``quote`` returns one price per spec.
    """

    def __init__(self, specs: Sequence[TraderSpec], params: AAParams | None = None) -> None:
        if not specs:
            message = "AAPopulation needs at least one TraderSpec, got none"
            raise GridledgerError(message)
        self.specs = list(specs)
        self.params = params or AAParams()
        self.p_min, self.p_max = specs[0].feed_in_per_kwh, specs[0].retail_per_kwh
        _check_market("AAPopulation", self.p_min, self.p_max)
        for s in specs:
            if (s.feed_in_per_kwh, s.retail_per_kwh) != (self.p_min, self.p_max):
                message = (
                    f"member {s.member}: tariffs ({s.feed_in_per_kwh}, {s.retail_per_kwh}) "
                    f"differ from the population's ({self.p_min}, {self.p_max})"
                )
                raise GridledgerError(message)
            if s.side not in ("buy", "sell"):
                message = f"member {s.member}: side {s.side!r} must be 'buy' or 'sell'"
                raise GridledgerError(message)
        profiles = [risk_profile(s.risk_attitude) for s in specs]
        self.is_buyer: BoolArray = np.array([s.side == "buy" for s in specs], dtype=bool)
        self.limit_raw: FloatArray = np.array([s.limit_price_per_kwh for s in specs], dtype=float)
        self.limit: FloatArray = np.clip(self.limit_raw, self.p_min, self.p_max)
        self.r: FloatArray = np.array([p.r0 for p in profiles], dtype=float)
        self.theta: FloatArray = np.full(len(specs), self.params.theta0)
        self.beta1 = np.array([p.beta1 for p in profiles])
        self.lr_up = np.array([p.lambda_r_up for p in profiles])
        self.la_up = np.array([p.lambda_a_up for p in profiles])
        self.lr_dn = np.array([p.lambda_r_down for p in profiles])
        self.la_dn = np.array([p.lambda_a_down for p in profiles])
        self.prices: deque[float] = deque(maxlen=self.params.n_prices)
        self.alpha_min, self.alpha_max = math.inf, -math.inf
        self.book = _Book()
        self._tb_key: tuple[float, int] = (math.nan, -1)
        self._tb: FloatArray = self.theta.copy()
        self._theta_version = 0

    def _seed(self, view: PublicView) -> None:
        if not self.prices and view.past_trade_prices:
            self.prices.extend(view.past_trade_prices[-self.params.n_prices :])

    def p_star(self) -> float:
        if self.prices:
            return equilibrium_estimate(self.prices, self.params.rho)
        b, a = self.book.best_bid, self.book.best_ask
        if b is not None and a is not None:
            return min(max((b + a) / 2.0, self.p_min), self.p_max)
        return (self.p_min + self.p_max) / 2.0

    def theta_bar(self, p_star: float) -> FloatArray:
        key = (p_star, self._theta_version)
        if key != self._tb_key:
            near = np.where(self.is_buyer, self.limit - p_star, p_star - self.limit)
            far = np.where(self.is_buyer, p_star - self.p_min, self.p_max - p_star)
            self._tb = solve_theta_bar_v(self.theta, near, far)
            self._tb_key = key
        return self._tb

    def targets(self, p_star: float | None = None) -> FloatArray:
        p = self.p_star() if p_star is None else p_star
        return target_prices(
            self.is_buyer,
            self.r,
            self.limit,
            p,
            self.theta,
            self.theta_bar(p),
            self.p_min,
            self.p_max,
        )

    def quote(self, view: PublicView) -> FloatArray:
        """Prices (tokens/kWh) of every trader's order in the coming round."""
        self._seed(view)
        if view.history:
            last = view.history[-1]
            self.book = _Book(last.best_bid, last.best_ask)
        o_bid = self.book.best_bid if self.book.best_bid is not None else self.p_min
        o_ask = self.book.best_ask if self.book.best_ask is not None else self.p_max
        eta = self.params.eta
        if not self.prices:
            lam_a = self.params.lambda_a_rel * (self.p_max - self.p_min)
            lam_r = self.params.lambda_r
            buy = o_bid + (np.minimum(self.limit, (1 + lam_r) * o_ask + lam_a) - o_bid) / eta
            sell = o_ask - (o_ask - np.maximum(self.limit, (1 - lam_r) * o_bid - lam_a)) / eta
        else:
            tau = self.targets()
            buy = np.where(o_bid < tau, o_bid + (tau - o_bid) / eta, tau)
            buy = np.where(o_ask <= tau, np.maximum(buy, o_ask), buy)
            sell = np.where(o_ask > tau, o_ask - (o_ask - tau) / eta, tau)
            sell = np.where(o_bid >= tau, np.minimum(sell, o_bid), sell)
        price = np.clip(np.where(self.is_buyer, buy, sell), self.p_min, self.p_max)
        return np.where(
            self.is_buyer, np.minimum(price, self.limit_raw), np.maximum(price, self.limit_raw)
        )

    def observe(self, view: PublicView, info: RoundInfo) -> None:
        """Learn from the public result of the round just finished."""
        self._seed(view)
        self.book = _Book(info.best_bid, info.best_ask)
        traded = bool(info.trade_prices)
        n = len(self.specs)
        if traded:
            q_round = math.fsum(info.trade_prices) / len(info.trade_prices)
            self.prices.append(q_round)
            self._learn_theta()
            q = np.full(n, q_round)
            has_q = np.ones(n, dtype=bool)
        else:
            qb = info.best_bid if info.best_bid is not None else math.nan
            qa = info.best_ask if info.best_ask is not None else math.nan
            tau0 = self.targets()
            own = np.where(self.is_buyer, qb, qa)
            other = np.where(self.is_buyer, qa, qb)
            use_other = ~np.isnan(other) & np.where(self.is_buyer, other > tau0, other < tau0)
            q = np.where(use_other, other, own)
            has_q = ~np.isnan(q)
            q = np.where(has_q, q, 0.0)
        p = self.p_star()
        tau = self.targets(p)
        if traded:
            more = np.where(self.is_buyer, tau < q, tau > q)
        else:
            more = np.where(self.is_buyer, q >= tau, q <= tau)
        r_shout = shout_aggressiveness_v(
            self.is_buyer, q, self.limit, p, self.theta, self.theta_bar(p), self.p_min, self.p_max
        )
        delta = np.where(
            more,
            (1.0 + self.lr_up) * r_shout + self.la_up,
            (1.0 - self.lr_dn) * r_shout - self.la_dn,
        )
        delta = np.clip(delta, -1.0, 1.0)
        r_new = np.clip(self.r + self.beta1 * (delta - self.r), -1.0, 1.0)
        band = self.la_up + self.lr_up * np.abs(r_shout)
        hold = traded & ~more & (self.r <= r_shout + band)
        self.r = np.where(has_q & ~hold, r_new, self.r)

    def _learn_theta(self) -> None:
        p = self.p_star()
        if p <= 0.0:
            return
        alpha = smith_alpha(self.prices, p)
        self.alpha_min = min(self.alpha_min, alpha)
        self.alpha_max = max(self.alpha_max, alpha)
        if self.alpha_max - self.alpha_min <= 1e-12:
            return
        alpha_bar = (alpha - self.alpha_min) / (self.alpha_max - self.alpha_min)
        th = self.theta + self.params.beta2 * (theta_star(alpha_bar, self.params) - self.theta)
        self.theta = np.clip(th, self.params.theta_min, self.params.theta_max)
        self._theta_version += 1
