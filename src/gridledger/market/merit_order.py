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

from gridledger.market.double_auction import merit_pairs, sorted_books
from gridledger.market.greedy import kappa_fraction, make_trade, split_books
from gridledger.market.orders import Bid, ClearingResult, Trade
from gridledger.market.welfare import order_surplus_per_kwh_micro

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
    for buy, sell, e_wh in merit_pairs(buys, sells):
        fee = int(table[sell.bus, buy.bus])
        if order_surplus_per_kwh_micro(buy, sell, fee) > 0:
            trades.append(make_trade(buy, sell, e_wh, fee, kappa))
    return ClearingResult(trades=tuple(trades), price_per_kwh_micro=None)
