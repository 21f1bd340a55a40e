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
    FILLED,
    NOT_MATCHED,
    PARTLY_FILLED,
    RATIONED,
    OwnResult,
    PublicView,
    RoundInfo,
    Trader,
    TraderSpec,
    make_trader,
)
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import micro_to_price, price_to_micro

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
        trade_e_wh=tuple(t.e_wh for t in trades),
    )


def _fee(fees: np.ndarray | None, seller_bus: int, buyer_bus: int) -> int:
    return 0 if fees is None else int(fees[seller_bus, buyer_bus])


def own_results(
    bids: Sequence[Bid], result: ClearingResult, fees: np.ndarray | None = None
) -> list[OwnResult]:
    """Each bid's own outcome in the cleared round (same order as ``bids``).

    Filled / partly filled from the trades naming the member; an order with no trade is
    *rationed* if its price is at or through the margin, i.e. it would have had a
    non-negative net surplus ``b - a - c`` with some counterparty that did trade (the
    other side ran out, or it lost a tie), else *not matched* (priced out). Prices are
    the member's own: what a buyer pays (fee included), what a seller receives.
    """
    traded: dict[tuple[int, Side], int] = {}
    paid: dict[tuple[int, Side], int] = {}
    # cheapest traded ask per seller bus, dearest traded bid per buyer bus
    ask_at: dict[int, int] = {}
    bid_at: dict[int, int] = {}
    price_of = {(b.member, b.side): b.price_per_kwh_micro for b in bids}
    for t in result.trades:
        for key, micro in (
            ((t.buyer, Side.BUY), t.buyer_price_per_kwh_micro),
            ((t.seller, Side.SELL), t.seller_price_per_kwh_micro),
        ):
            traded[key] = traded.get(key, 0) + t.e_wh
            paid[key] = paid.get(key, 0) + micro * t.e_wh
        ask = price_of.get((t.seller, Side.SELL))
        bid = price_of.get((t.buyer, Side.BUY))
        if ask is not None:
            ask_at[t.seller_bus] = min(ask_at.get(t.seller_bus, ask), ask)
        if bid is not None:
            bid_at[t.buyer_bus] = max(bid_at.get(t.buyer_bus, bid), bid)
    # a buyer at q is at the margin if b >= min_p (ask_p + c[p, q]); a seller at p if
    # a <= max_q (bid_q - c[p, q])
    buy_bar: dict[int, int | None] = {}
    sell_bar: dict[int, int | None] = {}
    out = []
    for b in bids:
        key = (b.member, b.side)
        got = traded.get(key, 0)
        if got > 0:
            outcome = FILLED if got >= b.e_wh else PARTLY_FILLED
            price = micro_to_price(paid[key] // got)
            out.append(OwnResult(outcome, b.e_wh, got, price))
            continue
        if b.side == Side.BUY:
            if b.bus not in buy_bar:
                buy_bar[b.bus] = min(
                    (a + _fee(fees, p, b.bus) for p, a in ask_at.items()), default=None
                )
            bar = buy_bar[b.bus]
            at_margin = bar is not None and b.price_per_kwh_micro >= bar
        else:
            if b.bus not in sell_bar:
                sell_bar[b.bus] = max(
                    (v - _fee(fees, b.bus, q) for q, v in bid_at.items()), default=None
                )
            bar = sell_bar[b.bus]
            at_margin = bar is not None and b.price_per_kwh_micro <= bar
        out.append(OwnResult(RATIONED if at_margin else NOT_MATCHED, b.e_wh))
    return out


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
            infos = {key: round_info(bids, result, key[0], key[1], self.fees) for key in views}
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
