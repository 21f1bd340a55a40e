"""Python side of the on-chain fee-aware clearing check (contracts/FeeClearing.sol).

The library checks a clearing result computed off chain instead of searching for it:

- ``verifyGreedy``: the trades equal :func:`gridledger.market.greedy.clear_greedy` to the
  unit. Inputs: the bid words, a queue order (:func:`greedy_order`) and the trade words in
  clearing order.
- ``verifyOptimal``: the trades are the canonical welfare optimum of
  :func:`gridledger.market.optimal.solve_optimal` (the tie-break of
  :mod:`gridledger.market.canonical`). Inputs: bid words, trade words in the canonical
  (north-west-corner) order, one party hint per trade (:func:`optimal_parties`) and two
  duals per bid (:func:`dual_words`: the welfare duals, then the tie-break duals). A
  result that is welfare-optimal but not the canonical one reverts
  ``NonCanonicalOptimum(check, index)``.

Both need the fee table packed as ``B*B`` big-endian uint32 (:func:`pack_fee_table`,
micro-tokens per kWh, entry ``(p, q)`` at byte ``4 * (p * B + q)``, ``fees[seller_bus,
buyer_bus]``) whose keccak256 the operator records once. Welfare duals are in micro-tokens
per kWh, the unit of prices; tie-break duals in the units of the penalty weights.

The test and benchmark harness of the library (``contracts/FeeClearingHarness.sol``) is
driven by ``benchmarks/fee_harness.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from gridledger.errors import ChainError
from gridledger.ledger.path_data import is_path_form, pack_path_fees
from gridledger.market.greedy import kappa_fraction
from gridledger.market.orders import Bid, Side, Trade
from gridledger.market.path_fees import PathFees

__all__ = [
    "bus_bounds",
    "dual_words",
    "greedy_entries",
    "greedy_order",
    "kappa_args",
    "optimal_parties",
    "pack_fee_table",
]

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
TIE_DUAL_BOUND = 1 << 240


def pack_fee_table(fees: npt.ArrayLike | PathFees) -> bytes:
    """The fee table as ``B*B`` big-endian uint32 (row = seller bus, column = buyer bus), or
    fees in path form as :func:`~gridledger.ledger.path_data.pack_path_fees` packs them."""
    if isinstance(fees, PathFees):
        return pack_path_fees(fees)
    table = np.asarray(fees)
    if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] == 0:
        message = f"fee table must be square (B, B) with B >= 1, got shape {table.shape}"
        raise ChainError(message)
    if table.shape[0] > 65536:
        message = f"fee table has {table.shape[0]} buses; the chain allows at most 65536"
        raise ChainError(message)
    if table.dtype.kind not in "iu" and np.any(table != np.round(table)):
        message = "fee table must hold integer micro-tokens per kWh"
        raise ChainError(message)
    ints = table.astype(np.int64)
    if np.any(ints < 0) or np.any(ints > U32):
        message = (
            f"fee table entries must be in 0..{U32} micro-tokens per kWh "
            f"(got {int(ints.min())}..{int(ints.max())})"
        )
        raise ChainError(message)
    packed = ints.astype(">u4").tobytes()
    if is_path_form(packed):  # eight fees that spell the path form's magic: never in practice
        message = "fee table: its first eight entries read as path-form data; change one fee"
        raise ChainError(message)
    return packed


def kappa_args(kappa: Fraction | float) -> tuple[int, int]:
    """``(num, den)`` of kappa as the greedy reference converts it."""
    frac = kappa_fraction(kappa)
    return frac.numerator, frac.denominator


def greedy_order(bids: Sequence[Bid]) -> tuple[list[int], int]:
    """Queue order for ``verifyGreedy`` and the number of buy bids.

    ``order[:n_buys]`` indexes the buy bids by (bus asc, price desc, member asc),
    ``order[n_buys:]`` the sell bids by (bus asc, price asc, member asc).
    """
    buys = [k for k, b in enumerate(bids) if b.side == Side.BUY]
    sells = [k for k, b in enumerate(bids) if b.side == Side.SELL]
    buys.sort(key=lambda k: (bids[k].bus, -bids[k].price_per_kwh_micro, bids[k].member))
    sells.sort(key=lambda k: (bids[k].bus, bids[k].price_per_kwh_micro, bids[k].member))
    return buys + sells, len(buys)


def greedy_entries(bids: Sequence[Bid], trades: Sequence[Trade]) -> int:
    """The entries a paged greedy verification checks (``Market.clearGreedy``'s ``upTo``
    runs over them): the trades, then the seller buses left with energy after them, each
    checked for surplus left against every buyer bus still active."""
    sold: dict[int, int] = {}
    for t in trades:
        sold[t.seller] = sold.get(t.seller, 0) + t.e_wh
    left = {b.bus for b in bids if b.side == Side.SELL and b.e_wh > sold.get(b.member, 0)}
    return len(trades) + len(left)


def optimal_parties(bids: Sequence[Bid], trades: Sequence[Trade]) -> list[int]:
    """Per trade ``buyer_bid_index << 128 | seller_bid_index`` (hint checked on chain)."""
    index = {b.member: k for k, b in enumerate(bids)}
    out = []
    for k, t in enumerate(trades):
        if t.buyer not in index or t.seller not in index:
            message = f"trade #{k}: buyer {t.buyer} or seller {t.seller} has no bid"
            raise ChainError(message)
        out.append((index[t.buyer] << 128) | index[t.seller])
    return out


def dual_words(
    bids: Sequence[Bid],
    buyer_dual: Mapping[int, int],
    seller_dual: Mapping[int, int],
    tie_buyer_dual: Mapping[int, int] | None = None,
    tie_seller_dual: Mapping[int, int] | None = None,
    *,
    n_buses: int,
) -> list[int]:
    """The ``duals`` argument of ``verifyOptimal``: ``2 n + 4 n_buses`` words for ``n`` bids.

    Word ``k`` is bid ``k``'s welfare dual (u for a buy bid, v for a sell bid; micro-tokens
    per kWh, 0..2**64-1); word ``n + k`` its tie-break dual (signed, two's complement,
    ``|x| < 2**240``); then the bounds per bus the chain checks every bid against
    (:func:`bus_bounds`). Missing entries are 0.
    """
    out = []
    for b in bids:
        value = (buyer_dual if b.side == Side.BUY else seller_dual).get(b.member, 0)
        if value != int(value) or not 0 <= value <= U64:
            message = f"dual of member {b.member} is {value}, not an integer in 0..2**64-1"
            raise ChainError(message)
        out.append(int(value))
    ties = []
    for b in bids:
        table = tie_buyer_dual if b.side == Side.BUY else tie_seller_dual
        value = 0 if table is None else table.get(b.member, 0)
        if value != int(value) or not -TIE_DUAL_BOUND < value < TIE_DUAL_BOUND:
            message = f"tie-break dual of member {b.member} is {value}, not an integer below 2**240"
            raise ChainError(message)
        ties.append(int(value))
    return out + [t % (1 << 256) for t in ties] + bus_bounds(bids, out, ties, n_buses)


#: FeeClearing's offset that keeps b - u and a + v positive (|s| < 2**65).
_OFF = 1 << 66


def bus_bounds(
    bids: Sequence[Bid], duals: Sequence[int], ties: Sequence[int], n_buses: int
) -> list[int]:
    """The bounds per bus an optimal certificate claims (``FeeClearing.verifyOptimal``):
    ``top`` (per bus, the max over its buyers of ``b - u + OFF``, 0 for none; then the max
    of ``-(member + 1) - u'`` over the buyers attaining it) and ``bottom`` (the min over its
    sellers of ``a + v + OFF``, 0 for none; then the min of ``member + 1 + v'`` over the
    sellers attaining it), ``4 n_buses`` words, signed ones in two's complement. The chain
    checks every bid inside its bus's bound and dual feasibility on the bounds; these are
    the exact ones. A bid at a bus past ``n_buses`` is left out (the chain refuses it)."""
    top, top_tie = [0] * n_buses, [0] * n_buses
    bottom, bottom_tie = [0] * n_buses, [0] * n_buses
    for b, d, tie in zip(bids, duals, ties, strict=True):
        if not 0 <= b.bus < n_buses:
            continue
        weight = b.member + 1
        if b.side == Side.BUY:
            x, y = b.price_per_kwh_micro + _OFF - d, -weight - tie
            if x > top[b.bus]:
                top[b.bus], top_tie[b.bus] = x, y
            elif x == top[b.bus] and y > top_tie[b.bus]:
                top_tie[b.bus] = y
        else:
            x, y = b.price_per_kwh_micro + _OFF + d, weight + tie
            if bottom[b.bus] == 0 or x < bottom[b.bus]:
                bottom[b.bus], bottom_tie[b.bus] = x, y
            elif x == bottom[b.bus] and y < bottom_tie[b.bus]:
                bottom_tie[b.bus] = y
    words = [*top, *top_tie, *bottom, *bottom_tie]
    return [w % (1 << 256) for w in words]
