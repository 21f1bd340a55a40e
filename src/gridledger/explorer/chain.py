"""The chain's events as the explorer sees them: read only, followed in a background thread.

:class:`ChainWatcher` opens the run's saved chain (``RUN_DIR/chain``) read-only, on the
embedded chain (replayed from ``txlog.jsonl``) or on a JSON-RPC node (``--chain URL``),
and keeps the latest :class:`ChainSnapshot`: every Market event and what the pages derive
from them. It re-reads when the saved chain grows (embedded) or every few seconds (a
node), so the pages follow a run as intervals settle. An unreachable node is retried
with exponential backoff, a log line per attempt; the pages say what the watcher waits for.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gridledger.errors import GridledgerError, NodeUnreachable
from gridledger.ledger import Ledger, RpcBackend
from gridledger.ledger.contracts import DecodedEvent
from gridledger.ledger.findings import AccountReplay
from gridledger.sim.runner import CHAIN_DIR

__all__ = [
    "MICRO",
    "ChainSnapshot",
    "ChainWatcher",
    "Follower",
    "interval_rows",
    "member_balances",
    "member_escrow",
]

log = logging.getLogger(__name__)

MICRO = 1_000_000
"""Micro-tokens per token (the chain's money unit)."""

VERDICTS = {0: "secure", 1: "curtailed", 2: "insecure"}


@dataclass(frozen=True)
class ChainSnapshot:
    """What the watcher last read: ``status`` says where it stands, in words."""

    status: str
    events: tuple[DecodedEvent, ...] = ()
    read_at: float = 0.0
    error: str | None = None

    @property
    def settled(self) -> list[int]:
        """Intervals settled on chain, in order."""
        return [int(e.args["interval"]) for e in self.events if e.name == "IntervalSettled"]


def interval_rows(events: tuple[DecodedEvent, ...]) -> pd.DataFrame:
    """One row per interval seen on chain: rounds, trades, verdict, curtailments,
    settlement deltas (tokens). Empty without events."""
    rows: dict[int, dict[str, Any]] = {}
    for e in events:
        if "interval" not in e.args or e.name == "MemberRegistered":
            continue
        row = rows.setdefault(
            int(e.args["interval"]),
            {
                "interval": int(e.args["interval"]),
                "rounds": 0,
                "trades": None,
                "verdict": None,
                "curtailments": None,
                "settled": False,
                "fee_revenue": None,
                "grid_delta": None,
            },
        )
        if e.name == "RoundRecorded":
            row["rounds"] += 1
        elif e.name == "IntervalCleared":
            row["trades"] = len(e.args.get("trades", ()))
        elif e.name == "SecurityRecorded":
            row["verdict"] = VERDICTS.get(
                int(e.args.get("verdict", -1)), str(e.args.get("verdict"))
            )
            row["curtailments"] = len(e.args.get("curtailments", ()))
        elif e.name == "IntervalSettled":
            row["settled"] = True
            row["fee_revenue"] = int(e.args["operatorDeltaMicro"]) / MICRO
            row["grid_delta"] = int(e.args["gridDeltaMicro"]) / MICRO
    columns = [
        "interval",
        "rounds",
        "trades",
        "verdict",
        "curtailments",
        "settled",
        "fee_revenue",
        "grid_delta",
    ]
    return pd.DataFrame([rows[k] for k in sorted(rows)], columns=columns)


def member_escrow(
    events: tuple[DecodedEvent, ...], member: int, retail_per_kwh_micro: int
) -> tuple[pd.Series, pd.Series]:
    """A member's escrow balance once each interval settled (tokens; negative: debt) and the
    escrow its binding bid locked per interval (tokens), from the audit's replay of every
    account over the chain's events (deposits, locks, settlements, withdrawals)."""
    replay = AccountReplay(retail_per_kwh_micro)
    replay.run(events)
    balance = {t: b.get(member, 0) / MICRO for t, b in replay.balances_at.items()}
    locks = {t: held[member] / MICRO for t, held in replay.locks_at.items() if member in held}
    return pd.Series(balance, dtype=float), pd.Series(locks, dtype=float)


def member_balances(events: tuple[DecodedEvent, ...], member: int) -> pd.Series:
    """A member's escrow balance (tokens) after each settled interval (negative: debt)."""
    return member_escrow(events, member, 0)[0]


@dataclass(kw_only=True)
class Follower:
    """The loop of a watcher: :meth:`_poll` every ``poll_s`` in a daemon thread; an
    unreachable node or an unreadable chain is retried with exponential backoff (1, 2, 4,
    ... up to ``backoff_max_s`` seconds), a log line per attempt. :meth:`snapshot` is the
    latest read."""

    poll_s: float = 3.0
    backoff_max_s: float = 30.0
    _snapshot: ChainSnapshot = field(default_factory=lambda: ChainSnapshot("not started"))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def node(self) -> str | None:
        """The node URL followed (None: a saved chain)."""
        return None

    @property
    def label(self) -> str:
        """What is followed, for log lines."""
        return self.node or "the saved chain"

    def snapshot(self) -> ChainSnapshot:
        """The latest read (never blocks)."""
        return self._snapshot

    def start(self) -> None:
        """Start following in a daemon thread (no-op when running)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="chain-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        """Read once and set the snapshot (raises on failure; the loop retries)."""
        raise NotImplementedError

    def _reset(self) -> None:
        """Forget the connection after a failure (the next poll reconnects)."""

    def _follow(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                self._poll()
                delay = 1.0
                self._stop.wait(self.poll_s)
            except NodeUnreachable as error:
                self._reset()
                log.warning("node unreachable: %s; retrying in %.0f s", error, delay)
                self._snapshot = ChainSnapshot(
                    f"waiting for node {self.node} (unreachable; retrying every {delay:.0f} s)",
                    self._snapshot.events,
                    error=str(error),
                )
                self._stop.wait(delay)
                delay = min(2 * delay, self.backoff_max_s)
            except (GridledgerError, OSError) as error:
                self._reset()
                log.warning(
                    "cannot read the chain of %s: %s; retrying in %.0f s", self.label, error, delay
                )
                self._snapshot = ChainSnapshot(
                    f"cannot read the chain: {error}", self._snapshot.events, error=str(error)
                )
                self._stop.wait(delay)
                delay = min(2 * delay, self.backoff_max_s)


@dataclass
class ChainWatcher(Follower):
    """Follows the chain of ``folder`` (``chain`` None: the saved embedded chain; else a
    node URL) in a daemon thread; :meth:`snapshot` is the latest read."""

    folder: Path
    chain: str | None = None
    _ledger: Ledger | None = None
    _seen: tuple[int, float] | None = None

    @property
    def state_dir(self) -> Path:
        return self.folder / CHAIN_DIR

    @property
    def source(self) -> str:
        return self.chain or "embedded"

    @property
    def node(self) -> str | None:
        return self.chain

    @property
    def label(self) -> str:
        return str(self.folder)

    def _marker(self) -> tuple[int, float] | None:
        """Size and time of the saved transaction log (None without one)."""
        log_file = self.state_dir / "txlog.jsonl"
        if not log_file.is_file():
            return None
        stat = log_file.stat()
        return (stat.st_size, stat.st_mtime)

    def _reset(self) -> None:
        self._ledger = None

    def _poll(self) -> None:
        if self.chain is not None:
            if self._ledger is None:
                RpcBackend(self.chain, timeout_s=5.0).close()  # is the node there?
                self._ledger = Ledger.connect(self.chain, state_dir=self.state_dir, read_only=True)
                log.warning("connected to %s", self.chain)
            self._read(self._ledger, f"node {self.chain}")
            return
        marker = self._marker()
        if marker is None and (self.folder / "summary.json").is_file():
            self._snapshot = ChainSnapshot("none: the run was made off chain")
        elif marker is None:
            self._snapshot = ChainSnapshot(f"no saved chain in {self.state_dir} yet")
        elif marker != self._seen:
            if self._seen is None:
                self._snapshot = ChainSnapshot(
                    "reading the saved chain (replayed: about 40 s for a whole day)"
                )
            ledger = Ledger.connect("embedded", state_dir=self.state_dir, read_only=True)
            self._read(ledger, "saved embedded chain")
            ledger.close()
            self._seen = marker

    def _read(self, ledger: Ledger, where: str) -> None:
        events = tuple(ledger.events()) if ledger.is_set_up() else ()
        settled = sum(1 for e in events if e.name == "IntervalSettled")
        self._snapshot = ChainSnapshot(
            f"{where}: {settled} intervals settled, {len(events)} events", events, time.time()
        )
