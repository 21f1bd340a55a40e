"""Persistence of a ledger: the deployment (``ledger.json``) and the transaction log.

``ledger.json`` holds the deployment (addresses, chain id, seed, members, tariffs,
clearing rule and fee table). ``txlog.jsonl`` holds every signed raw transaction, one
line per setup or interval, appended and fsynced after the block is sealed, with the
cumulative :class:`~gridledger.ledger.txqueue.ChainStats`. The embedded chain is rebuilt
by :func:`replay` (py-evm is deterministic: same transactions, same state, same contract
addresses; the gas of every transaction is checked against the log).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

from gridledger.errors import ChainError
from gridledger.ledger.backends import Backend
from gridledger.ledger.deploy import ClearingConfig, Deployment, LedgerMember
from gridledger.ledger.fee_clearing import pack_fee_table
from gridledger.ledger.reference import unpack_fee_table
from gridledger.ledger.txqueue import ChainStats
from gridledger.market.settlement import Tariffs

__all__ = [
    "LEDGER_FILE",
    "TXLOG_FILE",
    "append_txlog",
    "deployment_from_saved",
    "load_saved",
    "replay",
    "save_deployment",
]

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.json"
TXLOG_FILE = "txlog.jsonl"


def load_saved(state_dir: Path, read_only: bool = False) -> dict[str, Any] | None:
    """The saved ``ledger.json`` of ``state_dir``; None when there is none (``read_only``:
    an error)."""
    path = state_dir / LEDGER_FILE
    if not path.exists():
        if read_only:
            message = f"{path}: no saved ledger to open read-only"
            raise ChainError(message)
        return None
    saved: dict[str, Any] = json.loads(path.read_text())
    return saved


def save_deployment(
    state_dir: Path, chain: str, chain_id: int, seed: bytes, operator: bytes, d: Deployment
) -> None:
    """Write ``ledger.json`` (atomically: temporary file, then rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fees = d.clearing.fees
    record = {
        "version": 1,
        "chain": chain,
        "chain_id": chain_id,
        "seed": seed.hex(),
        "note": "seed-derived keys are for simulation only",
        "token": d.token.hex(),
        "market": d.market.hex(),
        "operator": operator.hex(),
        "rounds": d.rounds,
        "retail_per_kwh_micro": d.tariffs.retail_per_kwh_micro,
        "feed_in_per_kwh_micro": d.tariffs.feed_in_per_kwh_micro,
        "tolerance_bp": d.tariffs.tolerance_bp,
        "clearing": d.clearing.rule,
        "kappa_num": d.clearing.kappa.numerator,
        "kappa_den": d.clearing.kappa.denominator,
        "fee_buses": None if fees is None else int(fees.shape[0]),
        "fee_table": None if fees is None else pack_fee_table(fees).hex(),
        "deposit_micro": d.deposit_micro,
        "grid_deposit_micro": d.grid_deposit_micro,
        "members": [asdict(m) for m in d.members],
    }
    tmp = state_dir / (LEDGER_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, state_dir / LEDGER_FILE)


def deployment_from_saved(saved: dict[str, Any]) -> Deployment:
    """The :class:`Deployment` recorded in a loaded ``ledger.json``."""
    fees = None
    if saved.get("fee_table") is not None:
        fees = unpack_fee_table(bytes.fromhex(saved["fee_table"]), int(saved["fee_buses"]))
    kappa = Fraction(int(saved.get("kappa_num", 1)), int(saved.get("kappa_den", 2)))
    by_id = {
        int(m["id"]): LedgerMember(int(m["id"]), int(m["bus"]), int(m["role"]))
        for m in saved["members"]
    }
    return Deployment(
        token=bytes.fromhex(saved["token"]),
        market=bytes.fromhex(saved["market"]),
        rounds=int(saved["rounds"]),
        tariffs=Tariffs(
            int(saved["retail_per_kwh_micro"]),
            int(saved["feed_in_per_kwh_micro"]),
            int(saved.get("tolerance_bp", 0)),
        ),
        clearing=ClearingConfig(str(saved.get("clearing", "uniform")), fees, kappa),
        members=tuple(by_id[i] for i in sorted(by_id)),
        deposit_micro=int(saved.get("deposit_micro", 0)),
        grid_deposit_micro=int(saved.get("grid_deposit_micro", 0)),
    )


def append_txlog(
    state_dir: Path,
    label: str,
    interval: int | None,
    entries: list[tuple[bytes, int]],
    stats: ChainStats,
) -> None:
    """Append one block's transactions ``(raw, gas used)`` to the log and fsync it."""
    if not entries:
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "label": label,
        "interval": interval,
        "txs": [raw.hex() for raw, _ in entries],
        "gas": [gas for _, gas in entries],
        "stats": asdict(stats),  # cumulative, so a resumed run reports the whole day
    }
    with open(state_dir / TXLOG_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def replay(backend: Backend, state_dir: Path) -> ChainStats | None:
    """Re-send every logged block on ``backend``; the last logged stats (None: no log)."""
    path = state_dir / TXLOG_FILE
    if not path.exists():
        return None
    started = time.perf_counter()
    groups = 0
    stats = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s:%d: incomplete record ignored (run killed while writing)", path, number)
            break
        results = backend.send([bytes.fromhex(h) for h in record["txs"]])
        for k, (res, gas) in enumerate(zip(results, record["gas"], strict=True)):
            if not res.status or res.gas_used != gas:
                message = (
                    f"{path}:{number}: replayed transaction #{k} ({record['label']}) gave "
                    f"status={res.status} gas={res.gas_used}, the log says gas={gas}"
                )
                raise ChainError(message)
        backend.seal()
        groups += 1
        if "stats" in record:
            stats = ChainStats(**record["stats"])
    log.info("replayed %d blocks from %s in %.1f s", groups, path, time.perf_counter() - started)
    return stats
