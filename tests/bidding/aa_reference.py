"""Scalar reference of the AA formulas (shape, target price, shout aggressiveness,
theta_bar, equilibrium estimate, Smith's alpha, theta*), on plain floats with the ``math``
module. The array formulas of ``gridledger.bidding.aa_math`` must equal them bit for bit.

(The scalar per-member trader that used to live here was retired when the learning rules
changed to per-trader feedback, see docs/bidding.md; the formulas are unchanged.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gridledger.bidding.aa_math import NEWTON_MAX_ITER, AAParams
from gridledger.bidding.aa_math import SMALL_THETA as _SMALL_THETA

__all__ = [
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
