"""A run folder as the explorer reads it: tables, key figures, feeder, audit, chain events.

:func:`open_run` checks that a folder is a run (``run.json``, ``summary.json`` or a saved
chain in ``chain/``) and returns a :class:`RunSource`. Tables are read again when the
folder's CSV files change (a run that finishes while it is served); the audit is redone
when the chain has grown.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridledger.errors import GridledgerError, UsageError
from gridledger.grid import Feeder, load_feeder
from gridledger.ledger.audit import AuditReport
from gridledger.report.kpis import summary
from gridledger.report.tables import RunTables, load_tables
from gridledger.sim.runner import CHAIN_DIR, audit_folder

__all__ = ["AUDIT_RUNNING", "RUN_MARKERS", "NotARunFolder", "RunSource", "open_run"]

RUN_MARKERS = ("run.json", "summary.json", f"{CHAIN_DIR}/ledger.json")
"""A folder holding any of these is a run (finished, or going on with its chain)."""

AUDIT_RUNNING = (
    "The audit is running: it replays the saved chain and re-derives every interval "
    "(about a minute for a whole day). This page reloads itself."
)


class NotARunFolder(UsageError):
    """``gridledger serve`` was given a folder that holds no run."""


def open_run(folder: Path, *, live: bool = False) -> RunSource:
    """``folder`` as a :class:`RunSource`; :class:`NotARunFolder` when it is missing, a
    file, or holds none of :data:`RUN_MARKERS` (unless ``live``: a run about to write it)."""
    if not folder.is_dir():
        found = "not a folder" if folder.exists() else "no such folder"
        message = f"{folder}: {found} (give the output folder of a run, e.g. runs/ieee33)"
        raise NotARunFolder(message)
    if not live and not any((folder / name).is_file() for name in RUN_MARKERS):
        message = (
            f"{folder}: not a run folder (none of {', '.join(RUN_MARKERS)} found); give the "
            "output folder of `gridledger run`"
        )
        raise NotARunFolder(message)
    return RunSource(folder)


@dataclass
class RunSource:
    """The files of one run folder, read on demand and cached until they change."""

    folder: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tables: tuple[float, RunTables] | None = None
    _feeder: Feeder | None = None
    _audit: tuple[float, AuditReport | str] | None = None
    _auditing: threading.Thread | None = None

    def _stamp(self) -> float | None:
        files = [self.folder / "run.json", self.folder / "intervals.csv"]
        if not all(f.is_file() for f in files):
            return None
        return max(f.stat().st_mtime for f in files)

    def tables(self) -> RunTables | None:
        """The run's tables; None while they are not written yet (a run going on)."""
        stamp = self._stamp()
        if stamp is None:
            return None
        with self._lock:
            if self._tables is None or self._tables[0] != stamp:
                self._tables = (stamp, load_tables(self.folder))
            return self._tables[1]

    def kpis(self) -> dict[str, Any] | None:
        """``summary.json`` (recomputed from the tables when it is missing)."""
        path = self.folder / "summary.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                data = None
            if isinstance(data, dict):
                return data
        tables = self.tables()
        return None if tables is None else summary(tables)

    def feeder(self, tables: RunTables) -> Feeder:
        with self._lock:
            if self._feeder is None:
                self._feeder = load_feeder(tables.meta["feeder"])
            return self._feeder

    def audit(self, chain: str | None) -> AuditReport | str:
        """The audit of the saved chain (cached until it grows), or why there is none yet.

        The audit replays the saved chain (about a minute for a whole day), so it runs in
        a background thread; until it is done this says so (:data:`AUDIT_RUNNING`)."""
        txlog = self.folder / CHAIN_DIR / "txlog.jsonl"
        if not txlog.is_file():
            return f"no saved chain in {self.folder / CHAIN_DIR}: the run was made off chain"
        stamp = txlog.stat().st_mtime
        with self._lock:
            if self._audit is not None and self._audit[0] == stamp:
                return self._audit[1]
            if self._auditing is None or not self._auditing.is_alive():
                self._auditing = threading.Thread(
                    target=self._run_audit, args=(chain, stamp), name="audit", daemon=True
                )
                self._auditing.start()
        return AUDIT_RUNNING

    def _run_audit(self, chain: str | None, stamp: float) -> None:
        try:
            result: AuditReport | str = audit_folder(self.folder, chain=chain)
        except GridledgerError as error:
            result = f"the audit could not run: {error}"
        with self._lock:
            self._audit = (stamp, result)
