"""Adaptive-Aggressive (AA) trader of Vytelingum, Cliff & Jennings (2008), for sealed rounds.

Registered as strategy ``"aa"``. :class:`AAPopulation` holds any number of AA traders
as rows of numpy arrays and prices them together; each row has its own state (price
memory, learned aggressiveness r, theta). The round mechanism (``bidding.mechanism``)
keeps one population for all its AA members; :class:`AATrader` is a one-row population
behind the per-member ``Trader`` protocol of the strategy registry. Rows persist across
intervals. The formulas are in :mod:`gridledger.bidding.aa_math`; the method, its
adaptations to sealed rounds and the parameter tables are in docs/bidding.md.

Notation: limit ``l``, learned aggressiveness ``r`` in [-1, 1], shape ``theta``, band
``[P_min, P_max]``, the attitude's hold-out ``h`` (:mod:`gridledger.bidding.risk`).

Equilibrium estimate p* (market information only)
    ``p* = sum_k rho^k p_(T-k) / sum_k rho^k`` over the last ``N`` round prices, newest
    first. A round price is the energy-weighted mean trade price of a round that
    cleared something (indicative or binding), as delivered to the trader's bus. A row
    created late is seeded from ``PublicView.past_trade_prices``. Cold start (no trade
    price ever seen): the trader quotes its limit (a truthful probe); if that round
    trades, its price starts the memory, else p* is the midpoint of the first round's
    best bid and best ask. No fixed point of the tariff band is used.

Quote
    reference quote ``tau(r)`` (the paper's target price), plus the attitude's offset:
    buyer ``tau(r) - h p*``, seller ``tau(r) + h p*``; clamped to the band and the limit.
    Binding round: a row filled earlier in the interval quotes at least as aggressively
    as its last filled quote; a row not filled yet crosses the other side's best quote
    of the last round by one tick where its limit allows.

Learning from the own order (after every round)
    filled -> less aggressive toward the own trade price; partly filled, rationed, or
    priced out while intra-marginal -> more aggressive toward the round price (or the
    other side's best quote); priced out and extra-marginal -> unchanged. For h != 0 the
    own result only counts where it says something about the reference quote (a fill
    of a quote less aggressive than the reference, a miss of a more aggressive one);
    otherwise the paper's public rule on the reference quote applies (more aggressive
    if it lies beyond the round price), and a missed order is never made less
    aggressive. more: ``delta = max((1 + lambda_r) x + lambda_a_up, r + lambda_a_up)``;
    less: ``delta = min((1 - lambda_r) x - lambda_a_down, r - lambda_a_down)``;
    ``x = r_shout(q)``; ``r <- r + beta1 (delta - r)``.
    Long-term learning of theta from the volatility of the price memory, as in the paper.
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
from gridledger.bidding.base import (
    FILLED,
    NOT_MATCHED,
    OwnResult,
    PublicView,
    RoundInfo,
    TraderSpec,
    register_strategy,
)
from gridledger.bidding.risk import risk_profile
from gridledger.errors import GridledgerError

__all__ = ["AA_STRATEGY", "AAParams", "AAPopulation", "AATrader"]

AA_STRATEGY = "aa"
TICK = 1e-5
"""Price step (tokens/kWh) by which a binding quote crosses the other side's best quote."""

IntArray = NDArray[np.intp]  # row indices


def _check_market(name: str, p_min: float, p_max: float) -> None:
    if not (math.isfinite(p_min) and math.isfinite(p_max) and p_max > p_min):
        message = (
            f"{name}: need feed_in_per_kwh < retail_per_kwh (finite), "
            f"got feed-in {p_min!r}, retail {p_max!r}"
        )
        raise GridledgerError(message)


class AAPopulation:
    """AA traders as rows of arrays, all in one market (same tariffs).

    ``add`` appends a row; ``quote_rows`` / ``observe_rows`` price and teach a subset
    of rows, each with its own public view and its own order's result. ``quote`` /
    ``observe`` do the same for every row with one view.
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
        self.is_buyer: BoolArray = np.zeros(0, dtype=bool)
        self.limit_raw: FloatArray = np.zeros(0)
        self.limit: FloatArray = np.zeros(0)
        self.r: FloatArray = np.zeros(0)
        """Learned aggressiveness of the reference quote tau(r)."""
        self.hold_out: FloatArray = np.zeros(0)
        """The attitude's offset of the quote from tau(r), as a share of p* (> 0: holds
        out for margin, < 0: concedes margin, 0: neutral)."""
        self.theta: FloatArray = np.zeros(0)
        self.beta1: FloatArray = np.zeros(0)
        self.lambda_r: FloatArray = np.zeros(0)
        self.lambda_a_up: FloatArray = np.zeros(0)
        self.lambda_a_down: FloatArray = np.zeros(0)
        self.prices: FloatArray = np.zeros((0, self.params.n_prices))
        """Price memory, newest first (column 0); the first ``count`` columns of a row are valid."""
        self.count: IntArray = np.zeros(0, dtype=np.intp)
        self.alpha_min: FloatArray = np.zeros(0)
        self.alpha_max: FloatArray = np.zeros(0)
        self.cold_mid: FloatArray = np.zeros(0)
        """Cold start: midpoint of the first round's best bid and ask (nan until seen)."""
        self.last_quote: FloatArray = np.zeros(0)
        self.last_ref: FloatArray = np.zeros(0)
        """The reference quote tau(r) behind the last quote (nan on a cold start)."""
        self.fill_quote: FloatArray = np.zeros(0)
        """The row's last quote that was filled, in interval :attr:`fill_interval`."""
        self.fill_interval: IntArray = np.zeros(0, dtype=np.intp)
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
        self.r = np.append(self.r, self.params.r0)
        self.hold_out = np.append(self.hold_out, prof.hold_out)
        self.theta = np.append(self.theta, self.params.theta0)
        self.beta1 = np.append(self.beta1, prof.beta1)
        self.lambda_r = np.append(self.lambda_r, prof.lambda_r)
        self.lambda_a_up = np.append(self.lambda_a_up, prof.lambda_a_up)
        self.lambda_a_down = np.append(self.lambda_a_down, prof.lambda_a_down)
        self.prices = np.vstack([self.prices, np.zeros((1, self.params.n_prices))])
        self.count = np.append(self.count, 0)
        self.alpha_min = np.append(self.alpha_min, math.inf)
        self.alpha_max = np.append(self.alpha_max, -math.inf)
        self.cold_mid = np.append(self.cold_mid, math.nan)
        self.last_quote = np.append(self.last_quote, math.nan)
        self.last_ref = np.append(self.last_ref, math.nan)
        self.fill_quote = np.append(self.fill_quote, math.nan)
        self.fill_interval = np.append(self.fill_interval, -1)
        self._tb = np.append(self._tb, 0.0)
        self._tb_p = np.append(self._tb_p, math.nan)
        self._tb_theta = np.append(self._tb_theta, math.nan)
        return len(self.specs) - 1

    # -- estimates ------------------------------------------------------------

    def _seed(self, rows: IntArray, views: Sequence[PublicView]) -> None:
        """Rows without a price memory start from the binding prices of earlier intervals."""
        n_mem = self.params.n_prices
        empty = self.count[rows] == 0
        if not empty.any():
            return
        for row, view, cold in zip(rows.tolist(), views, empty.tolist(), strict=True):
            if cold and view.past_trade_prices:
                seed = view.past_trade_prices[-n_mem:]
                self.prices[row, : len(seed)] = seed[::-1]
                self.count[row] = len(seed)

    def _remember(self, rows: IntArray, q: FloatArray) -> None:
        """Put the round price ``q`` first in each row's memory (the oldest drops out when full)."""
        self.prices[rows, 1:] = self.prices[rows, :-1]
        self.prices[rows, 0] = q
        self.count[rows] = np.minimum(self.count[rows] + 1, self.params.n_prices)

    def p_star(self, rows: IntArray) -> FloatArray:
        """Equilibrium estimate per row; nan where neither a trade nor a book was seen."""
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
        with np.errstate(all="ignore"):
            estimate = num / den
        return np.where(count > 0, estimate, self.cold_mid[rows])

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
        """The reference quote tau(r) per row (rows need a finite p*)."""
        p = self.p_star(rows) if p_star is None else p_star
        tb = self.theta_bar(rows, p)
        limit, theta = self.limit[rows], self.theta[rows]
        buyer = self.is_buyer[rows]
        return target_prices(buyer, self.r[rows], limit, p, theta, tb, self.p_min, self.p_max)

    def offsets(self, rows: IntArray, p_star: FloatArray) -> FloatArray:
        """The attitude's price offset: quote = tau(r) + offset (buyer ``-h p*``, seller ``+h p*``)."""
        return np.where(self.is_buyer[rows], -1.0, 1.0) * self.hold_out[rows] * p_star

    # -- protocol -------------------------------------------------------------

    def quote(self, view: PublicView) -> FloatArray:
        """Prices (tokens/kWh) of every row's order in the coming round."""
        rows = np.arange(len(self.specs))
        return self.quote_rows(rows, [view] * rows.size)

    def observe(self, view: PublicView, info: RoundInfo, own: Sequence[OwnResult]) -> None:
        """Every row learns from the round just finished (``own[i]``: row i's order)."""
        rows = np.arange(len(self.specs))
        self.observe_rows(rows, [view] * rows.size, [info] * rows.size, own)

    def quote_rows(self, rows: IntArray, views: Sequence[PublicView]) -> FloatArray:
        """Prices of ``rows`` in the coming round, row ``rows[i]`` seeing ``views[i]``."""
        rows = np.asarray(rows, dtype=np.intp)
        self._seed(rows, views)
        limit, buyer = self.limit[rows], self.is_buyer[rows]
        p = self.p_star(rows)
        known = ~np.isnan(p)
        price = limit.copy()  # cold start: the truthful probe
        ref = np.full(rows.size, math.nan)
        if known.any():
            at = rows[known]
            ref[known] = self.targets(at, p[known])
            price[known] = ref[known] + self.offsets(at, p[known])
        binding = np.array([v.round == v.rounds - 1 for v in views], dtype=bool)
        if binding.any():
            price = self._binding_quotes(rows, views, binding, price)
        price = np.minimum(np.maximum(price, self.p_min), self.p_max)
        lim_raw = self.limit_raw[rows]
        price = np.where(buyer, np.minimum(price, lim_raw), np.maximum(price, lim_raw))
        self.last_quote[rows] = price
        self.last_ref[rows] = np.where(buyer, np.minimum(ref, lim_raw), np.maximum(ref, lim_raw))
        return price

    def _binding_quotes(
        self, rows: IntArray, views: Sequence[PublicView], binding: BoolArray, price: FloatArray
    ) -> FloatArray:
        """Binding round: a row filled earlier in this interval quotes at least as
        aggressively as its last filled quote; a row not filled yet quotes at least the
        other side's best quote of the last round (one tick through it) where that is
        within its limit: in a call market, accepting the best offer means crossing it."""
        buyer, limit = self.is_buyer[rows], self.limit_raw[rows]
        interval = np.array([v.interval for v in views], dtype=np.intp)
        filled = binding & (self.fill_interval[rows] == interval)
        other = np.full(rows.size, math.nan)
        for i, view in enumerate(views):
            if binding[i] and not filled[i] and view.history:
                last = view.history[-1]
                quote = last.best_ask if buyer[i] else last.best_bid
                if quote is not None:
                    other[i] = quote + (TICK if buyer[i] else -TICK)
        anchor = np.where(filled, self.fill_quote[rows], other)
        usable = ~np.isnan(anchor) & np.where(buyer, anchor <= limit, anchor >= limit)
        bolder = np.where(buyer, np.maximum(price, anchor), np.minimum(price, anchor))
        return np.where(usable, bolder, price)

    def observe_rows(
        self,
        rows: IntArray,
        views: Sequence[PublicView],
        infos: Sequence[RoundInfo],
        own: Sequence[OwnResult],
    ) -> None:
        """``rows[i]`` learns from ``infos[i]`` (public, as seen in ``views[i]``) and
        ``own[i]`` (the result of its own order) of the round just finished."""
        rows = np.asarray(rows, dtype=np.intp)
        self._seed(rows, views)
        n = rows.size
        q_round = np.full(n, math.nan)
        info_bid = np.full(n, math.nan)
        info_ask = np.full(n, math.nan)
        outcome = np.empty(n, dtype=np.intp)
        q_own = np.full(n, math.nan)
        cache: dict[int, float] = {}
        for i, (info, mine) in enumerate(zip(infos, own, strict=True)):
            if info.best_bid is not None:
                info_bid[i] = info.best_bid
            if info.best_ask is not None:
                info_ask[i] = info.best_ask
            if info.trade_prices:
                key = id(info)
                if key not in cache:
                    cache[key] = info.mean_price() or math.nan
                q_round[i] = cache[key]
            outcome[i] = mine.outcome
            if mine.price_per_kwh is not None:
                q_own[i] = mine.price_per_kwh
        traded = ~np.isnan(q_round)
        if traded.any():
            self._remember(rows[traded], q_round[traded])
            self._learn_theta(rows[traded])
        cold = (self.count[rows] == 0) & np.isnan(self.cold_mid[rows])
        book = cold & ~np.isnan(info_bid) & ~np.isnan(info_ask)
        if book.any():
            mid = np.minimum(np.maximum((info_bid + info_ask) / 2.0, self.p_min), self.p_max)
            self.cold_mid[rows[book]] = mid[book]
        filled = outcome == FILLED
        got = rows[filled]
        self.fill_quote[got] = self.last_quote[got]
        self.fill_interval[got] = [
            v.interval for v, f in zip(views, filled.tolist(), strict=True) if f
        ]
        p = self.p_star(rows)
        ref = self.last_ref[rows]
        act = ~np.isnan(p) & ~np.isnan(ref)
        if not act.any():
            return
        rows, p, ref, outcome, filled = rows[act], p[act], ref[act], outcome[act], filled[act]
        q_own, q_round = q_own[act], q_round[act]
        info_bid, info_ask = info_bid[act], info_ask[act]
        buyer, limit, h = self.is_buyer[rows], self.limit[rows], self.hold_out[rows]
        other = np.where(buyer, info_ask, info_bid)
        q_pub = np.where(np.isnan(q_round), other, q_round)
        # priced out and unable to trade at the public price with a profit: extra-marginal
        profitable = np.where(buyer, q_pub < limit, q_pub > limit)
        missed = ~filled & ((outcome != NOT_MATCHED) | profitable)
        # the reference quote was priced out at the public price (buyer below it)
        ref_out = np.where(buyer, ref < q_pub, ref > q_pub)
        # own result informative about the reference quote: a fill of a quote no more
        # aggressive than it (h >= 0), a miss of a quote no less aggressive (h <= 0)
        less_own = filled & (h >= 0.0)
        more_own = missed & (h <= 0.0)
        # otherwise the public rule on the reference quote (a missed order is never told
        # to be less aggressive)
        more_pub = ((filled & (h < 0.0)) | (missed & (h > 0.0))) & ref_out
        less_pub = filled & (h < 0.0) & ~ref_out
        more = more_own | more_pub
        less = less_own | less_pub
        q = np.where(less_own, q_own, q_pub)
        change = (more | less) & ~np.isnan(q)
        if not change.any():
            return
        at, q, p, buyer, more = rows[change], q[change], p[change], buyer[change], more[change]
        tb = self.theta_bar(at, p)
        x = shout_aggressiveness(
            buyer, q, self.limit[at], p, self.theta[at], tb, self.p_min, self.p_max
        )
        r, lam_r = self.r[at], self.lambda_r[at]
        lam_up, lam_down = self.lambda_a_up[at], self.lambda_a_down[at]
        up = np.maximum((1.0 + lam_r) * x + lam_up, r + lam_up)
        down = np.minimum((1.0 - lam_r) * x - lam_down, r - lam_down)
        delta = np.where(more, up, down)
        self.r[at] = np.minimum(np.maximum(r + self.beta1[at] * (delta - r), -1.0), 1.0)

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

    def observe(self, view: PublicView, info: RoundInfo, own: OwnResult) -> None:
        self.population.observe(view, info, [own])


register_strategy(AA_STRATEGY)(AATrader)
