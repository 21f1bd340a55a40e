"""Bidding mechanisms: how an interval's rounds of bids come about.

A mechanism turns the members' positions for one interval (side, quantity and
limit price, from forecasts) into the bids of every round; the last round is
binding. Rounds before it are indicative: the market clears them with the same
rule, publishes the best bid, best ask and trade prices, and members adapt.

- ``zi`` / ``aa`` (and any registered strategy): :class:`TraderMechanism`, each
  member priced by its own trader (``bidding`` registry); members may choose
  their strategy individually.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gridledger.bidding import PublicView, RoundInfo, Trader, TraderSpec, make_trader
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import micro_to_price, price_to_micro

__all__ = ["Mechanism", "Position", "TraderMechanism", "round_info"]

PAST_PRICES_KEPT = 50


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
        self,
        interval: int,
        positions: Sequence[Position],
        clear: Callable[[Sequence[Bid]], ClearingResult],
    ) -> list[list[Bid]]:
        """Bids of every round of ``interval`` (last binding)."""
        ...


def round_info(bids: Sequence[Bid], result: ClearingResult) -> RoundInfo:
    """Public summary of a cleared round."""
    buys = [b.price_per_kwh_micro for b in bids if b.side == Side.BUY]
    sells = [b.price_per_kwh_micro for b in bids if b.side == Side.SELL]
    prices = tuple(
        micro_to_price((t.buyer_price_per_kwh_micro + t.seller_price_per_kwh_micro) // 2)
        for t in result.trades
    )
    return RoundInfo(
        best_bid=micro_to_price(max(buys)) if buys else None,
        best_ask=micro_to_price(min(sells)) if sells else None,
        trade_prices=prices,
    )


@dataclass
class TraderMechanism:
    """Rounds priced by per-member traders (``zi``, ``aa``, ...)."""

    rounds: int
    feed_in_per_kwh: float
    retail_per_kwh: float
    seed: int
    traders: dict[tuple[int, Side], Trader] = field(default_factory=dict)
    past_trade_prices: list[float] = field(default_factory=list)

    def _trader(self, pos: Position) -> Trader:
        key = (pos.member, pos.side)
        if key not in self.traders:
            spec = TraderSpec(
                member=pos.member,
                side="buy" if pos.side == Side.BUY else "sell",
                limit_price_per_kwh=pos.limit_price_per_kwh,
                risk_attitude=pos.risk_attitude,
                feed_in_per_kwh=self.feed_in_per_kwh,
                retail_per_kwh=self.retail_per_kwh,
            )
            rng = np.random.default_rng([self.seed, pos.member, int(pos.side)])
            self.traders[key] = make_trader(pos.strategy, spec, rng)
        return self.traders[key]

    def run_rounds(
        self,
        interval: int,
        positions: Sequence[Position],
        clear: Callable[[Sequence[Bid]], ClearingResult],
    ) -> list[list[Bid]]:
        view = PublicView(
            interval=interval,
            round=0,
            rounds=self.rounds,
            feed_in_per_kwh=self.feed_in_per_kwh,
            retail_per_kwh=self.retail_per_kwh,
            past_trade_prices=list(self.past_trade_prices),
        )
        all_rounds: list[list[Bid]] = []
        low, high = self.feed_in_per_kwh, self.retail_per_kwh
        for k in range(self.rounds):
            view.round = k
            bids = []
            for pos in positions:
                price = min(max(self._trader(pos).quote(view), low), high)
                if pos.side == Side.BUY:
                    price = min(price, pos.limit_price_per_kwh)
                else:
                    price = max(price, pos.limit_price_per_kwh)
                bids.append(Bid(pos.member, pos.side, pos.e_wh, price_to_micro(price), pos.bus))
            all_rounds.append(bids)
            info = round_info(bids, clear(bids))
            for pos in positions:
                self._trader(pos).observe(view, info)
            view.history.append(info)
            if k == self.rounds - 1:
                self.past_trade_prices.extend(info.trade_prices)
                del self.past_trade_prices[:-PAST_PRICES_KEPT]
        return all_rounds
