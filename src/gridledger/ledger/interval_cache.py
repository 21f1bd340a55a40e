"""What the ledger facade remembers of an interval while it is on chain."""

from __future__ import annotations

from dataclasses import dataclass, field

from gridledger.market.orders import Trade

__all__ = ["IntervalCache"]


@dataclass(slots=True)
class IntervalCache:
    """One interval's progress and lists, from its first round to its settlement."""

    opened: bool = False
    seals: int = 0  # blocks sealed since the open round opened
    rounds: int = 0  # rounds recorded
    binding: bool = False  # the binding round is recorded
    bids: list[int] = field(default_factory=list)
    trades: tuple[Trade, ...] = ()
    delivery: tuple[Trade, ...] = ()
    readings: list[int] = field(default_factory=list)
