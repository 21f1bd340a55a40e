"""Fee-blind merit-order clearing, then charging the fee: the baseline rule.

Rule (what a market that ignores the network does, with the operator's fee
added afterwards):

1. Buy orders sorted by price descending, sell orders by price ascending, ties
   to the lower member id (as :func:`gridledger.market.double_auction.sorted_books`).
2. Walk both books with two cursors while the current bid is at least the
   current ask, pairing ``min(remaining)`` Wh, exactly as the uniform-price rule
   does; the pairing never looks at buses or fees.
3. Each paired segment is then charged the fee ``c = fees[seller_bus, buyer_bus]``.
   A segment whose net surplus ``s = b - a - c`` is not positive cannot pay the
   fee within the limits and is cancelled (its energy stays with the grid).
4. Kept segments are priced like the greedy rule: seller receives
   ``a + (s * num) // den``, buyer pays that plus ``c`` (budget balance per trade).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy.typing as npt

from gridledger.market.double_auction import sorted_books
from gridledger.market.greedy import kappa_fraction, make_trade, split_books
from gridledger.market.orders import Bid, ClearingResult, Trade

__all__ = ["clear_merit_order"]


def clear_merit_order(
    bids: Sequence[Bid],
    fees: npt.ArrayLike | None = None,
    kappa: Fraction | float = Fraction(1, 2),
) -> ClearingResult:
    """Clear ``bids`` by the fee-blind merit order of this module's docstring."""
    kappa = kappa_fraction(kappa)
    books = split_books(bids, fees)
    table = books.fees
    buys, sells = sorted_books([*books.buys, *books.sells])
    trades: list[Trade] = []
    i = j = 0
    rem_buy = buys[0].e_wh if buys else 0
    rem_sell = sells[0].e_wh if sells else 0
    while i < len(buys) and j < len(sells):
        buy, sell = buys[i], sells[j]
        if buy.price_per_kwh_micro < sell.price_per_kwh_micro:
            break
        e_wh = min(rem_buy, rem_sell)
        fee = int(table[sell.bus, buy.bus])
        if buy.price_per_kwh_micro - sell.price_per_kwh_micro - fee > 0:
            trades.append(make_trade(buy, sell, e_wh, fee, kappa))
        rem_buy -= e_wh
        rem_sell -= e_wh
        if rem_buy == 0:
            i += 1
            rem_buy = buys[i].e_wh if i < len(buys) else 0
        if rem_sell == 0:
            j += 1
            rem_sell = sells[j].e_wh if j < len(sells) else 0
    return ClearingResult(trades=tuple(trades), price_per_kwh_micro=None)
