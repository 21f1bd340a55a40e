"""The explorer of a node without a run folder: what :mod:`gridledger.explorer.app` serves
for ``gridledger serve --chain URL``.

:class:`NodeExplorer` holds the :class:`~gridledger.explorer.node.NodeWatcher`, the tables
derived from the followed Market's events (rebuilt when new events come) and the audit
of that Market (``gridledger audit`` on it, redone in a background thread when the chain
has grown). :func:`add_node_routes` maps the node pages to the same URLs as a run folder's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response

from gridledger.errors import GridledgerError
from gridledger.explorer.chaintables import chain_tables
from gridledger.explorer.node import MarketReader, NodeReader, NodeWatcher
from gridledger.explorer.nodepages import (
    node_interval_page,
    node_member_page,
    node_overview_page,
    node_timeline_page,
)
from gridledger.explorer.pages import audit_page, missing_page
from gridledger.ledger.audit import AuditReport, audit
from gridledger.report.html import Page
from gridledger.report.tables import RunTables

__all__ = ["AUDIT_ON_NODE", "NodeExplorer", "add_node_routes"]

AUDIT_ON_NODE = (
    "The audit is running on the node: it re-derives every interval of the Market from "
    "its events. This page reloads itself."
)

Html = Callable[[Page, int], Response]


@dataclass
class NodeExplorer:
    """What the app serves for a node alone: its watcher, derived tables, and audit."""

    watcher: NodeWatcher
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tables: tuple[tuple[str, int], RunTables] | None = None
    _audit: tuple[tuple[str, int], AuditReport | str] | None = None
    _auditing: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.watcher.url

    @property
    def label(self) -> str:
        """What is served, for the command's output."""
        return f"node {self.url}"

    def _key(self) -> tuple[str, int] | None:
        market, events = self.watcher.view.market, self.watcher.snapshot().events
        return None if market is None else (market.hex, len(events))

    def tables(self) -> RunTables | None:
        """The tables of the followed Market's events (None before one is found)."""
        view, snap = self.watcher.view, self.watcher.snapshot()
        key = self._key()
        if key is None or view.params is None or not snap.events:
            return None
        with self._lock:
            if self._tables is None or self._tables[0] != key:
                self._tables = (key, chain_tables(snap.events, view.params))
            return self._tables[1]

    def audit(self) -> AuditReport | str:
        """The audit of the followed Market (cached until new events), or why not yet."""
        key, market = self._key(), self.watcher.view.market
        if key is None or market is None:
            return "no Market followed yet: nothing to audit"
        with self._lock:
            if self._audit is not None and self._audit[0] == key:
                return self._audit[1]
            if self._auditing is None or not self._auditing.is_alive():
                self._auditing = threading.Thread(
                    target=self._run_audit, args=(key, market.address), daemon=True, name="audit"
                )
                self._auditing.start()
        return AUDIT_ON_NODE

    def _run_audit(self, key: tuple[str, int], address: bytes) -> None:
        try:
            result: AuditReport | str = audit(MarketReader(NodeReader(self.url), address))
        except GridledgerError as error:
            result = f"the audit could not run: {error}"
        with self._lock:
            self._audit = (key, result)


def add_node_routes(app: Flask, explorer: NodeExplorer, html: Html) -> None:
    """The node pages of ``explorer`` on ``app`` (/, /timeline, /interval/N, /member/ID,
    /audit); ``html`` renders a page with its status code."""
    watcher = explorer.watcher

    def waiting() -> Response:
        snap = watcher.snapshot()
        return html(node_overview_page(explorer.url, watcher.view, snap, None), 200)

    @app.route("/")
    def _overview() -> Response:
        snap = watcher.snapshot()
        page = node_overview_page(explorer.url, watcher.view, snap, explorer.tables())
        return html(page, 200)

    @app.route("/timeline")
    def _timeline() -> Response:
        tables = explorer.tables()
        return waiting() if tables is None else html(node_timeline_page(tables), 200)

    @app.route("/interval/<int:interval>")
    def _interval(interval: int) -> Response:
        tables = explorer.tables()
        if tables is None:
            return waiting()
        if interval not in set(int(i) for i in tables.intervals["interval"]):
            return html(missing_page(f"The Market has no interval {interval} on chain."), 404)
        return html(node_interval_page(tables, watcher.snapshot(), interval), 200)

    @app.route("/member/<int:member>")
    def _member(member: int) -> Response:
        tables, params = explorer.tables(), watcher.view.params
        if tables is None or params is None:
            return waiting()
        if member not in set(int(m) for m in tables.members["id"]):
            return html(missing_page(f"The Market has no member {member}."), 404)
        retail = params.tariffs.retail_per_kwh_micro
        return html(node_member_page(tables, watcher.snapshot(), member, retail), 200)

    @app.route("/audit")
    def _audit() -> Response:
        return html(audit_page(explorer.audit(), live=True), 200)
