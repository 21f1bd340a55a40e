"""Gains from trade: the one definition of a trade's surplus, and its sums.

A trade of ``e_wh`` from seller ``s`` to buyer ``b`` with use-of-system fee ``c``
(micro-tokens per kWh) creates the surplus ``(v_b - k_s - c)`` per kWh, where ``v``
and ``k`` are the prices one measures at: the bids (the clearing's objective) or
the members' true values and costs (the welfare of an outcome). Every surplus and
welfare figure of the project is computed by a function of this module
(docs/methods.md, section "Clearing with fees").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gridledger.market.orders import Bid, Trade
from gridledger.market.units import money_micro

__all__ = [
    "PriceLookup",
    "bid_surplus_wh_micro",
    "order_surplus_per_kwh_micro",
    "surplus_per_kwh_micro",
    "surplus_wh_micro",
    "welfare_micro",
]

PriceLookup = Mapping[int, int] | Sequence[int]
"""Micro-tokens per kWh by member id (a mapping, or a sequence indexed by id)."""


def order_surplus_per_kwh_micro(buyer: Bid, seller: Bid, fee_per_kwh_micro: int) -> int:
    """``b - a - c`` of a buy and a sell order at their bid prices (micro-tokens/kWh, may be < 0).

    The pair's net surplus ``s_ij`` that the clearing rules rank, split and certify.
    """
    return buyer.price_per_kwh_micro - seller.price_per_kwh_micro - fee_per_kwh_micro


def surplus_per_kwh_micro(trade: Trade, values: PriceLookup, costs: PriceLookup) -> int:
    """``v_buyer - k_seller - fee`` of one trade, in micro-tokens per kWh (may be < 0)."""
    return values[trade.buyer] - costs[trade.seller] - trade.fee_per_kwh_micro


def surplus_wh_micro(trades: Sequence[Trade], values: PriceLookup, costs: PriceLookup) -> int:
    """Exact surplus ``sum (v_b - k_s - c) * e_wh``, in Wh x micro-tokens/kWh (1e-3 micro)."""
    return sum(surplus_per_kwh_micro(t, values, costs) * t.e_wh for t in trades)


def bid_surplus_wh_micro(trades: Sequence[Trade], bids: Sequence[Bid]) -> int:
    """:func:`surplus_wh_micro` at the bid prices: ``sum (b_i - a_j - c) * e_wh`` (Wh x micro/kWh).

    The clearing's objective; ``bids`` must hold one order per member that trades.
    """
    price = {b.member: b.price_per_kwh_micro for b in bids}
    return surplus_wh_micro(trades, price, price)


def welfare_micro(trades: Sequence[Trade], values: PriceLookup, costs: PriceLookup) -> int:
    """Surplus in whole micro-tokens, each trade's amount rounded toward zero.

    The per-trade amount is ``money_micro(e_wh, |surplus|)`` with the surplus's
    sign, the same rounding the settlement applies to payments.
    """
    total = 0
    for t in trades:
        surplus = surplus_per_kwh_micro(t, values, costs)
        sign = 1 if surplus >= 0 else -1
        total += sign * money_micro(t.e_wh, abs(surplus))
    return total
