"""Operator transactions: nonces, the queue, gas limits and gas accounting.

Every transaction the ledger sends is signed by the operator with an explicit nonce
and an explicit gas limit: its ``eth_estimateGas`` at the pending state plus the margin
of :func:`gas_limit`. A transaction that would revert is refused before it is sent, with
the contract's custom error. Transactions are packed into blocks by their gas limits: one
that does not fit what is left of the block's gas limit starts a new block (the boundary
is logged, so a replay seals at the same places). Eager backends (embedded) run a queued
transaction at once; the others (JSON-RPC) run the queue in one batch on
:meth:`TxQueue.flush`, after handing it to the node's pool for the next estimate.

A JSON-RPC node answers the estimate from one measured run, and the limit chosen from it
is confirmed by a run with that limit (:meth:`Backend.confirm_limit`). To spare the node
that second request, the run that measures a step is given a probe of gas (halfway between
the last estimate of the same step (the same label but for its interval) and its limit, :meth:`Backend.estimate_probed`): when it
succeeds and the limit chosen is at least the probe, the limit is confirmed by it (no
branch of the contracts depends on the gas left: a sub-call that runs out fails the call,
so a call that succeeds with some gas succeeds with more); otherwise the limit is
confirmed as before. The estimates, limits and blocks are the
same either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gridledger.errors import ChainError
from gridledger.ledger.backends import Backend, CallReverted, TxResult
from gridledger.ledger.chainapi import OutOfBlockGas
from gridledger.ledger.contracts import decode_error
from gridledger.ledger.signers import OperatorSigner, TxSigner

__all__ = ["ChainStats", "StepTooLarge", "TxQueue", "gas_limit", "inverse_gas_limit", "too_large"]

GAS_MARGIN_NUM, GAS_MARGIN_DEN = 5, 4  # gas limit = estimate * 5/4 + GAS_MARGIN_FLAT
GAS_MARGIN_FLAT = 10_000
_INTERVAL = re.compile(r"^(\S+) \d+")  # a label's step and interval


def too_large(backend: Backend) -> str:
    """The limit a step must fit on ``backend``: a block's, or the per-transaction cap."""
    if backend.tx_gas_cap < backend.block_gas_limit:
        return f"one transaction may carry ({backend.tx_gas_cap:,}, chain.tx_gas_cap)"
    return f"a block's gas limit of {backend.block_gas_limit:,}"


def gas_limit(estimate: int) -> int:
    """The gas limit given to a transaction whose ``eth_estimateGas`` is ``estimate``: a
    quarter more plus 10,000 (the nested calls' 63/64 rule and state that a concurrent
    member transaction may change), capped by the caller at the block's gas limit."""
    return estimate * GAS_MARGIN_NUM // GAS_MARGIN_DEN + GAS_MARGIN_FLAT


def inverse_gas_limit(limit: int) -> int:
    """The largest estimate whose :func:`gas_limit` is at most ``limit`` (0 if none)."""
    estimate = max(0, (limit - GAS_MARGIN_FLAT) * GAS_MARGIN_DEN // GAS_MARGIN_NUM)
    while estimate and gas_limit(estimate) > limit:
        estimate -= 1
    while gas_limit(estimate + 1) <= limit:
        estimate += 1
    return estimate


@dataclass(slots=True)
class ChainStats:
    """Transaction and gas counters of the chain's run (restored from the log on resume)."""

    tx_count: int = 0
    gas_total: int = 0
    bids_recorded: int = 0
    gas_bid_txs: int = 0
    gas_per_interval_max: int = 0
    intervals: int = 0
    wall_s: float = 0.0
    gas_by_step: dict[str, int] = field(default_factory=dict)

    @property
    def gas_per_bid(self) -> float:
        """Gas of the round transactions (21,000 base included) per recorded bid."""
        return self.gas_bid_txs / self.bids_recorded if self.bids_recorded else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The counters and ``gas_per_bid`` (rounded to 0.1), as the run summary holds them."""
        out = asdict(self)
        out["gas_per_bid"] = round(self.gas_per_bid, 1)
        return out


class StepTooLarge(ChainError):
    """One transaction of a step needs more gas than a block holds."""


class TxQueue:
    """The operator's transactions on ``backend``: signing, sending, counting gas.

    ``txlog`` holds the ``(raw, gas used)`` of every transaction sent since the last
    :meth:`take_txlog` (what the store appends to the transaction log). ``journal``, when
    set, is given every batch of interval steps ``(label, interval, bids, raw)`` before it
    is sent (the ledger writes them to ``sent.jsonl``, see :mod:`~gridledger.ledger.node`).
    """

    def __init__(
        self, backend: Backend, signer: OperatorSigner | None, *, read_only: bool = False
    ) -> None:
        self.backend = backend
        self.signer = signer
        self.read_only = read_only
        self.nonce = 0
        self.stats = ChainStats()
        self.txlog: list[tuple[bytes, int]] = []
        self.blocks: list[int] = []  # transactions per block sealed since take_txlog
        self._pending: list[tuple[str, bytes, int | None, int]] = []  # label, raw, interval, bids
        self.journal: Callable[[Sequence[tuple[str, int, int, bytes]]], None] | None = None
        self._recent: list[TxResult] = []
        self._interval_gas: dict[int, int] = {}
        self._block_gas = 0  # gas limits of the transactions in the unsealed block
        self._journaled = 0  # how many of the pending steps the journal holds already
        self._probes: dict[str, int] = {}  # step -> gas to measure its next estimate with

    def sign(
        self,
        to: bytes | None,
        data: bytes,
        gas: int,
        key: bytes | None = None,
        nonce: int | None = None,
    ) -> bytes:
        """Sign a transaction as the operator; without ``nonce``, the operator's next nonce
        (then advanced). ``key`` (tests' probes) signs with that private key instead."""
        if key is not None:
            signer: TxSigner = TxSigner(key, "a test's account", self.backend.chain_id)
        elif self.signer is None:
            message = "ledger opened read-only: no transactions allowed (it holds no operator key)"
            raise ChainError(message)
        else:
            signer = self.signer
        raw = signer.sign_tx(to, data, gas, self.nonce if nonce is None else nonce)
        if nonce is None:
            self.nonce += 1
        return raw

    def send(self, steps: Sequence[tuple[str, bytes]]) -> list[TxResult]:
        """Send transactions ``(label, raw)`` now, count their gas and check their status."""
        if self.read_only:
            message = "ledger opened read-only: no transactions allowed"
            raise ChainError(message)
        results = self.backend.send([raw for _, raw in steps])
        for (label, raw), res in zip(steps, results, strict=True):
            self.txlog.append((raw, res.gas_used))
            self.stats.tx_count += 1
            self.stats.gas_total += res.gas_used
            step = label.split()[0]
            self.stats.gas_by_step[step] = self.stats.gas_by_step.get(step, 0) + res.gas_used
            if not res.status:
                reason = decode_error(res.revert_data) if res.revert_data else "status 0"
                message = f"{label}: transaction reverted: {reason} (gas used {res.gas_used})"
                raise ChainError(message)
        return results

    def submit(
        self, label: str, to: bytes | None, data: bytes, interval: int | None, bids: int = 0
    ) -> None:
        """Estimate, sign and queue an operator call (``to`` None: a deployment) of
        ``interval`` (None: the setup); eager backends run it at once. ``bids`` is the
        number of bids it records (counted in the stats once sent). A call that would
        revert raises :class:`ChainError` naming the contract's error, before anything is
        sent; one that needs more gas than a block holds raises :class:`StepTooLarge`; one
        that does not fit the rest of the block is put in the next one."""
        if self.signer is None or self.read_only:
            message = "ledger opened read-only: no transactions allowed (it holds no operator key)"
            raise ChainError(message)
        block_gas = self.backend.block_gas_limit
        tx_gas = self.backend.max_tx_gas()
        step = _INTERVAL.sub(r"\1", label, count=1)  # "recordRound 7/4" -> "recordRound/4"
        probe = self._probes.get(step)
        estimate, probed = self._estimate(label, to, data, probe=probe)
        limit = min(gas_limit(estimate), tx_gas)
        confirmed = probed and probe is not None and probe <= limit
        if estimate <= tx_gas:
            self._probes[step] = min(estimate + (gas_limit(estimate) - estimate) // 2, tx_gas)
        if (
            estimate <= tx_gas
            and not confirmed
            and not self.backend.confirm_limit(self.signer.address, to, data, limit)
        ):
            estimate = self.estimate(label, to, data, exact=True)
            limit = min(gas_limit(estimate), tx_gas)
        if estimate > tx_gas:
            message = (
                f"{label}: needs {estimate:,} gas, more than {too_large(self.backend)}; the "
                "market is too large for this chain (fewer members per transaction, or a "
                "chain with larger transactions)"
            )
            raise StepTooLarge(message)
        if self._block_gas + limit > block_gas:
            self.seal_block()
        self._block_gas += limit
        self._pending.append((label, self.sign(to, data, limit), interval, bids))
        if self.backend.eager:
            self.flush()

    def estimate(self, label: str, to: bytes | None, data: bytes, *, exact: bool = False) -> int:
        """The gas estimate of an operator call after everything queued before it (a
        JSON-RPC node gets the queue in its pool first; ``exact``: its ``eth_estimateGas``,
        see :meth:`Backend.estimate_gas`); a revert raises :class:`ChainError` with the
        contract's decoded error."""
        return self._estimate(label, to, data, exact=exact)[0]

    def _estimate(
        self,
        label: str,
        to: bytes | None,
        data: bytes,
        *,
        exact: bool = False,
        probe: int | None = None,
    ) -> tuple[int, bool]:
        """:meth:`estimate`; with a ``probe``, measured by a run given that gas
        (:meth:`Backend.estimate_probed`): also whether that run succeeded."""
        if self._pending and not self.backend.eager:
            self._write_journal()
            self.backend.stage([raw for _, raw, _, _ in self._pending])
        assert self.signer is not None
        sender = self.signer.address
        try:
            if probe is not None and not exact:
                return self.backend.estimate_probed(sender, to, data, probe)
            return self.backend.estimate_gas(sender, to, data, exact=exact), False
        except OutOfBlockGas as error:
            message = f"{label}: needs more gas than {too_large(self.backend)} ({error}; not sent)"
            raise StepTooLarge(message) from error
        except CallReverted as error:
            reason = decode_error(error.data) if error.data else str(error)
            message = f"{label}: the transaction would revert: {reason} (not sent)"
            raise ChainError(message) from error

    def _write_journal(self) -> None:
        """Give the journal the pending interval steps it does not hold yet (the setup's
        are not journalled: an interrupted setup is redone, see ``Ledger.setup``)."""
        fresh = [
            (label, interval, bids, raw)
            for label, raw, interval, bids in self._pending[self._journaled :]
            if interval is not None
        ]
        self._journaled = len(self._pending)
        if self.journal is not None and fresh:
            self.journal(fresh)

    def flush(self) -> None:
        """Send the queued transactions."""
        self._write_journal()
        steps, self._pending = self._pending, []
        self._journaled = 0
        if not steps:
            return
        results = self.send([(label, raw) for label, raw, _, _ in steps])
        for (label, _, interval, bids), res in zip(steps, results, strict=True):
            if interval is not None:
                self._count_step(label, interval, bids, res.gas_used)
        self._recent.extend(results)

    def _count_step(self, label: str, interval: int, bids: int, gas_used: int) -> None:
        self._interval_gas[interval] = self._interval_gas.get(interval, 0) + gas_used
        if label.startswith("recordRound"):
            self.stats.gas_bid_txs += gas_used
        self.stats.bids_recorded += bids

    def adopt(self, label: str, interval: int, bids: int, raw: bytes, gas_used: int) -> None:
        """Count a step that an earlier process sent and the node mined, but that no log
        record holds yet, as if sent now (it joins the interval's log record)."""
        self.txlog.append((raw, gas_used))
        self.stats.tx_count += 1
        self.stats.gas_total += gas_used
        step = label.split()[0]
        self.stats.gas_by_step[step] = self.stats.gas_by_step.get(step, 0) + gas_used
        self._count_step(label, interval, bids, gas_used)

    def take_recent(self) -> list[TxResult]:
        """Flush; the results of the transactions sent since the last call."""
        self.flush()
        out, self._recent = self._recent, []
        return out

    def seal_block(self, *, new_block: bool = False) -> None:
        """Flush and seal the block (an interval may span several: round deadlines are in
        blocks); the boundary is kept for the log, so a replay seals at the same places.
        ``new_block``: a block must end here even if nothing is waiting (a deadline): a
        JSON-RPC node then mines an empty one (it mines a block with every flush anyway)."""
        waiting = bool(self._pending)
        self.flush()
        if new_block and not waiting:
            self.backend.new_block()
        else:
            self.backend.seal()
        self._block_gas = 0
        self.blocks.append(len(self.txlog) - sum(self.blocks))

    def end_interval(self, interval: int) -> None:
        """Flush, seal the block and count the interval's gas."""
        self.seal_block()
        self._recent = []
        self.close_interval(interval)

    def close_interval(self, interval: int) -> None:
        """Count ``interval`` as done and its gas in ``gas_per_interval_max``."""
        self.stats.intervals += 1
        gas = self._interval_gas.pop(interval, 0)
        self.stats.gas_per_interval_max = max(self.stats.gas_per_interval_max, gas)

    def take_txlog(self) -> tuple[list[tuple[bytes, int]], list[int]]:
        """The transactions sent since the last call, ``(raw, gas used)``, and how many of
        them each sealed block holds (the rest, if any, are not sealed yet)."""
        out, self.txlog = self.txlog, []
        blocks, self.blocks = self.blocks, []
        return out, blocks
