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
    the page ending at ``k``; a page of one item that does not fit raises
    :class:`StepTooLarge`."""
    if end - start <= 1:
        return end
    whole = gas(end)
    if whole <= block_gas:
        return end
    one = gas(start + 1)
    if one > block_gas:
        message = (
            f"{label}: a page of one item needs {one:,} gas, more than a block's gas limit "
            f"of {block_gas:,} (the step is too large for this chain)"
        )
        raise StepTooLarge(message)
    per_item = max((whole - one) / (end - start - 1), 1.0)
    k = min(end - 1, start + 1 + int((FILL * block_gas - one) / per_item))
    while k > start + 1 and gas(k) > block_gas:
        k = start + 1 + (k - start - 1) * 9 // 10
    log.info(
        "%s: %d items from %d do not fit one block; this page ends at %d",
        label,
        end - start,
        start,
        k,
    )
    return k
