"""The explorer's web app (Flask) and the server of ``gridledger serve``.

:func:`create_app` maps the pages of :mod:`gridledger.explorer.pages` to URLs:

- ``/``: overview (grouped key figures, members); while a run has not written its tables,
  the chain's events so far;
- ``/timeline``: prices, energy, welfare, fees, violations per interval (click: interval);
- ``/interval/<n>``: order book per round, clearing, trade map, security, readings,
  settlement;
- ``/member/<id>``: bids, trades, energy, balance, locks and debt over the run;
- ``/audit``: the audit of the saved chain and its findings;
- ``/assets/plotly.min.js``: the bundled plotly.js (nothing is fetched from the internet).

Without a run folder (``gridledger serve --chain URL``) the same URLs serve the pages of
:mod:`gridledger.explorer.nodeapp`, from the events of a Market found on the node.

:func:`start_server` binds 127.0.0.1 (a port in use is a :class:`PortInUse`);
:func:`serve` serves until Ctrl-C.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response
from plotly.offline import get_plotlyjs
from werkzeug.serving import BaseWSGIServer, make_server

from gridledger.errors import GridledgerError, UsageError
from gridledger.explorer.chain import ChainWatcher
from gridledger.explorer.node import NodeWatcher, parse_address
from gridledger.explorer.nodeapp import NodeExplorer, add_node_routes
from gridledger.explorer.pages import (
    audit_page,
    interval_page,
    live_page,
    member_page,
    missing_page,
    overview_page,
    timeline_page,
)
from gridledger.explorer.source import AUDIT_RUNNING, RunSource, open_run
from gridledger.report.html import Page, render_page

__all__ = [
    "DEFAULT_PORT",
    "Explorer",
    "PortInUse",
    "create_app",
    "explorer_for",
    "explorer_for_node",
    "serve",
    "serve_in_background",
    "start_server",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8050
PLOTLY_SRC = "/assets/plotly.min.js"


class PortInUse(UsageError):
    """The port ``gridledger serve`` should listen on is taken."""


@dataclass
class Explorer:
    """What the app serves: a run folder and the watcher of its chain."""

    source: RunSource
    watcher: ChainWatcher

    @property
    def live(self) -> bool:
        """True while the run has not written its tables or follows a node (pages reload)."""
        return self.watcher.chain is not None or self.source.tables() is None

    @property
    def label(self) -> str:
        """What is served, for the command's output."""
        return str(self.source.folder)


def _html(page: Page, status: int = 200) -> Response:
    return Response(render_page(page, plotly_src=PLOTLY_SRC), status, mimetype="text/html")


def create_app(explorer: Explorer | NodeExplorer) -> Flask:
    """The Flask app of ``explorer`` (pages rendered by report/html.py)."""
    app = Flask("gridledger.explorer")
    plotly_js = get_plotlyjs()

    @app.errorhandler(GridledgerError)
    def _failed(error: GridledgerError) -> Response:
        return _html(missing_page(f"Cannot read the run: {error}"), 500)

    @app.route(PLOTLY_SRC)
    def _plotly() -> Response:
        response = Response(plotly_js, mimetype="application/javascript")
        response.cache_control.max_age = 3600
        return response

    @app.route("/favicon.ico")
    def _favicon() -> Response:
        return Response(b"", 204)

    @app.errorhandler(404)
    def _not_found(_error: Exception) -> Response:
        return _html(missing_page("No such page."), 404)

    if isinstance(explorer, NodeExplorer):
        add_node_routes(app, explorer, _html)
    else:
        _add_run_routes(app, explorer)
    return app


def _add_run_routes(app: Flask, explorer: Explorer) -> None:
    source, watcher = explorer.source, explorer.watcher

    @app.route("/")
    def _overview() -> Response:
        tables, kpis = source.tables(), source.kpis()
        if tables is None or kpis is None:
            return _html(live_page(watcher.snapshot(), str(source.folder)))
        return _html(overview_page(kpis, tables, watcher.snapshot(), explorer.live))

    @app.route("/timeline")
    def _timeline() -> Response:
        tables = source.tables()
        if tables is None:
            return _html(live_page(watcher.snapshot(), str(source.folder)))
        return _html(timeline_page(tables, explorer.live))

    @app.route("/interval/<int:interval>")
    def _interval(interval: int) -> Response:
        tables = source.tables()
        if tables is None:
            return _html(live_page(watcher.snapshot(), str(source.folder)))
        if interval not in set(int(i) for i in tables.intervals["interval"]):
            return _html(missing_page(f"The run has no interval {interval}."), 404)
        feeder = source.feeder(tables)
        snap = watcher.snapshot()
        return _html(interval_page(tables, feeder, snap, interval, explorer.live))

    @app.route("/member/<int:member>")
    def _member(member: int) -> Response:
        tables = source.tables()
        if tables is None:
            return _html(live_page(watcher.snapshot(), str(source.folder)))
        if member not in set(int(m) for m in tables.members["id"]):
            return _html(missing_page(f"The run has no member {member}."), 404)
        return _html(member_page(tables, watcher.snapshot(), member, explorer.live))

    @app.route("/audit")
    def _audit() -> Response:
        result = source.audit(watcher.chain)
        return _html(audit_page(result, explorer.live or result == AUDIT_RUNNING))


def start_server(explorer: Explorer | NodeExplorer, port: int = DEFAULT_PORT) -> BaseWSGIServer:
    """Bind 127.0.0.1:``port`` and start the chain watcher; :class:`PortInUse` when taken."""
    if not 0 <= port <= 65535:
        message = f"--port {port}: not a TCP port (0 to 65535)"
        raise UsageError(message)
    message = (
        f"--port {port}: cannot listen on 127.0.0.1:{port} ({{}}); another program holds "
        "it: stop it or give another --port"
    )
    try:
        # werkzeug exits the process on a bind failure: probe first, with its socket options
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
        server = make_server("127.0.0.1", port, create_app(explorer), threaded=True)
    except OSError as error:
        raise PortInUse(message.format(error.strerror or error)) from None
    except SystemExit:
        raise PortInUse(message.format("address in use")) from None
    if not logging.getLogger("gridledger").isEnabledFor(logging.INFO):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request with -v
    explorer.watcher.start()
    return server


def serve_in_background(server: BaseWSGIServer) -> threading.Thread:
    """Serve ``server`` from a daemon thread (``gridledger run --serve``)."""
    thread = threading.Thread(target=server.serve_forever, name="explorer", daemon=True)
    thread.start()
    return thread


def serve(explorer: Explorer | NodeExplorer, port: int = DEFAULT_PORT) -> None:
    """Serve until Ctrl-C (KeyboardInterrupt propagates after the server is closed)."""
    server = start_server(explorer, port)
    print(f"explorer: http://127.0.0.1:{server.server_port}/ ({explorer.label}); Ctrl-C stops")
    try:
        server.serve_forever()
    finally:
        explorer.watcher.stop()
        server.server_close()


def explorer_for(folder: Path, chain: str | None = None, *, live: bool = False) -> Explorer:
    """An :class:`Explorer` of ``folder`` (its saved chain, or the node at ``chain``);
    :class:`~gridledger.explorer.source.NotARunFolder` when it holds no run."""
    return Explorer(open_run(folder, live=live), ChainWatcher(folder, chain))


def explorer_for_node(url: str, market: str | None = None) -> NodeExplorer:
    """A :class:`NodeExplorer` of the node at ``url`` without a run folder: the Market at
    ``market`` (``0x`` address), else the newest on the node;
    :class:`~gridledger.errors.UsageError` when ``market`` is not an address."""
    address = None if market is None else parse_address(market)
    return NodeExplorer(NodeWatcher(url=url, market=address))
