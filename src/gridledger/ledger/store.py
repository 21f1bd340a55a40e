"""The transaction log ``txlog.jsonl``: hash-chained, verified before use, replayable.

One line per step (the setup, then one per interval; an interval spans several blocks,
since round deadlines are counted in blocks), appended and fsynced after its last block
is sealed::

    {"label": "interval", "interval": 7, "txs": [raw hex...], "gas": [gas used...],
     "blocks": [transactions per sealed block...], "stats": {cumulative ChainStats}, "prev": "<hash of the record before>",
     "hash": "<sha256(prev bytes || canonical JSON of the record without 'hash')>"}

The first record's ``prev`` is :data:`GENESIS`; the canonical JSON has sorted keys and
no spaces. :meth:`TxLog.open` checks the whole chain of hashes before anything is
replayed or appended: a changed, dropped, duplicated or reordered record is a
:class:`~gridledger.errors.SavedChainDamaged` naming the record. A last line without its
newline is a record torn by a kill: it is dropped with a warning and, when the log is
opened for writing, cut from the file. The embedded chain is rebuilt by :func:`replay`
(py-evm is deterministic; the status and gas of every transaction are checked).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridledger.errors import ChainError, SavedChainDamaged
from gridledger.ledger.backends import Backend
from gridledger.ledger.txqueue import ChainStats

__all__ = ["FIELDS", "GENESIS", "TXLOG_FILE", "LogRecord", "TxLog", "record_hash", "replay"]

log = logging.getLogger(__name__)

TXLOG_FILE = "txlog.jsonl"
GENESIS = "00" * 32


class _Stats(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    tx_count: int
    gas_total: int
    bids_recorded: int
    gas_bid_txs: int
    gas_per_interval_max: int
    intervals: int
    wall_s: float
    gas_by_step: dict[str, int]


class LogRecord(BaseModel):
    """One verified record of the log (``number`` counts from 1)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    label: Literal["setup", "interval"]
    interval: int | None
    txs: list[Annotated[str, Field(pattern=r"^([0-9a-f]{2})+$")]] = Field(min_length=1)
    gas: list[int]
    blocks: list[Annotated[int, Field(ge=0)]]
    stats: _Stats
    prev: str
    hash: str

    def raw_txs(self) -> list[bytes]:
        return [bytes.fromhex(h) for h in self.txs]

    def block_sizes(self) -> list[int]:
        """Transactions per sealed block."""
        return list(self.blocks)

    def chain_stats(self) -> ChainStats:
        return ChainStats(**self.stats.model_dump())


FIELDS = ("label", "interval", "txs", "gas", "blocks", "stats", "prev", "hash")


def _block_sizes(blocks: list[int], n_txs: int) -> list[int]:
    """Transactions per block: the sealed blocks' (empty ones kept: they count for the
    deadlines), then the rest."""
    rest = n_txs - sum(blocks)
    return [*blocks, rest] if rest > 0 else list(blocks)


def _line(record: dict[str, Any]) -> bytes:
    """The one byte form of a record in the file (fields in :data:`FIELDS` order)."""
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def record_hash(record: dict[str, Any]) -> str:
    """The hash of ``record`` (its ``"hash"`` key, if any, left out)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(bytes.fromhex(str(body.get("prev", ""))) + _canonical(body)).hexdigest()


class TxLog:
    """The verified records of ``state_dir/txlog.jsonl`` and appending to it."""

    def __init__(self, path: Path, records: list[LogRecord], complete_bytes: int) -> None:
        self.path = path
        self.records = records
        self._complete_bytes = complete_bytes
        self.torn = False  # the file ends in an incomplete record (see cut_torn)

    @property
    def head(self) -> str:
        """Hash of the last record (:data:`GENESIS` for an empty log)."""
        return self.records[-1].hash if self.records else GENESIS

    @classmethod
    def open(cls, state_dir: Path) -> TxLog:
        """Read and verify the log; a torn last record is dropped (the file is left alone)."""
        path = state_dir / TXLOG_FILE
        data = path.read_bytes() if path.exists() else b""
        end = data.rfind(b"\n") + 1  # end of the last complete record
        lines = data[:end].split(b"\n")[:-1]
        records: list[LogRecord] = []
        prev = GENESIS
        for number, line in enumerate(lines, start=1):
            record = _verified(path, number, line, prev, records)
            records.append(record)
            prev = record.hash
        txlog = cls(path, records, end)
        if end < len(data):
            txlog.torn = True
            log.warning(
                "%s: record %d is incomplete (%d bytes; the run was killed while writing "
                "it): dropped",
                path,
                len(lines) + 1,
                len(data) - end,
            )
        return txlog

    def cut_torn(self) -> None:
        """Cut a torn last record from the file (before anything is appended)."""
        if not self.torn:
            return
        with open(self.path, "r+b") as handle:
            handle.truncate(self._complete_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        self.torn = False
        log.warning("%s: incomplete record %d cut from the file", self.path, len(self.records) + 1)

    def append(
        self,
        label: str,
        interval: int | None,
        entries: list[tuple[bytes, int]],
        stats: ChainStats,
        blocks: list[int] | None = None,
    ) -> None:
        """Append the transactions ``(raw, gas used)`` of one step (the setup or an interval)
        to the log and fsync it; ``blocks`` is how many each sealed block holds (several when
        the interval spans blocks)."""
        if not entries:
            return
        self.cut_torn()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body: dict[str, Any] = {
            "label": label,
            "interval": interval,
            "txs": [raw.hex() for raw, _ in entries],
            "gas": [gas for _, gas in entries],
            "blocks": _block_sizes(blocks or [], len(entries)),
            "stats": asdict(stats),  # cumulative, so a resumed run reports the whole day
            "prev": self.head,
        }
        body["hash"] = record_hash(body)
        record = LogRecord.model_validate(body)
        line = _line(body)
        with open(self.path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)
        self._complete_bytes += len(line)


def _damaged(path: Path, number: int, what: str) -> SavedChainDamaged:
    return SavedChainDamaged(f"{path}: saved chain damaged at record {number}: {what}")


def _verified(
    path: Path, number: int, line: bytes, prev: str, before: list[LogRecord]
) -> LogRecord:
    """Record ``number`` of the log, checked against its hash and its predecessor's."""
    try:
        body = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        what = f"expected a JSON record, found {line[:40]!r}... ({error})"
        raise _damaged(path, number, what) from error
    if not isinstance(body, dict) or tuple(body) != FIELDS:
        keys = list(body) if isinstance(body, dict) else type(body).__name__
        raise _damaged(path, number, f"expected a record with keys {list(FIELDS)}, found {keys}")
    if _line(body) != line + b"\n":
        what = "expected the record's own byte form, found other spacing or escapes (edited)"
        raise _damaged(path, number, what)
    if body["prev"] != prev:
        raise _damaged(
            path,
            number,
            f"expected prev {prev[:16]}... (the hash of record {number - 1}), found "
            f"{str(body['prev'])[:16]}... (a record is missing, repeated or out of order)",
        )
    try:
        computed = record_hash(body)
    except ValueError as error:
        raise _damaged(
            path, number, f"expected a hex 'prev', found {body['prev']!r:.40}"
        ) from error
    if computed != body["hash"]:
        raise _damaged(
            path,
            number,
            f"expected content hashing to {str(body['hash'])[:16]}... (its recorded hash), "
            f"found content hashing to {computed[:16]}... (the record was changed)",
        )
    try:
        record = LogRecord.model_validate(body)
    except ValidationError as error:
        raise _damaged(path, number, f"malformed record: {error.errors()[0]['msg']}") from error
    expected = "setup" if number == 1 else "interval"
    last = before[-1].interval if len(before) > 1 else None
    if sum(record.blocks) != len(record.txs):
        raise _damaged(path, number, "its block sizes do not add up to its transactions")
    if record.label != expected or len(record.gas) != len(record.txs):
        raise _damaged(path, number, f"expected an {expected!r} record, found {record.label!r}")
    if expected == "interval" and (
        record.interval is None or (last is not None and record.interval <= last)
    ):
        raise _damaged(path, number, f"expected an interval after {last}, found {record.interval}")
    return record


def replay(backend: Backend, txlog: TxLog) -> None:
    """Re-send every verified block of ``txlog`` on ``backend``, checking status and gas."""
    started = time.perf_counter()
    for number, record in enumerate(txlog.records, start=1):
        raws = record.raw_txs()
        results = []
        start = 0
        for size in record.block_sizes():
            results += backend.send(raws[start : start + size])
            backend.seal()
            start += size
        for k, (res, gas) in enumerate(zip(results, record.gas, strict=True)):
            if not res.status or res.gas_used != gas:
                message = (
                    f"{txlog.path}:{number}: replayed transaction #{k} ({record.label}) gave "
                    f"status={res.status} gas={res.gas_used}, the log says gas={gas}"
                )
                raise ChainError(message)
    log.info(
        "replayed %d blocks from %s in %.1f s",
        len(txlog.records),
        txlog.path,
        time.perf_counter() - started,
    )
