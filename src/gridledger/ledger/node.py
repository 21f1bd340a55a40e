"""A JSON-RPC node against the saved chain: what it holds, and bringing the two in line.

The node is the source of truth of what is on chain; the folder (``txlog.jsonl`` and
``sent.jsonl``) is the source of the signed transactions. Every operator transaction
has its nonce, so comparing the operator's nonce on the node with the nonces of the
folder's transactions tells what the node holds:

- **the node lost its state** (no code at the recorded Market address, another chain
  id, or no receipt of a logged transaction below the node's nonce):
  :class:`~gridledger.errors.NodeStateLost`, nothing is sent;
- **the node is behind the log** (restarted from an older state): a writable ledger
  re-sends the logged transactions the node lacks, the same signed bytes with the same
  nonces, one block per log record, checking status and gas against the log; a read-only
  ledger (the audit) raises :class:`~gridledger.errors.NodeStateBehind`;
- **the node is ahead of the log** (a process sent an interval's steps and died, or lost
  the answer, before the interval's log record): the transactions at the nonces after the
  log are looked up in ``sent.jsonl`` (written before every batch is sent) by their
  receipts; they are adopted into the counters and the next log record, and never sent
  again. Transactions waiting in the node's pool (delivered, answer lost) are mined first.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rlp
from eth_utils import keccak

from gridledger.errors import ChainError, NodeStateBehind, NodeStateLost
from gridledger.ledger.backends import RpcBackend, TxResult
from gridledger.ledger.saved import LEDGER_FILE, SavedLedger
from gridledger.ledger.store import TxLog

__all__ = ["SENT_FILE", "SentJournal", "SentStep", "reconcile", "tx_nonce"]

log = logging.getLogger(__name__)

SENT_FILE = "sent.jsonl"


@dataclass(frozen=True, slots=True)
class SentStep:
    """One interval step as sent: label, interval, bids it records, signed bytes."""

    label: str
    interval: int
    bids: int
    raw: bytes

    @property
    def nonce(self) -> int:
        return tx_nonce(self.raw)


def tx_nonce(raw: bytes) -> int:
    """The nonce of a signed transaction (typed EIP-2718 or legacy)."""
    fields = rlp.decode(raw[1:] if raw[0] < 0x80 else raw)
    item = fields[1] if raw[0] < 0x80 else fields[0]
    return int.from_bytes(bytes(item), "big")


def _lines(steps: Sequence[tuple[str, int, int, bytes]]) -> bytes:
    return b"".join(
        json.dumps(
            {"label": label, "interval": interval, "bids": bids, "tx": raw.hex()},
            separators=(",", ":"),
        ).encode()
        + b"\n"
        for label, interval, bids, raw in steps
    )


class SentJournal:
    """``sent.jsonl``: the interval steps sent since the last log record.

    One line per transaction, appended and fsynced before its batch goes to the node,
    emptied once the interval's record is in ``txlog.jsonl``. It needs no hash chain: an
    entry counts only when the node holds a transaction with its hash.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SENT_FILE

    def write(self, steps: Sequence[tuple[str, int, int, bytes]]) -> None:
        """Append ``(label, interval, bids, raw)`` steps and fsync (after cutting a line
        torn by a kill, if the file ends in one)."""
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                self.path.write_bytes(data[: data.rfind(b"\n") + 1])
        with open(self.path, "ab") as handle:
            handle.write(_lines(steps))
            handle.flush()
            os.fsync(handle.fileno())

    def entries(self) -> list[SentStep]:
        """The readable entries (a line torn by a kill is skipped with a warning)."""
        if not self.path.exists():
            return []
        out = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                body = json.loads(line)
                out.append(
                    SentStep(
                        str(body["label"]),
                        int(body["interval"]),
                        int(body["bids"]),
                        bytes.fromhex(body["tx"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                log.warning(
                    "%s: line %d is unreadable (torn by a kill?): skipped", self.path, number
                )
        return out

    def replace(self, steps: Sequence[SentStep]) -> None:
        """Rewrite the journal with ``steps`` only (atomically)."""
        tmp = self.path.with_name(SENT_FILE + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(_lines([(s.label, s.interval, s.bids, s.raw) for s in steps]))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def clear(self) -> None:
        """Empty the journal (its steps are in the log now)."""
        if self.path.exists() and self.path.stat().st_size:
            self.replace([])


@dataclass(frozen=True, slots=True)
class _Logged:
    nonce: int
    raw: bytes
    gas: int
    record: int  # counted from 1


def _logged(txlog: TxLog) -> list[_Logged]:
    return [
        _Logged(tx_nonce(raw), raw, gas, number)
        for number, record in enumerate(txlog.records, start=1)
        for raw, gas in zip(record.raw_txs(), record.gas, strict=True)
    ]


def _check_identity(backend: RpcBackend, saved: SavedLedger, ledger_file: Path) -> None:
    url = backend.url
    if backend.chain_id != saved.chain_id:
        message = (
            f"{url}: the node's chain id is {backend.chain_id}, {ledger_file} records "
            f"{saved.chain_id}: it is another chain; restart the node with its state, or "
            "run into a new folder"
        )
        raise NodeStateLost(message)
    if not backend.code(bytes.fromhex(saved.market)):
        message = (
            f"{url}: the node has no market at 0x{saved.market} (recorded in {ledger_file}): "
            "it lost its state; restart it with its state, or run into a new folder"
        )
        raise NodeStateLost(message)


def _check_history(backend: RpcBackend, txlog: TxLog, on_chain: Sequence[_Logged]) -> None:
    """The node's last operator transaction that the log also holds must be the log's."""
    if not on_chain:
        return
    last = on_chain[-1]
    (res,) = backend.receipts([keccak(last.raw)])
    if res is None or res.gas_used != last.gas:
        found = "no such transaction" if res is None else f"gas {res.gas_used}"
        message = (
            f"{backend.url}: the node holds another history than {txlog.path}: the logged "
            f"transaction of nonce {last.nonce} (record {last.record}, gas {last.gas}) is "
            f"not on the node ({found}); restart the node with its state, or run into a new "
            "folder"
        )
        raise NodeStateLost(message)


def _resend(backend: RpcBackend, txlog: TxLog, missing: Sequence[_Logged]) -> None:
    """Re-send logged transactions, one block per record, checking status and gas."""
    records = sorted({t.record for t in missing})
    for number in records:
        block = [t for t in missing if t.record == number]
        results = backend.send([t.raw for t in block])
        for t, res in zip(block, results, strict=True):
            if not res.status or res.gas_used != t.gas:
                message = (
                    f"{txlog.path}:{number}: re-sent transaction of nonce {t.nonce} gave "
                    f"status={res.status} gas={res.gas_used} on {backend.url}, the log says "
                    f"gas={t.gas}"
                )
                raise ChainError(message)


def _ahead(
    backend: RpcBackend, journal: SentJournal, txlog: TxLog, nonces: range
) -> list[tuple[SentStep, TxResult]]:
    """The journal's steps at ``nonces`` with their receipts on the node."""
    candidates = [s for s in journal.entries() if s.nonce in nonces]
    results = backend.receipts([keccak(s.raw) for s in candidates]) if candidates else []
    found: dict[int, tuple[SentStep, TxResult]] = {}
    for step, res in zip(candidates, results, strict=True):
        if res is not None:
            found[step.nonce] = (step, res)
    unknown = [n for n in nonces if n not in found]
    if unknown:
        message = (
            f"{backend.url}: the node holds operator transactions of nonces "
            f"{unknown[0]}-{unknown[-1]} that neither {txlog.path} nor {journal.path} "
            "records (another run used this operator on this node?); run into a new folder"
        )
        raise NodeStateLost(message)
    return [found[n] for n in nonces]


def reconcile(
    backend: RpcBackend,
    state_dir: Path,
    saved: SavedLedger,
    txlog: TxLog,
    last_settled: Callable[[], int | None],
    read_only: bool,
) -> list[tuple[SentStep, TxResult]]:
    """Bring the node in line with the saved folder (see the module docstring).

    Returns the steps the node holds beyond the log, with their receipts, in nonce order
    (successful ones only: a reverted step is sent again by the resumed run).
    """
    _check_identity(backend, saved, state_dir / LEDGER_FILE)
    operator = bytes.fromhex(saved.operator)
    logged = _logged(txlog)
    log_next = logged[-1].nonce + 1
    latest = backend.transaction_count(operator, "latest")
    pending = backend.transaction_count(operator, "pending")
    if pending > latest and not read_only:
        log.warning(
            "%s: %d operator transactions were waiting in the node's pool (delivered before "
            "an answer was lost): mined",
            backend.url,
            pending - latest,
        )
        backend.mine()
        latest = backend.transaction_count(operator, "latest")
    _check_history(backend, txlog, [t for t in logged if t.nonce < latest])
    journal = SentJournal(state_dir)
    if latest < log_next:
        missing = [t for t in logged if t.nonce >= latest]
        node_last, log_last = last_settled(), txlog.records[-1].interval
        where = (
            f"the node settled through interval {node_last}, {txlog.path} through "
            f"{log_last} ({len(missing)} logged transactions from nonce {latest} are not "
            "on the node)"
        )
        if read_only:
            message = (
                f"{backend.url}: the node is behind the local log: {where}; it was restarted "
                "from an older state: `gridledger run --resume` re-sends them"
            )
            raise NodeStateBehind(message)
        _resend(backend, txlog, missing)
        log.warning("%s: %s: re-sent them (same signed transactions)", backend.url, where)
        journal.clear()
        return []
    if latest == log_next:
        if not read_only:
            journal.clear()
        return []
    if read_only:
        return []
    if not journal.path.exists():
        log.warning(
            "%s: the node holds %d operator transactions beyond %s and there is no %s: "
            "the counters will miss their gas",
            backend.url,
            latest - log_next,
            txlog.path,
            journal.path,
        )
        return []
    found = _ahead(backend, journal, txlog, range(log_next, latest))
    adopted = [(step, res) for step, res in found if res.status]
    for step, res in found:
        if not res.status:
            log.warning(
                "%s: %s (nonce %d) reverted on the node; the resumed run sends it again",
                backend.url,
                step.label,
                step.nonce,
            )
    log.info("%s: %d steps on the node beyond the log adopted", backend.url, len(adopted))
    return adopted
