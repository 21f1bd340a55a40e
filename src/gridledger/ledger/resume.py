"""Resuming on a saved deployment: what the chain already holds, and consistency checks.

A run killed mid-interval loses that interval, which is not on the chain either (the
embedded chain is rebuilt from the log of sealed blocks). On a JSON-RPC node the first
interval after reattaching may be partly on chain already (killed between the clear and
the settle flush): the :class:`ResumeGuard` reads that interval's state once, lets the
ledger skip the recorded steps, and checks that what this run would submit hashes to
what was recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import DecodedEvent

__all__ = [
    "PHASE_BIDDING",
    "PHASE_CLEARING",
    "PHASE_DELIVERY",
    "PHASE_SECURITY",
    "PHASE_SETTLED",
    "ChainInterval",
    "ResumeGuard",
    "last_settled_interval",
]

log = logging.getLogger(__name__)

# Codes of ``Market.Phase``.
PHASE_BIDDING = 1
PHASE_CLEARING = 2
PHASE_SECURITY = 3
PHASE_DELIVERY = 4
PHASE_SETTLED = 5

View = Callable[..., tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class ChainInterval:
    """``Market.intervalState`` of one interval."""

    phase: int
    rounds_recorded: int
    readings_recorded: bool
    bids_hash: bytes
    trades_hash: bytes
    delivery_hash: bytes
    readings_hash: bytes
    settled_members: int = 0
    """Entries a paged settlement has covered so far: n checks, then n bookings (0: none)."""
    paged_bids: int = 0
    """Bids of the round being recorded in pages checked so far (0: none)."""
    paged_readings: int = 0
    """Readings being recorded in pages checked so far (0: none)."""
    trade_count: int = 0
    """Trades (while clearing in pages: verified so far; after: all of them)."""


def last_settled_interval(view: View) -> int | None:
    """Highest settled interval of the Market behind ``view``, None before any settlement."""
    (count,) = view("settledIntervals")
    if count == 0:
        return None
    (last,) = view("lastSettledInterval")
    return int(last)


class ResumeGuard:
    """The chain's state of the first interval after reattaching (``active`` until then)."""

    def __init__(
        self, view: View, events: Callable[[], list[DecodedEvent]], active: bool = False
    ) -> None:
        self.active = active
        self._view = view
        self._events = events
        self._states: dict[int, ChainInterval] = {}

    def state(self, interval: int) -> ChainInterval | None:
        """The chain's state of ``interval`` while it may be partly recorded, else None."""
        if not self.active:
            return None
        if interval not in self._states:
            (raw,) = self._view("intervalState", interval)
            self._states[interval] = ChainInterval(
                phase=int(raw[0]),
                rounds_recorded=int(raw[1]),
                readings_recorded=bool(raw[2]),
                bids_hash=bytes(raw[9]),
                trades_hash=bytes(raw[10]),
                delivery_hash=bytes(raw[11]),
                readings_hash=bytes(raw[12]),
                settled_members=int(raw[8]),
                paged_bids=int(raw[13]),
                paged_readings=int(raw[15]),
                trade_count=int(raw[5]),
            )
        return self._states[interval]

    def finish(self) -> None:
        """The first interval is closed: no more checks."""
        self.active = False
        self._states.clear()

    def recorded_event(self, interval: int, name: str) -> DecodedEvent:
        """The last ``name`` event of ``interval`` on chain (its state says there is one)."""
        found = [
            e for e in self._events() if e.name == name and int(e.args["interval"]) == interval
        ]
        if not found:
            message = (
                f"interval {interval}: the chain has no {name} event although its state says so"
            )
            raise ChainError(message)
        return found[-1]

    @staticmethod
    def same(interval: int, step: str, recorded: bytes, words: Sequence[int]) -> None:
        """Raise when ``words`` do not hash to the ``recorded`` list hash of ``step``."""
        submitted = enc.list_hash(words)
        if submitted != recorded:
            message = (
                f"resume: interval {interval} {step} is already on chain with hash "
                f"0x{recorded.hex()}, but this run would record 0x{submitted.hex()} "
                "(the resumed run diverged from the one that was killed)"
            )
            raise ChainError(message)

    # Each step's check: True (or the recorded event) when the step is already on chain
    # and matches what this run would submit; the ledger then skips it.
    def opened(self, interval: int) -> bool:
        state = self.state(interval)
        return state is not None and state.phase >= PHASE_BIDDING

    def round_recorded(self, interval: int, round_: int, words: Sequence[int]) -> bool:
        state = self.state(interval)
        if state is None or round_ >= state.rounds_recorded:
            return False
        if round_ == state.rounds_recorded - 1:
            self.same(interval, f"round {round_}", state.bids_hash, words)
        log.info("resume: interval %d round %d already on chain, skipped", interval, round_)
        return True

    def round_paged(self, interval: int, round_: int, words: Sequence[int]) -> int:
        """Bids of round ``round_`` that pages recorded before the kill (0: none); the
        round's list must be the one they were recorded from."""
        state = self.state(interval)
        if state is None or state.rounds_recorded != round_:
            return 0
        step = f"round {round_}"
        return self._paged(interval, state, PHASE_BIDDING, state.paged_bids, step, words)

    def _paged(
        self,
        interval: int,
        state: ChainInterval,
        phase: int,
        done: int,
        step: str,
        words: Sequence[int],
    ) -> int:
        """``done`` entries of ``step``'s list paged in ``phase`` (0 when the interval is in
        another phase or no page was recorded); the list must hash to the stored one."""
        if state.phase != phase or not done:
            return 0
        recorded = {
            PHASE_BIDDING: state.bids_hash,
            PHASE_CLEARING: state.trades_hash,
            PHASE_DELIVERY: state.readings_hash,
        }[phase]
        self.same(interval, step, recorded, words)
        log.info(
            "resume: interval %d %s has %d entries recorded in pages; it goes on from there",
            interval,
            step,
            done,
        )
        return done

    def excluded_members(self, interval: int) -> set[int]:
        """Members whose binding bids of ``interval`` the chain left out (``BidExcluded``)."""
        return {
            int(e.args["member"])
            for e in self._events()
            if e.name == "BidExcluded" and int(e.args["interval"]) == interval
        }

    def cleared(self, interval: int, words: Sequence[int]) -> DecodedEvent | None:
        state = self.state(interval)
        if state is None or state.phase < PHASE_SECURITY:
            return None
        self.same(interval, "bids", state.bids_hash, words)
        event = self.recorded_event(interval, "IntervalCleared")
        self.same(interval, "clearing", state.trades_hash, event.args["trades"])
        log.info("resume: interval %d already cleared on chain, skipped", interval)
        return event

    def clearing_paged(self, interval: int, trades: Sequence[int]) -> int:
        """Entries of a fee rule's clearing of ``interval`` that pages verified before the
        kill (0: none); the trade list must be the one they were verified from (an optimal
        clearing's certificate is checked by the chain: the reference's is deterministic)."""
        state = self.state(interval)
        if state is None:
            return 0
        return self._paged(interval, state, PHASE_CLEARING, state.trade_count, "clearing", trades)

    def security_paged(self, interval: int) -> int:
        """Entries of ``interval``'s verdict that pages checked before the kill (0: none; the
        chain checks that the rest comes with the same signed verdict)."""
        state = self.state(interval)
        if state is None or state.phase != PHASE_SECURITY or not state.paged_bids:
            return 0
        log.info(
            "resume: interval %d verdict has %d entries checked in pages",
            interval,
            state.paged_bids,
        )
        return state.paged_bids

    def security_recorded(self, interval: int, delivery: Sequence[int]) -> bool:
        state = self.state(interval)
        if state is None or state.phase < PHASE_DELIVERY:
            return False
        self.same(interval, "delivery", state.delivery_hash, delivery)
        log.info("resume: interval %d security already on chain, skipped", interval)
        return True

    def readings_recorded(self, interval: int, words: Sequence[int]) -> bool:
        state = self.state(interval)
        if state is None or not state.readings_recorded:
            return False
        self.same(interval, "readings", state.readings_hash, words)
        log.info("resume: interval %d readings already on chain, skipped", interval)
        return True

    def readings_paged(self, interval: int, words: Sequence[int]) -> int:
        """Readings of ``interval`` that pages checked before the kill (0: none)."""
        state = self.state(interval)
        if state is None:
            return 0
        done = state.paged_readings
        return self._paged(interval, state, PHASE_DELIVERY, done, "readings", words)

    def settled_members(self, interval: int) -> int:
        """Entries of ``interval``'s settlement that pages covered already (0: none): n
        readings checked, then n booked."""
        state = self.state(interval)
        if state is None or state.phase != PHASE_DELIVERY or not state.settled_members:
            return 0
        log.info(
            "resume: interval %d settlement covered %d entries already; it goes on from there",
            interval,
            state.settled_members,
        )
        return state.settled_members

    def settled(self, interval: int) -> DecodedEvent | None:
        state = self.state(interval)
        if state is None or state.phase < PHASE_SETTLED:
            return None
        log.info("resume: interval %d already settled on chain, skipped", interval)
        return self.recorded_event(interval, "IntervalSettled")
