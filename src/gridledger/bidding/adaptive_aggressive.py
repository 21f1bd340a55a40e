"""Adaptive-Aggressive (AA) trader of Vytelingum, Cliff & Jennings (2008), for a call market.

Registered as strategy ``"aa"``. :class:`AAPopulation` holds any number of AA traders
as rows of numpy arrays and prices them together; each row has its own state (price
memory, book, r, theta, volatility range), so rows may see different public views
and join at different times. The round mechanism (``bidding.mechanism``) keeps one
population for all its AA members; :class:`AATrader` is a one-row population behind
the per-member ``Trader`` protocol of the strategy registry. A row persists across
intervals, so the long-term shape parameter theta and the aggressiveness r carry
over. The array formulas are in :mod:`gridledger.bidding.aa_math`; the method is
described in docs/bidding.md.

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
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gridledger.bidding.aa_math import (
    AAParams,
    BoolArray,
    FloatArray,
    libm_square,
    shout_aggressiveness,
    solve_theta_bar,
    target_prices,
    theta_star,
)
from gridledger.bidding.base import PublicView, RoundInfo, TraderSpec, register_strategy
from gridledger.bidding.risk import risk_profile
from gridledger.errors import GridledgerError

__all__ = ["AA_STRATEGY", "AAParams", "AAPopulation", "AATrader"]

AA_STRATEGY = "aa"

IntArray = NDArray[np.intp]  # row indices


def _check_market(name: str, p_min: float, p_max: float) -> None:
    if not (math.isfinite(p_min) and math.isfinite(p_max) and p_max > p_min):
        message = (
            f"{name}: need feed_in_per_kwh < retail_per_kwh (finite), "
            f"got feed-in {p_min!r}, retail {p_max!r}"
        )
        raise GridledgerError(message)


def _price_or_nan(value: float | None) -> float:
    return math.nan if value is None else value


class AAPopulation:
    """AA traders as rows of arrays, all in one market (same tariffs).

    ``add`` appends a row; ``quote_rows`` / ``observe_rows`` price and teach a subset
    of rows, each with its own public view (rows sharing a view object may share
    it). ``quote`` / ``observe`` do the same for every row with one view.
    """

    def __init__(
        self,
        specs: Sequence[TraderSpec],
        params: AAParams | None = None,
        *,
        p_min: float | None = None,
        p_max: float | None = None,
    ) -> None:
        if not specs and (p_min is None or p_max is None):
            message = "AAPopulation needs a TraderSpec or the tariffs p_min and p_max"
            raise GridledgerError(message)
        self.params = params or AAParams()
        self.p_min = specs[0].feed_in_per_kwh if p_min is None else p_min
        self.p_max = specs[0].retail_per_kwh if p_max is None else p_max
        _check_market("AAPopulation", self.p_min, self.p_max)
        self.specs: list[TraderSpec] = []
        n_mem = self.params.n_prices
        self.is_buyer: BoolArray = np.zeros(0, dtype=bool)
        self.limit_raw: FloatArray = np.zeros(0)
        self.limit: FloatArray = np.zeros(0)
        self.r: FloatArray = np.zeros(0)
        self.theta: FloatArray = np.zeros(0)
        self.beta1: FloatArray = np.zeros(0)
        self.lr_up: FloatArray = np.zeros(0)
        self.la_up: FloatArray = np.zeros(0)
        self.lr_dn: FloatArray = np.zeros(0)
        self.la_dn: FloatArray = np.zeros(0)
        self.prices: FloatArray = np.zeros((0, n_mem))
        """Price memory, newest first (column 0); the first ``count`` columns of a row are valid."""
        self.count: IntArray = np.zeros(0, dtype=np.intp)
        self.alpha_min: FloatArray = np.zeros(0)
        self.alpha_max: FloatArray = np.zeros(0)
        self.book_bid: FloatArray = np.zeros(0)
        self.book_ask: FloatArray = np.zeros(0)
        self._tb: FloatArray = np.zeros(0)
        self._tb_p: FloatArray = np.zeros(0)
        self._tb_theta: FloatArray = np.zeros(0)
        for spec in specs:
            self.add(spec)

    def __len__(self) -> int:
        return len(self.specs)

    def add(self, spec: TraderSpec) -> int:
        """Append a trader for ``spec``; returns its row."""
        if (spec.feed_in_per_kwh, spec.retail_per_kwh) != (self.p_min, self.p_max):
            _check_market(f"member {spec.member}", spec.feed_in_per_kwh, spec.retail_per_kwh)
            message = (
                f"member {spec.member}: tariffs ({spec.feed_in_per_kwh}, {spec.retail_per_kwh}) "
                f"differ from the population's ({self.p_min}, {self.p_max})"
            )
            raise GridledgerError(message)
        if spec.side not in ("buy", "sell"):
            message = f"member {spec.member}: side {spec.side!r} must be 'buy' or 'sell'"
            raise GridledgerError(message)
        if not math.isfinite(spec.limit_price_per_kwh):
            message = (
                f"member {spec.member}: limit_price_per_kwh={spec.limit_price_per_kwh!r} "
                "is not finite"
            )
            raise GridledgerError(message)
        prof = risk_profile(spec.risk_attitude)
        limit = min(max(spec.limit_price_per_kwh, self.p_min), self.p_max)
        self.specs.append(spec)
        self.is_buyer = np.append(self.is_buyer, spec.side == "buy")
        self.limit_raw = np.append(self.limit_raw, spec.limit_price_per_kwh)
        self.limit = np.append(self.limit, limit)
        self.r = np.append(self.r, prof.r0)
        self.theta = np.append(self.theta, self.params.theta0)
        self.beta1 = np.append(self.beta1, prof.beta1)
        self.lr_up = np.append(self.lr_up, prof.lambda_r_up)
        self.la_up = np.append(self.la_up, prof.lambda_a_up)
        self.lr_dn = np.append(self.lr_dn, prof.lambda_r_down)
        self.la_dn = np.append(self.la_dn, prof.lambda_a_down)
        self.prices = np.vstack([self.prices, np.zeros((1, self.params.n_prices))])
        self.count = np.append(self.count, 0)
        self.alpha_min = np.append(self.alpha_min, math.inf)
        self.alpha_max = np.append(self.alpha_max, -math.inf)
        self.book_bid = np.append(self.book_bid, math.nan)
        self.book_ask = np.append(self.book_ask, math.nan)
        self._tb = np.append(self._tb, 0.0)
        self._tb_p = np.append(self._tb_p, math.nan)
        self._tb_theta = np.append(self._tb_theta, math.nan)
        return len(self.specs) - 1

    # -- estimates ------------------------------------------------------------

    def _seed(self, rows: IntArray, views: Sequence[PublicView]) -> None:
        """Rows without a price memory start from the binding prices of earlier intervals."""
        n_mem = self.params.n_prices
        for row, view in zip(rows.tolist(), views, strict=True):
            if self.count[row] == 0 and view.past_trade_prices:
                seed = view.past_trade_prices[-n_mem:]
                self.prices[row, : len(seed)] = seed[::-1]
                self.count[row] = len(seed)

    def _remember(self, rows: IntArray, q: FloatArray) -> None:
        """Put the round price ``q`` first in each row's memory (the oldest drops out when full)."""
        self.prices[rows, 1:] = self.prices[rows, :-1]
        self.prices[rows, 0] = q
        self.count[rows] = np.minimum(self.count[rows] + 1, self.params.n_prices)

    def p_star(self, rows: IntArray) -> FloatArray:
        """Equilibrium estimate per row (fallback before any trade: module docstring)."""
        count = self.count[rows]
        mem = self.prices[rows]
        num = np.zeros(rows.size)
        den = np.zeros(rows.size)
        w = 1.0
        for k in range(int(count.max(initial=0))):  # newest first: sum_k rho^k p_(T-k)
            has = k < count
            num = np.where(has, num + w * mem[:, k], num)
            den = np.where(has, den + w, den)
            w *= self.params.rho
        b, a = self.book_bid[rows], self.book_ask[rows]
        with np.errstate(all="ignore"):
            estimate = num / den
            mid = np.minimum(np.maximum((b + a) / 2.0, self.p_min), self.p_max)
        fallback = np.where(np.isnan(b) | np.isnan(a), (self.p_min + self.p_max) / 2.0, mid)
        return np.where(count > 0, estimate, fallback)

    def theta_bar(self, rows: IntArray, p_star: FloatArray) -> FloatArray:
        """theta_bar per row, re-solved (from the row's previous root) when p* or theta moved."""
        theta = self.theta[rows]
        moved = ~((self._tb_p[rows] == p_star) & (self._tb_theta[rows] == theta))
        if moved.any():
            at = rows[moved]
            p, limit, buyer = p_star[moved], self.limit[at], self.is_buyer[at]
            near = np.where(buyer, limit - p, p - limit)
            far = np.where(buyer, p - self.p_min, self.p_max - p)
            self._tb[at] = solve_theta_bar(self.theta[at], near, far, self._tb[at])
            self._tb_p[at] = p
            self._tb_theta[at] = self.theta[at]
        return self._tb[rows]

    def targets(self, rows: IntArray, p_star: FloatArray | None = None) -> FloatArray:
        """tau at the current aggressiveness, per row."""
        p = self.p_star(rows) if p_star is None else p_star
        tb = self.theta_bar(rows, p)
        limit, theta = self.limit[rows], self.theta[rows]
        buyer, r = self.is_buyer[rows], self.r[rows]
        return target_prices(buyer, r, limit, p, theta, tb, self.p_min, self.p_max)

    # -- protocol -------------------------------------------------------------

    def quote(self, view: PublicView) -> FloatArray:
        """Prices (tokens/kWh) of every row's order in the coming round."""
        rows = np.arange(len(self.specs))
        return self.quote_rows(rows, [view] * rows.size)

    def observe(self, view: PublicView, info: RoundInfo) -> None:
        """Every row learns from the public result of the round just finished."""
        rows = np.arange(len(self.specs))
        self.observe_rows(rows, [view] * rows.size, [info] * rows.size)

    def quote_rows(self, rows: IntArray, views: Sequence[PublicView]) -> FloatArray:
        """Prices of ``rows`` in the coming round, row ``rows[i]`` seeing ``views[i]``."""
        rows = np.asarray(rows, dtype=np.intp)
        self._seed(rows, views)
        for row, view in zip(rows.tolist(), views, strict=True):
            if view.history:
                last = view.history[-1]
                self.book_bid[row] = _price_or_nan(last.best_bid)
                self.book_ask[row] = _price_or_nan(last.best_ask)
        b, a = self.book_bid[rows], self.book_ask[rows]
        o_bid = np.where(np.isnan(b), self.p_min, b)
        o_ask = np.where(np.isnan(a), self.p_max, a)
        eta = self.params.eta
        buyer, limit = self.is_buyer[rows], self.limit[rows]
        price = np.empty(rows.size)
        first = self.count[rows] == 0
        if first.any():  # no trade seen yet
            lam_a = self.params.lambda_a_rel * (self.p_max - self.p_min)
            lam_r = self.params.lambda_r
            ob, oa, lim = o_bid[first], o_ask[first], limit[first]
            buy = ob + (np.minimum(lim, (1 + lam_r) * oa + lam_a) - ob) / eta
            sell = oa - (oa - np.maximum(lim, (1 - lam_r) * ob - lam_a)) / eta
            price[first] = np.where(buyer[first], buy, sell)
        known = ~first
        if known.any():
            tau = self.targets(rows[known])
            ob, oa = o_bid[known], o_ask[known]
            buy = np.where(ob < tau, ob + (tau - ob) / eta, tau)
            buy = np.where(oa <= tau, np.maximum(buy, oa), buy)
            sell = np.where(oa > tau, oa - (oa - tau) / eta, tau)
            sell = np.where(ob >= tau, np.minimum(sell, ob), sell)
            price[known] = np.where(buyer[known], buy, sell)
        price = np.minimum(np.maximum(price, self.p_min), self.p_max)
        lim_raw = self.limit_raw[rows]
        return np.where(buyer, np.minimum(price, lim_raw), np.maximum(price, lim_raw))

    def observe_rows(
        self, rows: IntArray, views: Sequence[PublicView], infos: Sequence[RoundInfo]
    ) -> None:
        """``rows[i]`` learns from ``infos[i]``, the round just finished as seen in ``views[i]``."""
        rows = np.asarray(rows, dtype=np.intp)
        self._seed(rows, views)
        n = rows.size
        q_round = np.full(n, math.nan)
        info_bid = np.empty(n)
        info_ask = np.empty(n)
        for i, info in enumerate(infos):
            info_bid[i] = _price_or_nan(info.best_bid)
            info_ask[i] = _price_or_nan(info.best_ask)
            if info.trade_prices:
                q_round[i] = math.fsum(info.trade_prices) / len(info.trade_prices)
        self.book_bid[rows] = info_bid
        self.book_ask[rows] = info_ask
        traded = ~np.isnan(q_round)
        if traded.any():
            self._remember(rows[traded], q_round[traded])
            self._learn_theta(rows[traded])
        p = self.p_star(rows)
        tau = self.targets(rows, p)
        buyer = self.is_buyer[rows]
        # without a trade: the other side's best quote if it is beyond tau, else our own
        own = np.where(buyer, info_bid, info_ask)
        other = np.where(buyer, info_ask, info_bid)
        use_other = ~np.isnan(other) & np.where(buyer, other > tau, other < tau)
        q = np.where(traded, q_round, np.where(use_other, other, own))
        act = ~np.isnan(q)
        if not act.any():
            return
        at, q, tau, p, buyer, traded = rows[act], q[act], tau[act], p[act], buyer[act], traded[act]
        more = np.where(
            traded, np.where(buyer, tau < q, tau > q), np.where(buyer, q >= tau, q <= tau)
        )
        r_shout = shout_aggressiveness(
            buyer,
            q,
            self.limit[at],
            p,
            self.theta[at],
            self._tb[at],
            self.p_min,
            self.p_max,
        )
        r = self.r[at]
        delta = np.where(
            more,
            (1.0 + self.lr_up[at]) * r_shout + self.la_up[at],
            (1.0 - self.lr_dn[at]) * r_shout - self.la_dn[at],
        )
        delta = np.minimum(np.maximum(delta, -1.0), 1.0)
        r_new = np.minimum(np.maximum(r + self.beta1[at] * (delta - r), -1.0), 1.0)
        # call-market hold band: traded with a margin smaller than one step
        band = self.la_up[at] + self.lr_up[at] * np.abs(r_shout)
        hold = traded & ~more & (r <= r_shout + band)
        self.r[at] = np.where(hold, r, r_new)

    def _learn_theta(self, rows: IntArray) -> None:
        """Long-term learning of theta from the volatility of each row's price memory."""
        p = self.p_star(rows)
        positive = p > 0.0
        rows, p = rows[positive], p[positive]
        if rows.size == 0:
            return
        count = self.count[rows]
        dev = libm_square(self.prices[rows] - p[:, None])
        total = np.zeros(rows.size)
        for k in range(self.params.n_prices - 1, -1, -1):  # oldest first, as sum() in order
            total = np.where(k < count, total + dev[:, k], total)
        alpha = np.sqrt(total / count) / p
        a_min = np.minimum(self.alpha_min[rows], alpha)
        a_max = np.maximum(self.alpha_max[rows], alpha)
        self.alpha_min[rows] = a_min
        self.alpha_max[rows] = a_max
        spread = a_max - a_min > 1e-12
        rows, alpha, a_min, a_max = rows[spread], alpha[spread], a_min[spread], a_max[spread]
        if rows.size == 0:
            return
        alpha_bar = (alpha - a_min) / (a_max - a_min)
        theta = self.theta[rows]
        th = theta + self.params.beta2 * (theta_star(alpha_bar, self.params) - theta)
        self.theta[rows] = np.minimum(np.maximum(th, self.params.theta_min), self.params.theta_max)


class AATrader:
    """One AA trader behind the registry's ``Trader`` protocol (a one-row population)."""

    def __init__(
        self,
        spec: TraderSpec,
        rng: np.random.Generator | None = None,
        params: AAParams | None = None,
    ) -> None:
        del rng  # AA is deterministic
        self.spec = spec
        self.population = AAPopulation([spec], params)

    @property
    def r(self) -> float:
        return float(self.population.r[0])

    @property
    def theta(self) -> float:
        return float(self.population.theta[0])

    def target(self) -> float:
        """tau at the current aggressiveness."""
        return float(self.population.targets(np.zeros(1, dtype=np.intp))[0])

    def quote(self, view: PublicView) -> float:
        return float(self.population.quote(view)[0])

    def observe(self, view: PublicView, info: RoundInfo) -> None:
        self.population.observe(view, info)


register_strategy(AA_STRATEGY)(AATrader)
