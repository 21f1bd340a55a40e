"""Operator transactions: nonces, the queue, gas limits and gas accounting.

Every transaction the ledger sends is signed by the operator with an explicit nonce
and an explicit gas limit. The limits are the measured cost (docs/ledger.md) times
about 1.5. Eager backends (embedded) run a queued transaction at once; the others
(JSON-RPC) run the queue in one batch on :meth:`TxQueue.flush`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gridledger.errors import ChainError
from gridledger.ledger.backends import Backend, TxResult
from gridledger.ledger.contracts import decode_error
from gridledger.ledger.signers import OperatorSigner, TxSigner

__all__ = [
    "GAS_APPROVE",
    "GAS_DEPLOY_HELPER",
    "GAS_DEPLOY_MARKET",
    "GAS_DEPLOY_TOKEN",
    "GAS_DEPOSIT_GRID",
    "GAS_MINT",
    "GAS_OPEN",
    "ChainStats",
    "TxQueue",
    "gas_clear",
    "gas_clearing",
    "gas_configure",
    "gas_deposit",
    "gas_fee_clear",
    "gas_readings",
    "gas_register",
    "gas_round",
    "gas_security",
    "gas_settle",
]

GAS_DEPLOY_TOKEN = 1_500_000
GAS_DEPLOY_MARKET = 7_000_000
GAS_DEPLOY_HELPER = (
    2_500_000  # a clearing checker, the settlement calculator, the curtailment verifier
)
GAS_MINT = 120_000
GAS_APPROVE = 80_000
GAS_DEPOSIT_GRID = 120_000
GAS_OPEN = 80_000


def gas_register(n_members: int) -> int:
    return 80_000 + 60_000 * n_members


def gas_deposit(n_members: int) -> int:
    return 120_000 + 30_000 * n_members


def gas_configure(table_bytes: int) -> int:
    return 250_000 + 260 * table_bytes


def gas_round(n_bids: int) -> int:
    return 90_000 + 14_000 * n_bids


def gas_clear(n_bids: int) -> int:
    return 120_000 + 9_000 * n_bids


def gas_fee_clear(n_bids: int, n_trades: int) -> int:
    return 250_000 + 12_000 * n_bids + 14_000 * n_trades


def gas_clearing(n_bids: int, n_trades: int | None) -> int:
    """Limit of a clearing: uniform (``n_trades`` None) or a fee rule with ``n_trades``."""
    return gas_clear(n_bids) if n_trades is None else gas_fee_clear(n_bids, n_trades)


def gas_security(n_trades: int, n_curtailments: int) -> int:
    # the DSO's signature check, and per curtailment the verifier's rows and lp certificate
    return 120_000 + 4_000 * n_trades + 60_000 * n_curtailments


def gas_readings(n_readings: int) -> int:
    return 100_000 + 14_000 * n_readings


def gas_settle(n_members: int, n_trades: int) -> int:
    return 150_000 + 16_000 * n_members + 6_000 * n_trades


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
        self._pending: list[tuple[str, bytes, int, int]] = []  # label, raw, interval, bids
        self.journal: Callable[[Sequence[tuple[str, int, int, bytes]]], None] | None = None
        self._recent: list[TxResult] = []
        self._interval_gas: dict[int, int] = {}

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
        self, label: str, to: bytes, data: bytes, gas: int, interval: int, bids: int = 0
    ) -> None:
        """Sign an operator call of ``interval`` and queue it (eager backends: run it now);
        ``bids`` is the number of bids it records (counted in the stats once sent)."""
        self._pending.append((label, self.sign(to, data, gas), interval, bids))
        if self.backend.eager:
            self.flush()

    def flush(self) -> None:
        """Send the queued transactions."""
        steps, self._pending = self._pending, []
        if not steps:
            return
        if self.journal is not None:
            self.journal([(label, interval, bids, raw) for label, raw, interval, bids in steps])
        results = self.send([(label, raw) for label, raw, _, _ in steps])
        for (label, _, interval, bids), res in zip(steps, results, strict=True):
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
