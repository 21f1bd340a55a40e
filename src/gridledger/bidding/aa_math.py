"""The formulas of the Adaptive-Aggressive trader, on arrays (one element per trader).

Notation and formulas: :mod:`gridledger.bidding.adaptive_aggressive`, docs/bidding.md and
docs/methods.md. Every function here takes numpy arrays of equal shape (per-trader values)
and Python floats (market bounds, parameters) and returns an array.

Bit-exactness. The functions repeat the arithmetic of the scalar formulas in the same
order (each numpy operation is one IEEE operation per element, as in Python), and they
evaluate ``exp``, ``expm1``, ``log``, ``log1p`` and ``pow`` with Python's ``math`` module
(the C library) element by element, through :func:`_libm`: numpy's own SIMD versions of
these functions differ from the C library in the last bit for a few percent of
arguments, and AA feeds its prices back into its learning, so such a difference would
grow into different bids. Each branch of a formula is evaluated only on the elements
that take it (as the scalar ``if`` would), so no function sees an argument outside its
domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "NEWTON_MAX_ITER",
    "SMALL_THETA",
    "AAParams",
    "BoolArray",
    "FloatArray",
    "libm_square",
    "shape",
    "shape_inverse",
    "shout_aggressiveness",
    "solve_theta_bar",
    "target_prices",
    "theta_star",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.intp]

SMALL_THETA = 1e-8
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


def _libm(fn: Callable[[float], float], x: FloatArray) -> FloatArray:
    """``fn`` (a ``math`` function) applied to every element, as the C library computes it."""
    return np.fromiter(map(fn, x.ravel().tolist()), np.float64, count=x.size).reshape(x.shape)


def _square(v: float) -> float:
    return v**2


def libm_square(x: FloatArray) -> FloatArray:
    """``x ** 2`` as Python computes it for a float (the C library's ``pow``, not ``x * x``)."""
    return _libm(_square, x)


def shape(s: FloatArray, theta: FloatArray) -> FloatArray:
    """``f(s, th) = (e^(s th) - 1) / (e^th - 1)`` for s in [0, 1], overflow-safe."""
    s = np.asarray(s, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    out = s.copy()
    flat = np.abs(theta) < SMALL_THETA
    pos = ~flat & (theta > 0.0)
    neg = ~flat & ~(theta > 0.0)
    if pos.any():
        sp, tp = s[pos], theta[pos]
        out[pos] = (
            _libm(math.exp, tp * (sp - 1.0)) * _libm(math.expm1, -sp * tp) / _libm(math.expm1, -tp)
        )
    if neg.any():
        sn, tn = s[neg], theta[neg]
        out[neg] = _libm(math.expm1, sn * tn) / _libm(math.expm1, tn)
    return out


def _ln_or(inner: FloatArray, theta: FloatArray, fallback: float) -> FloatArray:
    """``ln(inner) / theta`` where inner > 0, else ``fallback``."""
    out = np.full(inner.shape, fallback)
    ok = inner > 0.0
    if ok.any():
        out[ok] = _libm(math.log, inner[ok]) / theta[ok]
    return out


def shape_inverse(y: FloatArray, theta: FloatArray) -> FloatArray:
    """The s in [0, 1] with ``f(s, theta) = y`` (y clipped to [0, 1])."""
    y = np.minimum(np.maximum(np.asarray(y, dtype=np.float64), 0.0), 1.0)
    theta = np.asarray(theta, dtype=np.float64)
    out = y.copy()
    flat = np.abs(theta) < SMALL_THETA
    pos = ~flat & (theta > 0.0)
    neg = ~flat & ~(theta > 0.0)
    if pos.any():
        yp, tp = y[pos], theta[pos]
        inner = yp + (1.0 - yp) * _libm(math.exp, -tp)
        ok = inner > 0.0
        res = np.zeros(yp.shape)
        if ok.any():
            res[ok] = 1.0 + _libm(math.log, inner[ok]) / tp[ok]
        out[pos] = res
    if neg.any():
        yn, tn = y[neg], theta[neg]
        arg = yn * _libm(math.expm1, tn)
        above = arg > -1.0
        res = np.empty(yn.shape)
        if above.any():
            res[above] = _libm(math.log1p, arg[above]) / tn[above]
        below = ~above
        if below.any():
            # y ~ 1 and e^theta below the float resolution
            yb, tb = yn[below], tn[below]
            res[below] = _ln_or((1.0 - yb) + yb * _libm(math.exp, tb), tb, 1.0)
        out[neg] = res
    return out


def _log_g(x: FloatArray) -> FloatArray:
    """``ln(x / (e^x - 1))`` (= 0 at x = 0)."""
    out = np.empty(x.shape)
    small = np.abs(x) < 1e-6
    pos = ~small & (x > 0.0)
    neg = ~small & ~(x > 0.0)
    xs = x[small]
    out[small] = -xs / 2.0 + xs * xs / 24.0
    if pos.any():
        xp = x[pos]
        out[pos] = _libm(math.log, xp) - xp - _libm(math.log, -_libm(math.expm1, -xp))
    if neg.any():
        xn = x[neg]
        out[neg] = _libm(math.log, -xn) - _libm(math.log, -_libm(math.expm1, xn))
    return out


def _dlog_g(x: FloatArray) -> FloatArray:
    """Derivative of :func:`_log_g`: ``1/x - 1/(1 - e^-x)``."""
    out = np.empty(x.shape)
    small = np.abs(x) < 1e-6
    far_neg = ~small & (x < -700.0)
    other = ~small & ~far_neg
    out[small] = -0.5 + x[small] / 6.0
    out[far_neg] = 1.0 / x[far_neg]
    if other.any():
        xo = x[other]
        out[other] = 1.0 / xo + 1.0 / _libm(math.expm1, -xo)
    return out


def _theta_bar_start(log_c: FloatArray) -> FloatArray:
    """Asymptotic first guess of the root (used when there is no earlier root)."""
    out = np.empty(log_c.shape)
    low = log_c <= 0.0  # root x >= 0: ln g ~ ln x - x
    out[low] = -log_c[low] + _libm(math.log1p, -log_c[low])
    high = ~low  # root x < 0: ln g ~ -x/2 near 0, ln(-x) far
    out[high] = -np.maximum(2.0 * log_c[high], _libm(math.expm1, log_c[high]))
    return out


def solve_theta_bar(
    theta: FloatArray, near: FloatArray, far: FloatArray, start: FloatArray | None = None
) -> FloatArray:
    """thb with ``thb far / (e^thb - 1) = theta near / (e^theta - 1)``, per element.

    Buyer: near = l - p*, far = p* - P_min; seller: near = p* - l, far = P_max - p*.
    Newton on ``ln(x / (e^x - 1)) = ln c`` (at most 10 iterations per element) from
    ``start`` (an earlier root, where finite) or an asymptotic first guess. Where
    ``near`` or ``far`` is not positive the r < 0 branch has zero width and theta is
    returned.
    """
    theta = np.asarray(theta, dtype=np.float64)
    near = np.asarray(near, dtype=np.float64)
    far = np.asarray(far, dtype=np.float64)
    out = theta.copy()
    valid = (near > 0.0) & (far > 0.0)
    if not valid.any():
        return out
    th = theta[valid]
    log_c = _log_g(th) + _libm(math.log, near[valid]) - _libm(math.log, far[valid])
    x = np.full(th.shape, np.nan) if start is None else np.asarray(start, np.float64)[valid]
    guess = ~np.isfinite(x)
    if guess.any():
        x[guess] = _theta_bar_start(log_c[guess])
    active = np.arange(th.size)
    for _ in range(NEWTON_MAX_ITER):
        xa = x[active]
        step = (_log_g(xa) - log_c[active]) / _dlog_g(xa)
        xa = xa - step
        x[active] = xa
        active = active[~(np.abs(step) <= 1e-13 * (1.0 + np.abs(xa)))]
        if active.size == 0:
            break
    out[valid] = x
    return out


def target_prices(
    is_buyer: BoolArray,
    r: FloatArray,
    limit: FloatArray,
    p_star: FloatArray,
    theta: FloatArray,
    theta_bar: FloatArray,
    p_min: float,
    p_max: float,
) -> FloatArray:
    """tau(r) of the module docstring of ``adaptive_aggressive`` (no clamping), per trader."""
    up = r >= 0.0
    intra = np.where(is_buyer, limit > p_star, limit < p_star)
    extra_up = ~intra & up  # tau = l: no shape needed
    s = np.where(up, r, -r)
    th = np.where(intra & ~up, theta_bar, theta)
    f = np.zeros(r.shape)
    need = ~extra_up
    if need.any():
        f[need] = shape(s[need], th[need])
    with np.errstate(all="ignore"):
        buy_intra = np.where(
            up, p_star + (limit - p_star) * f, p_min + (p_star - p_min) * (1.0 - f)
        )
        buy_extra = np.where(up, limit, p_min + (limit - p_min) * (1.0 - f))
        sell_intra = np.where(
            up, limit + (p_star - limit) * (1.0 - f), p_star + (p_max - p_star) * f
        )
        sell_extra = np.where(up, limit, limit + (p_max - limit) * f)
    buy = np.where(intra, buy_intra, buy_extra)
    sell = np.where(intra, sell_intra, sell_extra)
    return np.where(is_buyer, buy, sell)


def _share(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` clipped to [0, 1]; 1 where den <= 0."""
    out = np.ones(num.shape)
    ok = ~(den <= 0.0)
    out[ok] = np.minimum(np.maximum(num[ok] / den[ok], 0.0), 1.0)
    return out


def shout_aggressiveness(
    is_buyer: BoolArray,
    q: FloatArray,
    limit: FloatArray,
    p_star: FloatArray,
    theta: FloatArray,
    theta_bar: FloatArray,
    p_min: float,
    p_max: float,
) -> FloatArray:
    """r_shout with tau(r_shout) = q (clipped to [-1, 1]; 0 where tau is flat at l)."""
    intra = np.where(is_buyer, limit > p_star, limit < p_star)
    # the r >= 0 side of tau: buyer q >= p* (intra) / q >= l (extra); seller mirrored
    ref = np.where(intra, p_star, limit)
    up = np.where(is_buyer, q >= ref, q <= ref)
    flat = ~intra & up  # extra-marginal and not beyond the limit: r_shout = 0
    sign_up = intra & up
    with np.errstate(all="ignore"):
        num = np.where(
            sign_up,
            np.where(is_buyer, q - p_star, p_star - q),
            np.where(
                intra,
                np.where(is_buyer, p_star - q, q - p_star),
                np.where(is_buyer, limit - q, q - limit),
            ),
        )
        den = np.where(
            sign_up,
            np.where(is_buyer, limit - p_star, p_star - limit),
            np.where(
                intra,
                np.where(is_buyer, p_star - p_min, p_max - p_star),
                np.where(is_buyer, limit - p_min, p_max - limit),
            ),
        )
    th = np.where(intra & ~up, theta_bar, theta)
    out = np.zeros(q.shape)
    need = ~flat
    if need.any():
        s = shape_inverse(_share(num[need], den[need]), th[need])
        out[need] = np.where(sign_up[need], s, -s)
    return out


def theta_star(alpha_bar: FloatArray, params: AAParams) -> FloatArray:
    """Desired theta for a normalised volatility alpha_bar in [0, 1], per element."""
    span = params.theta_max - params.theta_min
    growth = _libm(math.exp, params.gamma * (alpha_bar - 1.0))
    return span * (1.0 - alpha_bar * growth) + params.theta_min
