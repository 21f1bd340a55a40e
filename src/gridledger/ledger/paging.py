"""Paging a step that does not fit one block: where the next page ends, and the pages sent.

A bidding round, the readings and the settlement each handle one entry per member; past a
thousand or so members their transactions need more gas than one transaction may carry (a
block's gas limit, or EIP-7825's per-transaction cap where it is lower), and
``Market.recordRound`` / ``recordReadings`` / ``settle`` take their lists in pages
(``upTo``). The page size is not guessed: it comes from the node's gas estimates of the
actual calls (:meth:`~gridledger.ledger.txqueue.TxQueue.estimate`), a straight line
through the gas of the whole rest and of a one-entry page, then checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from gridledger.ledger.txqueue import StepTooLarge, gas_limit, inverse_gas_limit

__all__ = ["FILL", "Pager", "page_end"]

log = logging.getLogger(__name__)

FILL = 0.9
"""Share of a transaction's gas limit the first guess of a page aims at."""


def page_end(
    label: str,
    gas: Callable[[int], int],
    block_gas: int,
    start: int,
    end: int,
) -> int:
    """End (exclusive) of the page of items ``start..end-1`` that starts at ``start``:
    ``end`` when the call ``gas(end)`` fits ``block_gas`` (the most one transaction may
    carry: the block's gas limit or the per-transaction cap) with the queue's margin
    (:func:`~gridledger.ledger.txqueue.gas_limit`), else the largest page the estimates
    allow (at least one item). ``gas(k)`` is the node's estimate of
    the page ending at ``k`` (:class:`StepTooLarge` when it does not fit a block, as a
    call that runs out of gas at the block's limit has no estimate); a page of one item
    that does not fit raises :class:`StepTooLarge`."""

    def fitting(k: int) -> int | None:
        # the page's gas limit, its estimate and the margin, must fit: the estimate is what
        # the run used, and nested calls need more to succeed (the 63/64 rule)
        try:
            estimate = gas(k)
        except StepTooLarge:
            return None
        return estimate if gas_limit(estimate) <= block_gas else None

    if end - start <= 1 or fitting(end) is not None:
        return end
    one = fitting(start + 1)
    if one is None:
        message = (
            f"{label}: a page of one item needs more than one transaction may carry "
            f"({block_gas:,} gas; the step is too large for this chain)"
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
        target = inverse_gas_limit(int(FILL * block_gas))  # the estimate whose limit fills it
        guess = min(end - 1, start + 1 + int((target - one) / per_item))
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


@dataclass(frozen=True, slots=True)
class Pager:
    """How a paged step reaches the chain: ``submit(label, start, up_to)`` queues the page
    of entries ``start..up_to-1`` (raising :class:`StepTooLarge` when it cannot fit a
    block), ``gas(up_to)`` estimates the page from the current start, ``seal()`` ends a
    block; ``block_gas`` is the most gas one transaction may carry."""

    submit: Callable[[str, int, int], None]
    gas: Callable[[int, int], int]
    seal: Callable[[], None]
    block_gas: int

    def send(
        self,
        label: str,
        span: tuple[int, int],
        cap: int | None,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        """Send the entries ``start..n-1`` (``span``): the rest as one transaction when it
        fits a block (the usual case: one estimate), else pages sized by the node's
        estimates (:func:`page_end`), at most ``cap`` entries each, each page its own block
        (a kill between pages leaves the pages before mined). ``prepare`` runs once before
        the first page (a round's pages wait for its deadline). The last page carries the
        plain ``label`` (resume and the log key on it), earlier ones ``label page a-b``."""
        start, n = span
        ready = prepare is None
        while True:
            up_to = n if cap is None else min(n, start + cap)
            for attempt in (0, 1):
                if not ready and (start > 0 or up_to < n):
                    assert prepare is not None
                    prepare()
                    ready = True
                try:
                    page = "" if up_to == n else f" page {start}-{up_to}"
                    self.submit(f"{label}{page}", start, up_to)
                    break
                except StepTooLarge:
                    if attempt or up_to - start <= 1:
                        raise
                    if not ready:
                        assert prepare is not None
                        prepare()
                        ready = True
                    gas = partial(self.gas, start)
                    up_to = page_end(label, gas, self.block_gas, start, up_to)
            if up_to == n:
                return
            self.seal()
            start = up_to
