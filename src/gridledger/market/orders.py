"""Orders and trades of the market reference, in integer fixed-point units."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gridledger.errors import ClearingError

__all__ = [
    "Bid",
    "ClearingResult",
    "Curtailment",
    "Side",
    "Trade",
    "apply_curtailments",
    "validate_bids",
]

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


class Side(IntEnum):
    """Side of an order; the integer values are the on-chain encoding."""

    BUY = 0
    SELL = 1


@dataclass(frozen=True, slots=True)
class Bid:
    """One member's order in one round.

    ``price_per_kwh_micro`` is the buyer's maximum or the seller's minimum price.
    ``bus`` is the index of the member's bus in the feeder (0 = substation).
    """

    member: int
    side: Side
    e_wh: int
    price_per_kwh_micro: int
    bus: int


@dataclass(frozen=True, slots=True)
class Trade:
    """A cleared bilateral trade of ``e_wh`` from ``seller`` to ``buyer``.

    The buyer pays ``buyer_price_per_kwh_micro`` per kWh, the seller receives
    ``seller_price_per_kwh_micro``; the difference is the use-of-system charge
    ``fee_per_kwh_micro`` collected by the network operator (zero without fees).
    """

    buyer: int
    seller: int
    e_wh: int
    buyer_price_per_kwh_micro: int
    seller_price_per_kwh_micro: int
    buyer_bus: int
    seller_bus: int

    @property
    def fee_per_kwh_micro(self) -> int:
        return self.buyer_price_per_kwh_micro - self.seller_price_per_kwh_micro


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """Outcome of a clearing: trades in clearing order and the price (if uniform)."""

    trades: tuple[Trade, ...]
    price_per_kwh_micro: int | None

    @property
    def traded_wh(self) -> int:
        return sum(t.e_wh for t in self.trades)


def validate_bids(bids: list[Bid] | tuple[Bid, ...]) -> None:
    """Reject bids that the chain would reject: one order per member, positive uint values."""
    seen: set[int] = set()
    for index, bid in enumerate(bids):
        problem = None
        if bid.member in seen:
            problem = f"member {bid.member} has more than one order"
        elif not 0 <= bid.member <= UINT32_MAX:
            problem = f"member id {bid.member} is outside 0..{UINT32_MAX}"
        elif not 0 < bid.e_wh <= UINT64_MAX:
            problem = f"e_wh={bid.e_wh} must be a positive 64-bit integer"
        elif not 0 <= bid.price_per_kwh_micro <= UINT64_MAX:
            problem = (
                f"price_per_kwh_micro={bid.price_per_kwh_micro} must be a 64-bit unsigned integer"
            )
        elif not 0 <= bid.bus <= 0xFFFF:
            problem = f"bus={bid.bus} must be in 0..65535"
        if problem is not None:
            message = f"bid #{index} ({bid}): {problem}"
            raise ClearingError(message)
        seen.add(bid.member)


@dataclass(frozen=True, slots=True)
class Curtailment:
    """Reduction of cleared trade ``trade_index`` by ``cut_wh`` to relieve a violation.

    ``element`` names the violated element kind (``"bus"`` for voltage, ``"line"``
    or ``"trafo"`` for loading) and ``element_index`` its market index. A
    curtailed seller's energy is not sold (its generation is curtailed); the
    buyer buys the missing energy from the grid at the retail tariff.
    """

    trade_index: int
    cut_wh: int
    element: str
    element_index: int


def apply_curtailments(
    trades: tuple[Trade, ...], curtailments: tuple[Curtailment, ...] | list[Curtailment]
) -> tuple[Trade, ...]:
    """Trades after curtailment; a trade cut to zero is kept with ``e_wh = 0``."""
    cut = [0] * len(trades)
    for c in curtailments:
        if not 0 <= c.trade_index < len(trades):
            message = f"curtailment {c}: no trade #{c.trade_index} (have {len(trades)})"
            raise ClearingError(message)
        cut[c.trade_index] += c.cut_wh
    out = []
    for index, (trade, cut_wh) in enumerate(zip(trades, cut, strict=True)):
        if not 0 <= cut_wh <= trade.e_wh:
            message = f"curtailment of trade #{index}: cut {cut_wh} Wh outside 0..{trade.e_wh} Wh"
            raise ClearingError(message)
        out.append(
            Trade(
                trade.buyer,
                trade.seller,
                trade.e_wh - cut_wh,
                trade.buyer_price_per_kwh_micro,
                trade.seller_price_per_kwh_micro,
                trade.buyer_bus,
                trade.seller_bus,
            )
        )
    return tuple(out)
