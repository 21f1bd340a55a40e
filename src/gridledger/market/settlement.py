"""Settlement reference: P2P trades at trade prices, residual energy with the grid.

Inputs are integers (Wh, micro-tokens). For every member the scheduled net
injection is ``sold_wh - bought_wh`` over its trades; its meter reports the
actual net injection. The difference (the deviation) is settled with the grid
supplier: a surplus is sold at the feed-in tariff, a shortfall bought at the
retail tariff. Every amount is a floor of ``e_wh * price // 1000`` computed once
and booked twice (debit one account, credit another), so money is conserved
exactly: the sum of all account changes is zero.

Accounts: members by id, plus two operator accounts, :data:`GRID` (the supplier
of last resort, which buys and sells residual energy) and :data:`OPERATOR` (the
network operator, which collects use-of-system charges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gridledger.errors import SettlementError
from gridledger.market.orders import Trade
from gridledger.market.units import money_micro

__all__ = ["GRID", "OPERATOR", "MemberSettlement", "Settlement", "Tariffs", "settle"]

GRID = -1
OPERATOR = -2


@dataclass(frozen=True, slots=True)
class Tariffs:
    """Grid tariffs in micro-tokens per kWh: retail (buy from grid) >= feed-in (sell)."""

    retail_per_kwh_micro: int
    feed_in_per_kwh_micro: int

    def __post_init__(self) -> None:
        if not 0 <= self.feed_in_per_kwh_micro <= self.retail_per_kwh_micro:
            message = (
                f"tariffs: need 0 <= feed_in ({self.feed_in_per_kwh_micro}) "
                f"<= retail ({self.retail_per_kwh_micro}) micro-tokens/kWh"
            )
            raise SettlementError(message)


@dataclass(slots=True)
class MemberSettlement:
    """One member's settlement for one interval (all integers)."""

    member: int
    scheduled_net_wh: int = 0
    actual_net_wh: int = 0
    p2p_paid_micro: int = 0
    p2p_received_micro: int = 0
    grid_import_wh: int = 0
    grid_export_wh: int = 0
    grid_paid_micro: int = 0
    grid_received_micro: int = 0

    @property
    def net_micro(self) -> int:
        """Money the member gains (positive) or pays (negative) this interval."""
        return (
            self.p2p_received_micro
            + self.grid_received_micro
            - self.p2p_paid_micro
            - self.grid_paid_micro
        )


@dataclass(slots=True)
class Settlement:
    """The interval's settlement: per-member lines and the operator accounts."""

    members: dict[int, MemberSettlement] = field(default_factory=dict)
    fees_micro: int = 0

    @property
    def grid_net_micro(self) -> int:
        """Money the grid supplier gains: retail sales minus feed-in purchases."""
        return sum(m.grid_paid_micro - m.grid_received_micro for m in self.members.values())

    def deltas(self) -> dict[int, int]:
        """Change of every account (members, GRID, OPERATOR); sums to zero."""
        out = {m: s.net_micro for m, s in self.members.items()}
        out[GRID] = self.grid_net_micro
        out[OPERATOR] = self.fees_micro
        return out

    def conserved(self) -> bool:
        return sum(self.deltas().values()) == 0


def settle(
    trades: Sequence[Trade],
    actual_net_wh: Mapping[int, int],
    tariffs: Tariffs,
) -> Settlement:
    """Settle one interval.

    ``actual_net_wh`` maps every member to its metered net injection (Wh,
    generation positive). Every member that traded must have a reading.
    """
    result = Settlement()
    for member, reading in actual_net_wh.items():
        result.members[member] = MemberSettlement(member=member, actual_net_wh=int(reading))
    for index, trade in enumerate(trades):
        for who in (trade.buyer, trade.seller):
            if who not in result.members:
                message = f"trade #{index} ({trade}): member {who} has no meter reading"
                raise SettlementError(message)
        buyer = result.members[trade.buyer]
        seller = result.members[trade.seller]
        paid = money_micro(trade.e_wh, trade.buyer_price_per_kwh_micro)
        received = money_micro(trade.e_wh, trade.seller_price_per_kwh_micro)
        buyer.p2p_paid_micro += paid
        buyer.scheduled_net_wh -= trade.e_wh
        seller.p2p_received_micro += received
        seller.scheduled_net_wh += trade.e_wh
        result.fees_micro += paid - received
    for line in result.members.values():
        deviation_wh = line.actual_net_wh - line.scheduled_net_wh
        if deviation_wh > 0:
            line.grid_export_wh = deviation_wh
            line.grid_received_micro = money_micro(deviation_wh, tariffs.feed_in_per_kwh_micro)
        elif deviation_wh < 0:
            line.grid_import_wh = -deviation_wh
            line.grid_paid_micro = money_micro(-deviation_wh, tariffs.retail_per_kwh_micro)
    return result
