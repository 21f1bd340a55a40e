"""The typed seam between the interval loop and the chain.

:class:`LedgerPort` is what the loop needs from a chain, one interval at a time.
:class:`gridledger.ledger.Ledger` implements it; the loop never sees more of the
ledger than this, and never writes into it: whether the chain agreed with the
reference is returned in the interval's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from gridledger.market.justification import RowMargin
from gridledger.market.orders import Bid, ClearingResult, Curtailment

__all__ = ["LedgerPort"]


class LedgerPort(Protocol):
    """The chain's side of one interval, in the order the loop calls it."""

    def sign_ahead(
        self,
        interval: int,
        rounds: Sequence[Sequence[Bid]] = (),
        readings: Mapping[int, int] | None = None,
    ) -> None:
        """Start signing the interval's bid ``rounds`` (round k's bids: ``rounds[k]``) and
        ``readings`` in the background; recording them later gives the same result."""
        ...

    def record_round(
        self, interval: int, round: int, bids: Sequence[Bid], binding: bool = False
    ) -> None:
        """Record one bidding round's signed bids (the ``binding`` one is cleared)."""
        ...

    def clear(self, interval: int) -> ClearingResult:
        """Clear the binding round on chain and return the chain's result."""
        ...

    def record_security(
        self,
        interval: int,
        curtailments: Sequence[Curtailment],
        margins: Sequence[RowMargin] = (),
        certificate: Sequence[int] = (),
        *,
        unresolved: bool = False,
    ) -> None:
        """Record the DSO-signed security verdict: the curtailments of the cleared trades,
        the evidence for them, and whether violations no cut can fix remain."""
        ...

    def record_readings(self, interval: int, actual_net_wh: Mapping[int, int]) -> None:
        """Record every member's metered net energy (Wh, injection positive)."""
        ...

    def settle(self, interval: int) -> dict[int, int]:
        """Settle on chain; return the balance change of every member (micro-tokens)."""
        ...

    def end_interval(self, interval: int) -> None:
        """Close the interval (the chain's block boundary)."""
        ...
