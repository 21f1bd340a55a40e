"""Settlement reference: trades at trade prices, forecast deviations by explicit rules.

Members trade on forecasts; meters report actual net injection (Wh, generation
positive). For every member the *schedule* is ``sold_wh - bought_wh`` over its
(curtailed) trades and the *deviation* is ``actual - scheduled``. The rules
(docs/settlement.md has the formulas and a worked example):

- **non-trader** (no trade with energy > 0): the whole net goes to the GRID,
  export at the feed-in tariff, import at the retail tariff;
- **seller short** (deviation < 0): ``x = min(-d, sold)`` is allocated over the
  seller's trades; on trade k the buyer gets the slice from the GRID at retail,
  the P2P payment covers only the delivered energy, and the seller pays the
  buyer a penalty so that the buyer pays exactly what it contracted; what the
  seller lacks beyond its whole sale (it consumed) is imported at retail;
- **seller surplus** (deviation > 0): sold to the GRID at feed-in;
- **buyer over-consumption** (deviation < 0): bought from the GRID at retail;
- **buyer under-consumption** (deviation > 0): *take-or-pay*: the buyer pays the
  full contract and the untaken energy (``min(d, bought)``, allocated over its
  trades) is resold to the GRID at feed-in for the buyer; beyond its whole
  purchase (it injected) it exports at feed-in;
- **tolerance band** ``tolerance_bp`` (basis points of each trade's energy): the
  part of a trade's deviation slice within ``e_wh * tolerance_bp // 10000`` is
  settled with the GRID at the trade price (the member's own side's price)
  instead of the tariff, and carries no penalty.

Allocation over a member's trades is by *cumulative floors* in trade order:
slice_k = ``x * C_k // Q - x * C_{k-1} // Q`` with ``C_k`` the member's
contracted energy up to and including trade k and ``Q = C_n``; the slices sum
to ``x`` exactly (the last trade takes the remainder of the rounding), and each
slice of a capped ``x <= Q`` is at most the trade's energy. The chain
(contracts/Market.sol ``settle``) does the same integer arithmetic.

Every amount is a floor ``e_wh * price // 1000`` (or a difference of two such
floors, see the penalty) computed once and booked twice (debit one account,
credit another), so money is conserved exactly: the account changes sum to zero.

Accounts: members by id, plus :data:`GRID` (supplier of last resort, buys and
sells residual energy) and :data:`OPERATOR` (network operator, collects the
use-of-system charges: buyer price minus seller price on delivered energy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gridledger.errors import SettlementError
from gridledger.market.orders import Trade
from gridledger.market.units import money_micro

__all__ = [
    "BP_DENOMINATOR",
    "GRID",
    "OPERATOR",
    "MemberSettlement",
    "Settlement",
    "Tariffs",
    "allocate_cumulative",
    "settle",
    "tolerance_bp_from_pct",
]

GRID = -1
OPERATOR = -2
BP_DENOMINATOR = 10_000
"""Basis points per unit: the tolerance band is ``e_wh * tolerance_bp // BP_DENOMINATOR``."""


def tolerance_bp_from_pct(tolerance_pct: float) -> int:
    """Convert a tolerance in percent (scenario ``market.tolerance_pct``) to basis points."""
    bp = round(float(tolerance_pct) * 100)
    if not 0 <= bp <= BP_DENOMINATOR:
        message = f"market.tolerance_pct = {tolerance_pct}: must be in 0..100 (percent)"
        raise SettlementError(message)
    return bp


@dataclass(frozen=True, slots=True)
class Tariffs:
    """Settlement terms: grid tariffs (micro-tokens per kWh, retail >= feed-in) and the
    tolerance band in basis points of each trade's energy (0 = no band, 10000 = 100 %)."""

    retail_per_kwh_micro: int
    feed_in_per_kwh_micro: int
    tolerance_bp: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.feed_in_per_kwh_micro <= self.retail_per_kwh_micro:
            message = (
                f"tariffs: need 0 <= feed_in ({self.feed_in_per_kwh_micro}) "
                f"<= retail ({self.retail_per_kwh_micro}) micro-tokens/kWh"
            )
            raise SettlementError(message)
        if not 0 <= self.tolerance_bp <= BP_DENOMINATOR:
            message = f"tariffs: tolerance_bp={self.tolerance_bp} must be in 0..{BP_DENOMINATOR}"
            raise SettlementError(message)


@dataclass(slots=True)
class MemberSettlement:
    """One member's settlement for one interval (all integers).

    Energy: ``scheduled_net_wh`` (contracted sold - bought), ``actual_net_wh``
    (metered), ``p2p_sold_wh`` / ``p2p_bought_wh`` (delivered P2P energy),
    ``grid_import_wh`` / ``grid_export_wh`` (with the GRID, including a buyer's
    supply when its seller is short), ``imbalance_wh = |actual - scheduled|`` for
    traders (0 for non-traders, who have no schedule). Identity:
    ``actual = p2p_sold - p2p_bought + grid_export - grid_import``.

    Money (micro-tokens): P2P, GRID and penalty flows; ``imbalance_cost_micro`` is
    what the member's deviations cost beyond settling them at its trade price
    (penalties paid, plus (retail - trade price) on out-of-band over-consumption,
    (trade price - feed-in) on out-of-band surplus or untaken energy); it is a
    report figure, already contained in the flows.
    """

    member: int
    scheduled_net_wh: int = 0
    actual_net_wh: int = 0
    p2p_paid_micro: int = 0
    p2p_received_micro: int = 0
    grid_import_wh: int = 0
    grid_export_wh: int = 0
    grid_paid_micro: int = 0
    grid_received_micro: int = 0
    penalty_paid_micro: int = 0
    penalty_received_micro: int = 0
    p2p_sold_wh: int = 0
    p2p_bought_wh: int = 0
    imbalance_wh: int = 0
    imbalance_cost_micro: int = 0

    @property
    def deviation_wh(self) -> int:
        """Actual minus scheduled net injection (Wh)."""
        return self.actual_net_wh - self.scheduled_net_wh

    @property
    def shortfall_wh(self) -> int:
        """Part of the deviation that breaks the member's contracts: a seller's shortfall or
        a buyer's untaken energy, at most its contracted energy (0 otherwise)."""
        scheduled, deviation = self.scheduled_net_wh, self.deviation_wh
        if scheduled > 0 and deviation < 0:
            return min(-deviation, scheduled)
        if scheduled < 0 and deviation > 0:
            return min(deviation, -scheduled)
        return 0

    @property
    def net_micro(self) -> int:
        """Money the member gains (positive) or pays (negative) this interval."""
        return (
            self.p2p_received_micro
            + self.grid_received_micro
            + self.penalty_received_micro
            - self.p2p_paid_micro
            - self.grid_paid_micro
            - self.penalty_paid_micro
        )


@dataclass(slots=True)
class Settlement:
    """The interval's settlement: per-member lines, the operator accounts, and the energy
    each trade actually delivered (``trade_delivered_wh``, in trade order: the contract
    minus the seller's short slice)."""

    members: dict[int, MemberSettlement] = field(default_factory=dict)
    fees_micro: int = 0
    trade_delivered_wh: list[int] = field(default_factory=list)

    @property
    def grid_net_micro(self) -> int:
        """Money the grid supplier gains: its sales minus its purchases."""
        return sum(m.grid_paid_micro - m.grid_received_micro for m in self.members.values())

    @property
    def penalties_micro(self) -> int:
        """Penalties paid by short sellers to their buyers this interval."""
        return sum(m.penalty_paid_micro for m in self.members.values())

    @property
    def imbalance_wh(self) -> int:
        return sum(m.imbalance_wh for m in self.members.values())

    @property
    def shortfall_wh(self) -> int:
        """Contracted energy not honoured: sellers' short slices plus buyers' untaken energy
        (the deviations against the trade direction, capped at the contracts)."""
        return sum(m.shortfall_wh for m in self.members.values())

    @property
    def imbalance_cost_micro(self) -> int:
        return sum(m.imbalance_cost_micro for m in self.members.values())

    def deltas(self) -> dict[int, int]:
        """Change of every account (members, GRID, OPERATOR); sums to zero."""
        out = {m: s.net_micro for m, s in self.members.items()}
        out[GRID] = self.grid_net_micro
        out[OPERATOR] = self.fees_micro
        return out

    def conserved(self) -> bool:
        """Exact conservation: account changes sum to zero, penalties paid = received, and
        members' payments = receipts + network fees + grid sales - grid purchases."""
        lines = self.members.values()
        paid = sum(m.p2p_paid_micro + m.grid_paid_micro + m.penalty_paid_micro for m in lines)
        got = sum(
            m.p2p_received_micro + m.grid_received_micro + m.penalty_received_micro for m in lines
        )
        penalties_balance = sum(m.penalty_paid_micro - m.penalty_received_micro for m in lines)
        return (
            sum(self.deltas().values()) == 0
            and penalties_balance == 0
            and paid == got + self.fees_micro + self.grid_net_micro
        )


def allocate_cumulative(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` pro rata by cumulative floors (sums to ``total``).

    ``slice_k = total * C_k // W - total * C_(k-1) // W`` with ``C_k`` the running
    sum of the weights and ``W`` their sum; all zeros when ``W == 0``.
    """
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    out = []
    running = 0
    before = 0
    for w in weights:
        running += w
        after = total * running // whole
        out.append(after - before)
        before = after
    return out


# Member modes: which branch applies to a member's trade slices.
_NONE, _SHORT, _SURPLUS, _OVER, _UNDER = range(5)


@dataclass(slots=True)
class _Book:
    contracted_wh: int = 0
    is_seller: bool = False
    is_buyer: bool = False
    mode: int = _NONE
    slice_total_wh: int = 0
    allocated_cum_wh: int = 0
    allocated_wh: int = 0


def _next_slice(book: _Book, e_wh: int) -> int:
    """The member's slice of this trade (cumulative floors, in trade order)."""
    if book.mode == _NONE or book.contracted_wh == 0:
        return 0
    book.allocated_cum_wh += e_wh
    after = book.slice_total_wh * book.allocated_cum_wh // book.contracted_wh
    piece = after - book.allocated_wh
    book.allocated_wh = after
    return piece


def settle(
    trades: Sequence[Trade],
    actual_net_wh: Mapping[int, int],
    tariffs: Tariffs,
) -> Settlement:
    """Settle one interval by the rules of the module docstring.

    ``trades`` are the delivered (curtailed) trades, ``actual_net_wh`` maps every
    member to its metered net injection (Wh, generation positive). Every member
    that traded must have a reading; a member may not both buy and sell.
    """
    retail = tariffs.retail_per_kwh_micro
    feed_in = tariffs.feed_in_per_kwh_micro
    result = Settlement()
    books: dict[int, _Book] = {}
    for member, reading in actual_net_wh.items():
        result.members[member] = MemberSettlement(member=member, actual_net_wh=int(reading))
        books[member] = _Book()
    # Pass 1: schedules and contracted totals.
    for index, trade in enumerate(trades):
        for who in (trade.buyer, trade.seller):
            if who not in result.members:
                message = f"trade #{index} ({trade}): member {who} has no meter reading"
                raise SettlementError(message)
        buyer, seller = books[trade.buyer], books[trade.seller]
        buyer.is_buyer = True
        seller.is_seller = True
        if buyer.is_seller or seller.is_buyer:
            who = trade.buyer if buyer.is_seller else trade.seller
            message = f"trade #{index} ({trade}): member {who} both buys and sells this interval"
            raise SettlementError(message)
        buyer.contracted_wh += trade.e_wh
        seller.contracted_wh += trade.e_wh
        result.members[trade.buyer].scheduled_net_wh -= trade.e_wh
        result.members[trade.seller].scheduled_net_wh += trade.e_wh
    # Per member: branch, trade-related part (slice total) and residual with the GRID.
    for member, line in result.members.items():
        book = books[member]
        deviation = line.actual_net_wh - line.scheduled_net_wh
        quantity = book.contracted_wh
        residual = deviation  # signed: > 0 export at feed-in, < 0 import at retail
        if quantity > 0:
            line.imbalance_wh = abs(deviation)
            if book.is_seller and deviation < 0:
                book.mode, book.slice_total_wh = _SHORT, min(-deviation, quantity)
                residual = deviation + book.slice_total_wh
            elif book.is_seller and deviation > 0:
                book.mode, book.slice_total_wh = _SURPLUS, deviation
                residual = 0
            elif book.is_buyer and deviation < 0:
                book.mode, book.slice_total_wh = _OVER, -deviation
                residual = 0
            elif book.is_buyer and deviation > 0:
                book.mode, book.slice_total_wh = _UNDER, min(deviation, quantity)
                residual = deviation - book.slice_total_wh
        if residual > 0:
            line.grid_export_wh += residual
            line.grid_received_micro += money_micro(residual, feed_in)
        elif residual < 0:
            line.grid_import_wh -= residual
            line.grid_paid_micro += money_micro(-residual, retail)
    # Pass 2: per trade, P2P money on delivered energy and the deviation slices.
    for trade in trades:
        e_wh = trade.e_wh
        pb = trade.buyer_price_per_kwh_micro
        ps = trade.seller_price_per_kwh_micro
        band_wh = e_wh * tariffs.tolerance_bp // BP_DENOMINATOR
        b_line, s_line = result.members[trade.buyer], result.members[trade.seller]
        s_book, b_book = books[trade.seller], books[trade.buyer]
        s_slice = _next_slice(s_book, e_wh)
        b_slice = _next_slice(b_book, e_wh)
        delivered = e_wh - s_slice if s_book.mode == _SHORT else e_wh
        result.trade_delivered_wh.append(delivered)
        paid = money_micro(delivered, pb)
        received = money_micro(delivered, ps)
        b_line.p2p_paid_micro += paid
        b_line.p2p_bought_wh += delivered
        s_line.p2p_received_micro += received
        s_line.p2p_sold_wh += delivered
        result.fees_micro += paid - received
        s_in = min(s_slice, band_wh)
        s_out = s_slice - s_in
        if s_book.mode == _SHORT:
            # The buyer is supplied the missing energy by the GRID: in band at its trade
            # price (as a difference of floors, so P2P + in-band = the contract on
            # delivered + tolerated energy), beyond the band at retail; the seller pays the
            # buyer what retail adds beyond the contract (never negative).
            covered = money_micro(delivered + s_in, pb)
            at_retail = money_micro(s_out, retail)
            b_line.grid_paid_micro += covered - paid + at_retail
            b_line.grid_import_wh += s_slice
            penalty = max(0, at_retail - (money_micro(e_wh, pb) - covered))
            s_line.penalty_paid_micro += penalty
            b_line.penalty_received_micro += penalty
            s_line.imbalance_cost_micro += penalty
        elif s_book.mode == _SURPLUS:
            s_line.grid_received_micro += money_micro(s_in, ps) + money_micro(s_out, feed_in)
            s_line.grid_export_wh += s_slice
            s_line.imbalance_cost_micro += money_micro(s_out, ps) - money_micro(s_out, feed_in)
        b_in = min(b_slice, band_wh)
        b_out = b_slice - b_in
        if b_book.mode == _OVER:
            b_line.grid_paid_micro += money_micro(b_in, pb) + money_micro(b_out, retail)
            b_line.grid_import_wh += b_slice
            b_line.imbalance_cost_micro += money_micro(b_out, retail) - money_micro(b_out, pb)
        elif b_book.mode == _UNDER:
            b_line.grid_received_micro += money_micro(b_in, pb) + money_micro(b_out, feed_in)
            b_line.grid_export_wh += b_slice
            b_line.imbalance_cost_micro += money_micro(b_out, pb) - money_micro(b_out, feed_in)
    return result
