"""The bidding protocol: what a strategy sees and what it returns.

A strategy prices one member's order for one side of the market. Quantities come
from the member's forecast (the simulation decides the side and the kWh); the
strategy decides the price, round by round, from:

- its own private parameters (:class:`TraderSpec`: limit price, risk attitude),
- the public results of earlier rounds of this interval and of earlier
  intervals (:class:`PublicView`).

Prices here are floats in tokens per kWh; the simulation converts them to the
integer micro-token units of ``gridledger.market``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from gridledger.errors import GridledgerError

__all__ = [
    "FILLED",
    "NOT_MATCHED",
    "OUTCOME_NAMES",
    "PARTLY_FILLED",
    "RATIONED",
    "STRATEGIES",
    "OwnResult",
    "PublicView",
    "RoundInfo",
    "Trader",
    "TraderFactory",
    "TraderSpec",
    "make_trader",
    "register_strategy",
]

SideName = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class TraderSpec:
    """A member's private parameters for one side of the market.

    ``limit_price_per_kwh``: a buyer's value of energy (never above the retail
    tariff) or a seller's marginal cost (never below the feed-in tariff).
    ``risk_attitude``: ``"averse"``, ``"neutral"``, ``"seeking"`` or a number in
    [-1, 1] (initial aggressiveness; see ``bidding.adaptive_aggressive``).
    """

    member: int
    side: SideName
    limit_price_per_kwh: float
    risk_attitude: str | float
    feed_in_per_kwh: float
    retail_per_kwh: float


@dataclass(frozen=True, slots=True)
class RoundInfo:
    """Public result of one finished bidding round.

    ``best_bid``/``best_ask``: highest buy and lowest sell price submitted (None if
    that side was empty). ``trade_prices``: prices of the (indicative or binding)
    trades of the round, in clearing order; empty if nothing crossed.
    """

    best_bid: float | None
    best_ask: float | None
    trade_prices: tuple[float, ...] = ()
    trade_e_wh: tuple[int, ...] = ()
    """Energy of each trade (same order as ``trade_prices``); empty means 1 each."""

    def mean_price(self) -> float | None:
        """Energy-weighted mean trade price of the round (None if nothing traded)."""
        if not self.trade_prices:
            return None
        if len(self.trade_e_wh) != len(self.trade_prices):
            return math.fsum(self.trade_prices) / len(self.trade_prices)
        total = sum(self.trade_e_wh)
        if total <= 0:
            return math.fsum(self.trade_prices) / len(self.trade_prices)
        weighted = math.fsum(map(operator.mul, self.trade_prices, self.trade_e_wh))
        return weighted / total


FILLED = 0
"""All of the order's energy traded."""
PARTLY_FILLED = 1
"""Some, not all, of the order's energy traded."""
RATIONED = 2
"""Nothing traded although the order was priced at or through the clearing margin (it
would have had a non-negative surplus with a counterparty that traded): the other side
ran out, or it lost a tie."""
NOT_MATCHED = 3
"""Nothing traded and the order was priced out (worse than every traded counterparty)."""
OUTCOME_NAMES = ("filled", "partly filled", "rationed", "not matched")


@dataclass(frozen=True, slots=True)
class OwnResult:
    """Private result of one member's order in a finished round (only that member sees it).

    ``outcome``: :data:`FILLED`, :data:`PARTLY_FILLED`, :data:`RATIONED` or
    :data:`NOT_MATCHED`. ``traded_wh`` of ``e_wh`` offered; ``price_per_kwh``: the
    energy-weighted mean price of its own trades as it pays / receives them (a buyer's
    price includes the network fee), None if nothing traded.
    """

    outcome: int
    e_wh: int
    traded_wh: int = 0
    price_per_kwh: float | None = None


@dataclass(slots=True)
class PublicView:
    """Everything public a trader may use when pricing the next round."""

    interval: int
    round: int
    rounds: int
    feed_in_per_kwh: float
    retail_per_kwh: float
    history: list[RoundInfo] = field(default_factory=list)
    """Earlier rounds of this interval, oldest first."""
    past_trade_prices: list[float] = field(default_factory=list)
    """Binding trade prices of earlier intervals, oldest first (bounded length)."""


class Trader(Protocol):
    """A stateful pricing agent for one member and one side."""

    spec: TraderSpec

    def quote(self, view: PublicView) -> float:
        """Price (tokens/kWh) of this member's order in the coming round."""
        ...

    def observe(self, view: PublicView, info: RoundInfo, own: OwnResult) -> None:
        """Learn from the round just finished: its public result and the own order's."""
        ...


TraderFactory = Callable[[TraderSpec, np.random.Generator], Trader]

STRATEGIES: dict[str, TraderFactory] = {}


def register_strategy(name: str) -> Callable[[TraderFactory], TraderFactory]:
    """Class decorator / function decorator adding a strategy under ``name``."""

    def add(factory: TraderFactory) -> TraderFactory:
        STRATEGIES[name] = factory
        return factory

    return add


def make_trader(name: str, spec: TraderSpec, rng: np.random.Generator) -> Trader:
    """Build a trader of strategy ``name`` (``zi``, ``aa``, ...)."""
    if name not in STRATEGIES:
        message = f"unknown bidding strategy {name!r}; known: {sorted(STRATEGIES)}"
        raise GridledgerError(message)
    return STRATEGIES[name](spec, rng)
