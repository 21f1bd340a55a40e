"""Members' and meters' signatures made ahead, in a background thread.

The interval loop knows every bidding round of an interval before the first is recorded,
and every reading before the security verdict is; signing them (one secp256k1 signature
and two keccak hashes per record, about a tenth of a second per 1,000 records) can then
run while the operator waits for the node (estimates, confirmations, mining), instead of
between those waits. :class:`Presigner` starts that work and hands out the result when the
ledger records the round or the readings.

Nothing changes but the time: the signatures are deterministic (RFC 6979), each is made by
the member's or meter's own signer (:meth:`~gridledger.ledger.keys.KeyRing.sign_round`,
:meth:`~gridledger.ledger.keys.KeyRing.sign_readings`), a record is handed out only for
exactly the inputs it was signed for (anything else is signed on the spot), and an error
of the signer (an unknown member, a record naming another member) is raised where it was
raised before: when the ledger records the round or the readings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from gridledger.ledger.keys import KeyRing
from gridledger.market.orders import Bid

__all__ = ["Presigner", "Signed"]

Signed = tuple[list[int], list[bytes]]  # packed words, signatures (r, vs) flattened
_Key = tuple[str, int, int]  # ("round" | "readings", interval, round)
_Inputs = tuple[Bid, ...] | dict[int, int]


class Presigner:
    """Signs bid rounds and readings of ``keys`` ahead of their use (one worker thread,
    started at the first request)."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: dict[_Key, tuple[_Inputs, Future[Signed]]] = {}

    def _start(self, key: _Key, inputs: _Inputs, job: Callable[[], Signed]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridledger-sign")
        self._ahead[key] = (inputs, self._pool.submit(job))

    def rounds_ahead(self, interval: int, rounds: Sequence[Sequence[Bid]]) -> None:
        """Start signing round ``k`` of ``interval`` with the bids ``rounds[k]``, in order."""
        for k, bids in enumerate(rounds):
            given = tuple(bids)
            self._start(
                ("round", interval, k), given, partial(self.keys.sign_round, interval, k, given)
            )

    def readings_ahead(self, interval: int, net_wh: Mapping[int, int]) -> None:
        """Start signing the readings ``net_wh`` of ``interval``."""
        given = {int(m): int(e) for m, e in net_wh.items()}
        self._start(
            ("readings", interval, 0), given, partial(self.keys.sign_readings, interval, given)
        )

    def _take(self, key: _Key, inputs: _Inputs) -> Signed | None:
        found = self._ahead.pop(key, None)
        if found is None:
            return None
        given, future = found
        if given != inputs:
            future.cancel()
            return None
        return future.result()  # the signer's error, if any, is raised here

    def sign_round(self, interval: int, round_: int, bids: Sequence[Bid]) -> Signed:
        """The packed, signed bids of round ``round_`` (:meth:`KeyRing.sign_round`): the
        ones made ahead for these bids, else made now."""
        found = self._take(("round", interval, round_), tuple(bids))
        return found if found is not None else self.keys.sign_round(interval, round_, bids)

    def sign_readings(self, interval: int, net_wh: Mapping[int, int]) -> Signed:
        """The packed, signed readings of ``interval`` (:meth:`KeyRing.sign_readings`): the
        ones made ahead for these readings, else made now."""
        given = {int(m): int(e) for m, e in net_wh.items()}
        found = self._take(("readings", interval, 0), given)
        return found if found is not None else self.keys.sign_readings(interval, net_wh)

    def forget(self, interval: int) -> None:
        """Drop what was made ahead for ``interval`` and not used."""
        for key in [k for k in self._ahead if k[1] == interval]:
            del self._ahead[key]
