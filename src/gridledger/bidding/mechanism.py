"""Bidding mechanisms: how an interval's rounds of bids come about.

A mechanism turns the members' positions for one interval (side, quantity and
limit price, from forecasts) into the bids of every round; the last round is
binding. Rounds before it are indicative: the market clears them with the same
rule, publishes the best bid, best ask and trade prices, and members adapt.

- ``zi`` / ``aa`` (and any registered strategy): :class:`TraderMechanism`; members
  may choose their strategy individually. AA members are priced together by one
  vectorised population, every other member by its own trader from the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gridledger.bidding import zero_intelligence as _zi  # noqa: F401  (registers "zi")
from gridledger.bidding import zip as _zip  # noqa: F401  (registers "zip")
from gridledger.bidding.adaptive_aggressive import AA_STRATEGY, AAPopulation
from gridledger.bidding.base import (
    PublicView,
    Trader,
    TraderSpec,
    make_trader,
)
from gridledger.bidding.public import own_results, round_info, round_infos
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import price_to_micro

__all__ = [
    "ClearRule",
    "Mechanism",
    "Position",
    "TraderMechanism",
    "own_results",
    "round_info",
]

PAST_PRICES_KEPT = 50

ClearRule = Callable[[Sequence[Bid]], ClearingResult]
"""A clearing rule: the bids of one round in, the clearing result out."""


@dataclass(frozen=True, slots=True)
class Position:
    """A member's order for one interval, before pricing."""

    member: int
    bus: int
    side: Side
    e_wh: int
    limit_price_per_kwh: float
    risk_attitude: str | float
    strategy: str


class Mechanism(Protocol):
    def run_rounds(
        self, interval: int, positions: Sequence[Position], clear: ClearRule
    ) -> list[list[Bid]]:
        """Bids of every round of ``interval`` (last binding)."""
        ...


@dataclass
class TraderMechanism:
    """Rounds priced by per-member traders (``zi``, ``aa``, ...).

    Members whose strategy is ``aa`` are rows of one vectorised
    :class:`~gridledger.bidding.adaptive_aggressive.AAPopulation`, priced together;
    members with any other strategy get their own trader from the registry.
    """

    rounds: int
    feed_in_per_kwh: float
    retail_per_kwh: float
    seed: int
    fees: np.ndarray | None = None
    """Use-of-system fee table (micro-tokens/kWh, [seller_bus, buyer_bus]); public."""
    traders: dict[tuple[int, Side], Trader] = field(default_factory=dict)
    """Non-AA traders by (member, side)."""
    aa_rows: dict[tuple[int, Side], int] = field(default_factory=dict)
    """Row of each AA (member, side) in :attr:`aa`."""
    aa: AAPopulation | None = None
    past_trade_prices: dict[Side, list[float]] = field(
        default_factory=lambda: {Side.BUY: [], Side.SELL: []}
    )

    def _spec(self, pos: Position) -> TraderSpec:
        return TraderSpec(
            member=pos.member,
            side="buy" if pos.side == Side.BUY else "sell",
            limit_price_per_kwh=pos.limit_price_per_kwh,
            risk_attitude=pos.risk_attitude,
            feed_in_per_kwh=self.feed_in_per_kwh,
            retail_per_kwh=self.retail_per_kwh,
        )

    def _trader(self, pos: Position) -> Trader:
        key = (pos.member, pos.side)
        if key not in self.traders:
            rng = np.random.default_rng([self.seed, pos.member, int(pos.side)])
            self.traders[key] = make_trader(pos.strategy, self._spec(pos), rng)
        return self.traders[key]

    def _aa_row(self, pos: Position) -> int:
        key = (pos.member, pos.side)
        if key not in self.aa_rows:
            if self.aa is None:
                self.aa = AAPopulation([], p_min=self.feed_in_per_kwh, p_max=self.retail_per_kwh)
            self.aa_rows[key] = self.aa.add(self._spec(pos))
        return self.aa_rows[key]

    def run_rounds(
        self, interval: int, positions: Sequence[Position], clear: ClearRule
    ) -> list[list[Bid]]:
        def new_view(side: Side) -> PublicView:
            return PublicView(
                interval=interval,
                round=0,
                rounds=self.rounds,
                feed_in_per_kwh=self.feed_in_per_kwh,
                retail_per_kwh=self.retail_per_kwh,
                past_trade_prices=list(self.past_trade_prices[side]),
            )

        # one public view per (side, bus): the book as delivered to that bus
        views = {(pos.side, pos.bus): new_view(pos.side) for pos in positions}
        aa_at = [i for i, pos in enumerate(positions) if pos.strategy == AA_STRATEGY]
        aa_rows = np.array([self._aa_row(positions[i]) for i in aa_at], dtype=np.intp)
        aa_keys = [(positions[i].side, positions[i].bus) for i in aa_at]
        others = [i for i, pos in enumerate(positions) if pos.strategy != AA_STRATEGY]
        all_rounds: list[list[Bid]] = []
        low, high = self.feed_in_per_kwh, self.retail_per_kwh
        for k in range(self.rounds):
            for view in views.values():
                view.round = k
            quotes = [0.0] * len(positions)
            if aa_at and self.aa is not None:
                aa_quotes = self.aa.quote_rows(aa_rows, [views[key] for key in aa_keys])
                for i, quote in zip(aa_at, aa_quotes.tolist(), strict=True):
                    quotes[i] = quote
            for i in others:
                pos = positions[i]
                quotes[i] = self._trader(pos).quote(views[(pos.side, pos.bus)])
            bids = []
            for pos, quote in zip(positions, quotes, strict=True):
                price = min(max(quote, low), high)
                if pos.side == Side.BUY:
                    price = min(price, pos.limit_price_per_kwh)
                else:
                    price = max(price, pos.limit_price_per_kwh)
                bids.append(Bid(pos.member, pos.side, pos.e_wh, price_to_micro(price), pos.bus))
            all_rounds.append(bids)
            result = clear(bids)
            infos = round_infos(bids, result, views, self.fees)
            owns = own_results(bids, result, self.fees)
            if aa_at and self.aa is not None:
                self.aa.observe_rows(
                    aa_rows,
                    [views[key] for key in aa_keys],
                    [infos[key] for key in aa_keys],
                    [owns[i] for i in aa_at],
                )
            for i in others:
                pos = positions[i]
                key = (pos.side, pos.bus)
                self._trader(pos).observe(views[key], infos[key], owns[i])
            for key, view in views.items():
                view.history.append(infos[key])
            if k == self.rounds - 1:
                for side in (Side.BUY, Side.SELL):
                    kept = self.past_trade_prices[side]
                    kept.extend(round_info(bids, result, side).trade_prices)
                    del kept[:-PAST_PRICES_KEPT]
        return all_rounds
