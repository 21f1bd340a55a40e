"""Paging a step that does not fit one block: where the next page ends.

A settlement books one change per reading; past a few thousand members its transaction
needs more gas than a block holds, and ``Market.settle`` takes the readings in pages
(``upTo``). The page size is not guessed: it comes from the node's gas estimates of the
actual calls (:meth:`~gridledger.ledger.txqueue.TxQueue.estimate`), a straight line
through the gas of the whole rest and of a one-reading page, then checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gridledger.ledger.txqueue import StepTooLarge

__all__ = ["FILL", "page_end"]

log = logging.getLogger(__name__)

FILL = 0.9
"""Share of a block's gas limit the first guess of a page aims at."""


def page_end(
    label: str,
    gas: Callable[[int], int],
    block_gas: int,
    start: int,
    end: int,
) -> int:
    """End (exclusive) of the page of items ``start..end-1`` that starts at ``start``:
    ``end`` when the call ``gas(end)`` fits a block of ``block_gas``, else the largest
    page the estimates allow (at least one item). ``gas(k)`` is the node's estimate of
    the page ending at ``k`` (:class:`StepTooLarge` when it does not fit a block, as a
    call that runs out of gas at the block's limit has no estimate); a page of one item
    that does not fit raises :class:`StepTooLarge`."""

    def fitting(k: int) -> int | None:
        try:
            estimate = gas(k)
        except StepTooLarge:
            return None
        return estimate if estimate <= block_gas else None

    if end - start <= 1 or fitting(end) is not None:
        return end
    one = fitting(start + 1)
    if one is None:
        message = (
            f"{label}: a page of one item needs more than a block's gas limit of "
            f"{block_gas:,} (the step is too large for this chain)"
        )
        raise StepTooLarge(message)
    k, known = end, None  # halve until a page fits, then extrapolate to FILL of a block
    while known is None and k - start > 2:
        k = start + 1 + (k - start - 1) // 2
        known = fitting(k)
    if known is None:
        k, known = start + 1, one
    if k > start + 1:
        per_item = max((known - one) / (k - start - 1), 1.0)
        guess = min(end - 1, start + 1 + int((FILL * block_gas - one) / per_item))
        if guess > k and fitting(guess) is not None:
            k = guess
    log.info(
        "%s: %d items from %d do not fit one block; this page ends at %d",
        label,
        end - start,
        start,
        k,
    )
    return k
