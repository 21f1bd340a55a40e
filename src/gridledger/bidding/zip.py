"""Zero-Intelligence-Plus (ZIP) baseline of Cliff (1997), adapted to sealed rounds.

Registered as strategy ``"zip"``. A ZIP trader quotes ``p = l (1 - mu)`` (buyer) or
``p = l (1 + mu)`` (seller) with a profit margin ``mu >= 0`` that it adapts after every
round by the Widrow-Hoff rule with momentum:

    target ``tau = R q + A``; ``Delta = beta (tau - p)``;
    ``Gamma <- gamma Gamma + (1 - gamma) Delta``; ``p <- p + Gamma``; ``mu`` from ``p``.

Per trader, drawn once from its own random stream (Cliff's ranges): learning rate
``beta ~ U[0.1, 0.5]``, momentum ``gamma ~ U[0, 0.1]``, initial margin
``mu ~ U[0.05, 0.35]``. For every update ``R`` and ``A`` are drawn afresh: to raise the
margin ``R ~ U[1, 1.05]``, ``A ~ U[0, a]``; to lower it ``R ~ U[0.95, 1]``,
``A ~ U[-a, 0]``, with ``a = 0.02 (P_max - P_min)`` (Cliff's 0.05 absolute on a
price scale of a few units, rescaled to the tariff band). Sellers raise, buyers lower
their price when raising the margin.

Sealed-round adaptation of Cliff's conditions, with ``q`` the round's energy-weighted
mean trade price: a filled seller whose price was at or below ``q`` (a buyer at or
above) raises its margin toward ``q``; a trader whose order was partly filled, rationed
or not matched lowers its margin toward ``q`` (or toward the other side's best quote
if nothing traded), never aiming past its own price in the raising direction and
never past its limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gridledger.bidding.base import (
    FILLED,
    OwnResult,
    PublicView,
    RoundInfo,
    TraderSpec,
    register_strategy,
)

__all__ = ["ZIPTrader"]

ZIP_STRATEGY = "zip"
A_SHARE = 0.02


@dataclass
class ZIPTrader:
    spec: TraderSpec
    rng: np.random.Generator
    beta: float = field(init=False)
    gamma: float = field(init=False)
    margin: float = field(init=False)
    momentum: float = 0.0

    def __post_init__(self) -> None:
        self.beta = float(self.rng.uniform(0.1, 0.5))
        self.gamma = float(self.rng.uniform(0.0, 0.1))
        self.margin = float(self.rng.uniform(0.05, 0.35))

    @property
    def buyer(self) -> bool:
        return self.spec.side == "buy"

    def price(self) -> float:
        limit = self.spec.limit_price_per_kwh
        return limit * (1.0 - self.margin) if self.buyer else limit * (1.0 + self.margin)

    def quote(self, view: PublicView) -> float:
        return self.price()

    def _move(self, q: float, raise_margin: bool) -> None:
        a = A_SHARE * (self.spec.retail_per_kwh - self.spec.feed_in_per_kwh)
        if raise_margin == (not self.buyer):  # the target is above q
            r_coef, a_abs = self.rng.uniform(1.0, 1.05), self.rng.uniform(0.0, a)
        else:
            r_coef, a_abs = self.rng.uniform(0.95, 1.0), self.rng.uniform(-a, 0.0)
        target = float(r_coef * q + a_abs)
        p = self.price()
        delta = self.beta * (target - p)
        self.momentum = self.gamma * self.momentum + (1.0 - self.gamma) * delta
        limit = self.spec.limit_price_per_kwh
        p_new = p + self.momentum
        if limit > 0:
            mu = 1.0 - p_new / limit if self.buyer else p_new / limit - 1.0
            self.margin = max(mu, 0.0)

    def observe(self, view: PublicView, info: RoundInfo, own: OwnResult) -> None:
        p = self.price()
        q_round = info.mean_price()
        if own.outcome == FILLED:
            # Cliff: a trade happened at q; a seller with p <= q (buyer p >= q) raises
            q = q_round if q_round is not None else own.price_per_kwh
            if q is not None and ((q <= p) if self.buyer else (q >= p)):
                self._move(q, raise_margin=True)
            return
        # not (fully) filled: lower the margin toward the round price, or toward the
        # other side's best quote if nothing traded, never past the own price
        q = q_round if q_round is not None else (info.best_ask if self.buyer else info.best_bid)
        if q is None:
            return
        q = max(q, p) if self.buyer else min(q, p)
        limit = self.spec.limit_price_per_kwh
        if (q <= limit) if self.buyer else (q >= limit):
            self._move(q, raise_margin=False)


register_strategy(ZIP_STRATEGY)(ZIPTrader)
