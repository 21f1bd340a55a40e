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


def round_info(
    bids: Sequence[Bid],
    result: ClearingResult,
    side: Side | None = None,
    bus: int | None = None,
    fees: np.ndarray | None = None,
) -> RoundInfo:
    """Public summary of a cleared round, as seen by a member on ``side`` at ``bus``.

    With network fees a trade has two prices: what the buyer pays and what the
    seller receives (the difference is the fee). ``side`` picks the prices that
    side sees (buyers learn from buyer prices, sellers from seller prices);
    ``None`` gives the midpoint of the two. With a fee table and a bus, the other
    side's best quote is the one *delivered to that bus*: a buyer at q sees
    ``min_j (a_j + c[bus_j, q])``, a seller at p sees ``max_i (b_i - c[p, bus_i])``,
    so that "accepting the best offer" means a trade that can actually clear, and
    trade prices likewise: the seller's price plus the fee to this bus for a buyer,
    the buyer's price minus the fee from this bus for a seller.
    """
    fee = fees if fees is not None and bus is not None else None
    buys = [b.price_per_kwh_micro for b in bids if b.side == Side.BUY]
    sells = [b.price_per_kwh_micro for b in bids if b.side == Side.SELL]
    trades = result.trades
    if side == Side.BUY:
        if fee is not None:
            sells = [
                b.price_per_kwh_micro + int(fee[b.bus, bus]) for b in bids if b.side == Side.SELL
            ]
            micro = [t.seller_price_per_kwh_micro + int(fee[t.seller_bus, bus]) for t in trades]
        else:
            micro = [t.buyer_price_per_kwh_micro for t in trades]
    elif side == Side.SELL:
        if fee is not None:
            buys = [
                b.price_per_kwh_micro - int(fee[bus, b.bus]) for b in bids if b.side == Side.BUY
            ]
            micro = [t.buyer_price_per_kwh_micro - int(fee[bus, t.buyer_bus]) for t in trades]
        else:
            micro = [t.seller_price_per_kwh_micro for t in trades]
    else:
        micro = [(t.buyer_price_per_kwh_micro + t.seller_price_per_kwh_micro) // 2 for t in trades]
    prices = tuple(micro_to_price(m) for m in micro)
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
    fees: np.ndarray | None = None
    """Use-of-system fee table (micro-tokens/kWh, [seller_bus, buyer_bus]); public."""
    traders: dict[tuple[int, Side], Trader] = field(default_factory=dict)
    past_trade_prices: dict[Side, list[float]] = field(
        default_factory=lambda: {Side.BUY: [], Side.SELL: []}
    )

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
        all_rounds: list[list[Bid]] = []
        low, high = self.feed_in_per_kwh, self.retail_per_kwh
        for k in range(self.rounds):
            bids = []
            for pos in positions:
                view = views[(pos.side, pos.bus)]
                view.round = k
                price = min(max(self._trader(pos).quote(view), low), high)
                if pos.side == Side.BUY:
                    price = min(price, pos.limit_price_per_kwh)
                else:
                    price = max(price, pos.limit_price_per_kwh)
                bids.append(Bid(pos.member, pos.side, pos.e_wh, price_to_micro(price), pos.bus))
            all_rounds.append(bids)
            result = clear(bids)
            infos = {key: round_info(bids, result, key[0], key[1], self.fees) for key in views}
            for pos in positions:
                key = (pos.side, pos.bus)
                self._trader(pos).observe(views[key], infos[key])
            for key, view in views.items():
                view.history.append(infos[key])
            if k == self.rounds - 1:
                for side in (Side.BUY, Side.SELL):
                    kept = self.past_trade_prices[side]
                    kept.extend(round_info(bids, result, side).trade_prices)
                    del kept[:-PAST_PRICES_KEPT]
        return all_rounds
