"""The scalar AA implementation that priced AA members before the vectorised population.

Same formulas as ``gridledger.bidding.aa_math`` on plain floats with the ``math`` module,
and the per-member trader built on them. The tests require the population to match it
bit for bit: that is what keeps the simulation's results unchanged.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gridledger.bidding.aa_math import NEWTON_MAX_ITER, AAParams
from gridledger.bidding.aa_math import SMALL_THETA as _SMALL_THETA
from gridledger.bidding.base import PublicView, RoundInfo, TraderSpec
from gridledger.bidding.risk import RiskProfile, risk_profile

__all__ = [
    "RefTrader",
    "ref_equilibrium_estimate",
    "ref_shape",
    "ref_shout_aggressiveness",
    "ref_smith_alpha",
    "ref_solve_theta_bar",
    "ref_target_price",
]


def ref_shape(s: float, theta: float) -> float:
    """``f(s, th) = (e^(s th) - 1) / (e^th - 1)`` for s in [0, 1], overflow-safe."""
    if abs(theta) < _SMALL_THETA:
        return s
    if theta > 0.0:
        return math.exp(theta * (s - 1.0)) * math.expm1(-s * theta) / math.expm1(-theta)
    return math.expm1(s * theta) / math.expm1(theta)


def ref_shape_inverse(y: float, theta: float) -> float:
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


def ref_log_g(x: float) -> float:
    """``ln(x / (e^x - 1))`` (= 0 at x = 0)."""
    if abs(x) < 1e-6:
        return -x / 2.0 + x * x / 24.0
    if x > 0.0:
        return math.log(x) - x - math.log(-math.expm1(-x))
    return math.log(-x) - math.log(-math.expm1(x))


def ref_dlog_g(x: float) -> float:
    """Derivative of :func:`_log_g`: ``1/x - 1/(1 - e^-x)``."""
    if abs(x) < 1e-6:
        return -0.5 + x / 6.0
    if x < -700.0:
        return 1.0 / x
    return 1.0 / x + 1.0 / math.expm1(-x)


def ref_theta_bar_start(log_c: float) -> float:
    if log_c <= 0.0:  # root x >= 0: ln g ~ ln x - x
        return -log_c + math.log1p(-log_c)
    return -max(2.0 * log_c, math.expm1(log_c))  # root x < 0: ln g ~ -x/2 near 0, ln(-x) far


def ref_solve_theta_bar(theta: float, near: float, far: float, start: float | None = None) -> float:
    """thb with ``thb far / (e^thb - 1) = theta near / (e^theta - 1)``.

    Buyer: near = l - p*, far = p* - P_min; seller: near = p* - l, far = P_max - p*.
    Newton on ``ln(x / (e^x - 1)) = ln c`` (at most 10 iterations) from ``start`` (a
    previous root, e.g. the cached one) or an asymptotic first guess. When ``near`` or
    ``far`` is not positive the r < 0 branch has zero width and theta is returned.
    """
    if near <= 0.0 or far <= 0.0:
        return theta
    log_c = ref_log_g(theta) + math.log(near) - math.log(far)
    x = ref_theta_bar_start(log_c) if start is None or not math.isfinite(start) else start
    for _ in range(NEWTON_MAX_ITER):
        step = (ref_log_g(x) - log_c) / ref_dlog_g(x)
        x -= step
        if abs(step) <= 1e-13 * (1.0 + abs(x)):
            break
    return x


def ref_target_price(
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
                return p_star + (limit - p_star) * ref_shape(r, theta)
            return p_min + (p_star - p_min) * (1.0 - ref_shape(-r, theta_bar))
        if r >= 0.0:
            return limit
        return p_min + (limit - p_min) * (1.0 - ref_shape(-r, theta))
    if limit < p_star:
        if r >= 0.0:
            return limit + (p_star - limit) * (1.0 - ref_shape(r, theta))
        return p_star + (p_max - p_star) * ref_shape(-r, theta_bar)
    if r >= 0.0:
        return limit
    return limit + (p_max - limit) * ref_shape(-r, theta)


def ref_share(num: float, den: float) -> float:
    return 1.0 if den <= 0.0 else min(max(num / den, 0.0), 1.0)


def ref_shout_aggressiveness(
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
                return ref_shape_inverse(ref_share(q - p_star, limit - p_star), theta)
            return -ref_shape_inverse(ref_share(p_star - q, p_star - p_min), theta_bar)
        if q >= limit:
            return 0.0
        return -ref_shape_inverse(ref_share(limit - q, limit - p_min), theta)
    if limit < p_star:
        if q <= p_star:
            return ref_shape_inverse(ref_share(p_star - q, p_star - limit), theta)
        return -ref_shape_inverse(ref_share(q - p_star, p_max - p_star), theta_bar)
    if q <= limit:
        return 0.0
    return -ref_shape_inverse(ref_share(q - limit, p_max - limit), theta)


def ref_equilibrium_estimate(prices_newest_last: Sequence[float], rho: float) -> float:
    """``sum_k rho^k p_(T-k) / sum_k rho^k`` (k = 0 the newest price)."""
    num = den = 0.0
    w = 1.0
    for p in reversed(prices_newest_last):
        num += w * p
        den += w
        w *= rho
    return num / den


def ref_smith_alpha(prices: Sequence[float], p_ref: float) -> float:
    """Smith's alpha ``sqrt(mean (p - p_ref)^2) / p_ref``."""
    return math.sqrt(sum((p - p_ref) ** 2 for p in prices) / len(prices)) / p_ref


def ref_theta_star(alpha_bar: float, params: AAParams) -> float:
    """Desired theta for a normalised volatility alpha_bar in [0, 1]."""
    span = params.theta_max - params.theta_min
    return span * (1.0 - alpha_bar * math.exp(params.gamma * (alpha_bar - 1.0))) + params.theta_min


@dataclass
class _Book:
    best_bid: float | None = None
    best_ask: float | None = None


@dataclass
class RefTrader:
    """The scalar AA trader the population replaced (one member, one side)."""

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
            return ref_equilibrium_estimate(self.prices, self.params.rho)
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
            self._theta_bar = ref_solve_theta_bar(self.theta, near, far, warm)
            self._theta_bar_key = key
        return self._theta_bar

    def target(self, p_star: float | None = None) -> float:
        """tau at the current aggressiveness."""
        p = self.p_star() if p_star is None else p_star
        return ref_target_price(
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
        r_shout = ref_shout_aggressiveness(
            self.is_buyer, q, self.limit, p, self.theta, self.theta_bar(p), self.p_min, self.p_max
        )
        prof = self.profile
        if traded and not more and self.r <= r_shout + ref_hold_band(r_shout, prof):
            return  # call-market hold band: traded with a margin smaller than one step
        self.r = ref_update_r(self.r, r_shout, more, prof)

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
        alpha = ref_smith_alpha(self.prices, p)
        self.alpha_min = min(self.alpha_min, alpha)
        self.alpha_max = max(self.alpha_max, alpha)
        if self.alpha_max - self.alpha_min <= 1e-12:
            return
        alpha_bar = (alpha - self.alpha_min) / (self.alpha_max - self.alpha_min)
        th = self.theta + self.params.beta2 * (ref_theta_star(alpha_bar, self.params) - self.theta)
        self.theta = min(max(th, self.params.theta_min), self.params.theta_max)


def ref_hold_band(r_shout: float, prof: RiskProfile) -> float:
    return prof.lambda_a_up + prof.lambda_r_up * abs(r_shout)


def ref_update_r(r: float, r_shout: float, more: bool, prof: RiskProfile) -> float:
    if more:
        delta = (1.0 + prof.lambda_r_up) * r_shout + prof.lambda_a_up
    else:
        delta = (1.0 - prof.lambda_r_down) * r_shout - prof.lambda_a_down
    delta = min(max(delta, -1.0), 1.0)
    return min(max(r + prof.beta1 * (delta - r), -1.0), 1.0)
