"""A JSON-RPC proxy in front of anvil for tests that make the node fail or the run die
at a chosen request (tests/sim/test_rpc_faults.py, tests/sim/test_paged_settlement.py)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rlp
from eth_utils import keccak

from gridledger.ledger.contracts import artifact

__all__ = ["Fault", "Proxy", "function_names", "rpc"]


def function_names() -> dict[bytes, str]:
    """Selector -> name of every Market function."""

    def kind(param: dict[str, Any]) -> str:
        t = str(param["type"])
        if t.startswith("tuple"):
            return "(" + ",".join(kind(c) for c in param["components"]) + ")" + t[5:]
        return t

    out = {}
    for entry in artifact("Market").abi:
        if entry.get("type") == "function":
            signature = f"{entry['name']}({','.join(kind(i) for i in entry['inputs'])})"
            out[keccak(text=signature)[:4]] = str(entry["name"])
    return out


def rpc(url: str, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["result"]


Fault = Callable[[], str]  # at the chosen request; returns "forward", "drop", "502" or "dead"


class Proxy:
    """Forward JSON-RPC to ``upstream``; at the ``n``-th request with ``method``, ``fault``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.counts: dict[str, int] = {}
        self.faults: dict[tuple[str, int], Fault] = {}
        # each eth_sendRawTransaction batch: the evm_mine that mines it, its functions
        self.batches: list[tuple[int, list[str]]] = []
        self.dead = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                action = proxy.action(body)
                if action in ("dead", "drop") or proxy.dead:
                    if action == "drop":
                        proxy.forward(body)  # delivered; the answer is lost
                    self.close_connection = True
                    return
                if action == "502":
                    proxy.forward(body)  # delivered; a gateway error comes back
                    self.send_error(502, "Bad Gateway")
                    return
                answer = proxy.forward(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def action(self, body: bytes) -> str:
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        raws = [c["params"][0] for c in calls if c["method"] == "eth_sendRawTransaction"]
        if raws:
            names = function_names()
            data = [rlp.decode(bytes.fromhex(raw[4:]))[7] for raw in raws]  # type-2 tx: data
            mine = self.counts.get("evm_mine", 0) + 1
            self.batches.append((mine, [names.get(bytes(d[:4]), "?") for d in data]))
        for method in {c["method"] for c in calls}:
            self.counts[method] = self.counts.get(method, 0) + 1
            fault = self.faults.pop((method, self.counts[method]), None)
            if fault is not None:
                return fault()
        return "forward"

    def forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
