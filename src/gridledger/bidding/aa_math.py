"""The formulas of the Adaptive-Aggressive trader, on arrays (one element per trader).

Notation and formulas: :mod:`gridledger.bidding.adaptive_aggressive`, docs/bidding.md and
docs/methods.md. (The learning rules changed with per-trader feedback; the formulas here
did not.) Every function here takes numpy arrays of equal shape (per-trader values)
and Python floats (market bounds, parameters) and returns an array.

Bit-exactness. The results equal those of the scalar formulas on Python floats bit
for bit (tested against the scalar reference in tests/bidding/aa_reference.py). The array arithmetic is one IEEE
operation per element in the scalar order; the transcendental functions (``exp``,
``expm1``, ``log``, ``log1p``) must come from the C library, as Python's ``math`` module
uses it: numpy's own SIMD versions differ from it in the last bit for a few percent of
arguments, and AA feeds its prices back into its learning, so such a difference would
grow into different bids. The shape function, its inverse and the Newton solve for
theta_bar are therefore numba loops over the scalar formula (numba calls the C
library; no fast-math, no SVML), and the rest uses ``math`` element by element
(:func:`_libm`). Squares in the volatility use Python's ``x ** 2`` (the C library's
``pow``, which is not always ``x * x``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
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
    """Algorithm constants (Vytelingum et al. 2008 where the paper gives them).

    ``n_prices`` / ``rho``: memory N and its decay; ``beta2``, ``gamma``, ``theta_min``,
    ``theta_max``: long-term learning; ``theta0 = -2``: initial shape (BSE draws it from
    [-5, 0]; a fixed value keeps runs reproducible). ``r0``: initial learned
    aggressiveness (slightly positive, so that a fresh market of neutral traders quotes
    across p* and trades).
    """

    n_prices: int = 5
    rho: float = 0.9
    beta2: float = 0.4
    gamma: float = 2.0
    theta_min: float = -8.0
    theta_max: float = 2.0
    theta0: float = -2.0
    r0: float = 0.1


def _libm(fn: Callable[[float], float], x: FloatArray) -> FloatArray:
    """``fn`` (a ``math`` function) applied to every element, as the C library computes it."""
    return np.fromiter(map(fn, x.ravel().tolist()), np.float64, count=x.size).reshape(x.shape)


def _square(v: float) -> float:
    return v**2


def libm_square(x: FloatArray) -> FloatArray:
    """``x ** 2`` as Python computes it for a float (the C library's ``pow``, not ``x * x``)."""
    return _libm(_square, x)


@numba.njit(cache=True)
def _shape1(s: float, theta: float) -> float:
    if abs(theta) < SMALL_THETA:
        return s
    if theta > 0.0:
        return math.exp(theta * (s - 1.0)) * math.expm1(-s * theta) / math.expm1(-theta)
    return math.expm1(s * theta) / math.expm1(theta)


@numba.njit(cache=True)
def _shape_inverse1(y: float, theta: float) -> float:
    y = min(max(y, 0.0), 1.0)
    if abs(theta) < SMALL_THETA:
        return y
    if theta > 0.0:
        inner = y + (1.0 - y) * math.exp(-theta)
        return 1.0 + math.log(inner) / theta if inner > 0.0 else 0.0
    arg = y * math.expm1(theta)
    if arg > -1.0:
        return math.log1p(arg) / theta
    inner = (1.0 - y) + y * math.exp(theta)  # y ~ 1 and e^theta below the float resolution
    return math.log(inner) / theta if inner > 0.0 else 1.0


@numba.njit(cache=True)
def _log_g1(x: float) -> float:
    """``ln(x / (e^x - 1))`` (= 0 at x = 0)."""
    if abs(x) < 1e-6:
        return -x / 2.0 + x * x / 24.0
    if x > 0.0:
        return math.log(x) - x - math.log(-math.expm1(-x))
    return math.log(-x) - math.log(-math.expm1(x))


@numba.njit(cache=True)
def _dlog_g1(x: float) -> float:
    """Derivative of :func:`_log_g1`: ``1/x - 1/(1 - e^-x)``."""
    if abs(x) < 1e-6:
        return -0.5 + x / 6.0
    if x < -700.0:
        return 1.0 / x
    return 1.0 / x + 1.0 / math.expm1(-x)


@numba.njit(cache=True)
def _theta_bar1(theta: float, near: float, far: float, start: float) -> float:
    if near <= 0.0 or far <= 0.0:
        return theta
    log_c = _log_g1(theta) + math.log(near) - math.log(far)
    if math.isfinite(start):
        x = start
    elif log_c <= 0.0:  # root x >= 0: ln g ~ ln x - x
        x = -log_c + math.log1p(-log_c)
    else:  # root x < 0: ln g ~ -x/2 near 0, ln(-x) far
        x = -max(2.0 * log_c, math.expm1(log_c))
    for _ in range(NEWTON_MAX_ITER):
        step = (_log_g1(x) - log_c) / _dlog_g1(x)
        x -= step
        if abs(step) <= 1e-13 * (1.0 + abs(x)):
            break
    return x


@numba.njit(cache=True)
def _shape_kernel(s: FloatArray, theta: FloatArray, inverse: bool) -> FloatArray:
    out = np.empty(s.size)
    for i in range(s.size):
        out[i] = _shape_inverse1(s[i], theta[i]) if inverse else _shape1(s[i], theta[i])
    return out


@numba.njit(cache=True)
def _theta_bar_kernel(
    theta: FloatArray, near: FloatArray, far: FloatArray, start: FloatArray
) -> FloatArray:
    out = np.empty(theta.size)
    for i in range(theta.size):
        out[i] = _theta_bar1(theta[i], near[i], far[i], start[i])
    return out


def _flat(x: FloatArray) -> FloatArray:
    return np.ascontiguousarray(x, dtype=np.float64).ravel()


def shape(s: FloatArray, theta: FloatArray) -> FloatArray:
    """``f(s, th) = (e^(s th) - 1) / (e^th - 1)`` for s in [0, 1], overflow-safe."""
    s = np.asarray(s, dtype=np.float64)
    return _shape_kernel(_flat(s), _flat(theta), False).reshape(s.shape)


def shape_inverse(y: FloatArray, theta: FloatArray) -> FloatArray:
    """The s in [0, 1] with ``f(s, theta) = y`` (y clipped to [0, 1])."""
    y = np.asarray(y, dtype=np.float64)
    return _shape_kernel(_flat(y), _flat(theta), True).reshape(y.shape)


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
    begin = np.full(theta.shape, np.nan) if start is None else start
    out = _theta_bar_kernel(_flat(theta), _flat(near), _flat(far), _flat(begin))
    return out.reshape(theta.shape)


def _intra_marginal(is_buyer: BoolArray, limit: FloatArray, p_star: FloatArray) -> BoolArray:
    """Traders whose limit is beyond the equilibrium estimate (buyer l > p*, seller l < p*)."""
    return np.where(is_buyer, limit > p_star, limit < p_star)


def _branch(
    intra: BoolArray, up: BoolArray, theta: FloatArray, theta_bar: FloatArray
) -> tuple[BoolArray, FloatArray]:
    """Where tau is flat at the limit (extra-marginal, r >= 0) and the theta of each branch.

    The intra-marginal r < 0 branch uses theta_bar, every other branch theta.
    """
    return ~intra & up, np.where(intra & ~up, theta_bar, theta)


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
    intra = _intra_marginal(is_buyer, limit, p_star)
    extra_up, th = _branch(intra, up, theta, theta_bar)  # extra_up: tau = l, no shape needed
    s = np.where(up, r, -r)
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
    intra = _intra_marginal(is_buyer, limit, p_star)
    # the r >= 0 side of tau: buyer q >= p* (intra) / q >= l (extra); seller mirrored
    ref = np.where(intra, p_star, limit)
    up = np.where(is_buyer, q >= ref, q <= ref)
    flat, th = _branch(intra, up, theta, theta_bar)  # flat: r_shout = 0
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
