"""A JSON-RPC node without a run folder: find its Markets and follow one, read only.

``gridledger serve --chain URL`` (no ``RUN_DIR``) knows nothing but the node. It finds the
Markets there from their events alone: :func:`find_markets` scans ``eth_getLogs`` from
block 0 for the Market contract's event topics (any address) and compares each emitter's
code with the shipped artifact (``gridledger/ledger/artifacts/Market.json``; the
immutables are zero there and differ on chain, every other byte must match), and the code
and parameters of the desk it forwards to (:func:`desk_matches`). The newest Market is
followed unless ``--market 0xADDRESS`` names one.

:class:`NodeReader` is a read-only :class:`~gridledger.ledger.backends.Backend`: unlike
:class:`~gridledger.ledger.RpcBackend` it never switches the node's automine off, never
funds nor sends. :class:`MarketReader` is a :class:`~gridledger.ledger.reader.ChainReader`
of one Market found that way (``gridledger audit`` runs on it); :class:`NodeWatcher`
follows the node as intervals settle, with the explorer's backoff on an unreachable node.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from eth_utils import keccak

from gridledger.errors import ChainError, NodeUnreachable, UsageError
from gridledger.explorer.chain import ChainSnapshot, Follower
from gridledger.ledger.backends import Backend, LogEntry, TxResult, parse_log_entry
from gridledger.ledger.contracts import DecodedEvent, artifact
from gridledger.ledger.reader import ChainReader
from gridledger.ledger.reference import merge_settlement_pages
from gridledger.market.settlement import Tariffs

__all__ = [
    "MarketOnChain",
    "MarketParams",
    "MarketReader",
    "NodeReader",
    "NodeView",
    "NodeWatcher",
    "code_matches",
    "desk_matches",
    "find_markets",
    "market_params",
    "market_topics",
    "parse_address",
    "shipped_code",
]

log = logging.getLogger(__name__)

RULES = {0: "uniform", 1: "greedy", 2: "optimal"}
"""The Market's ``clearingRule`` codes (ledger/deploy.py ``CLEARING_RULE_IDS``)."""


def parse_address(text: str) -> bytes:
    """``0x`` and 40 hex digits as 20 bytes; :class:`UsageError` otherwise."""
    digits = text[2:] if text.lower().startswith("0x") else ""
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        message = f"--market {text!r}: not a contract address (0x and 40 hex digits)"
        raise UsageError(message)
    return raw


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


class NodeReader(Backend):
    """Read-only JSON-RPC access (``eth_call``, ``eth_getLogs``, ``eth_getCode``); a node
    that does not answer is a :class:`NodeUnreachable`."""

    eager = False

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self.chain_id = int(self._rpc("eth_chainId", []), 16)

    def _answer(self, method: str, params: list[Any]) -> dict[str, Any]:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        request = urllib.request.Request(
            self.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            message = f"{self.url}: the JSON-RPC node did not answer ({reason})"
            raise NodeUnreachable(message) from error
        try:
            answer = json.loads(data)
        except json.JSONDecodeError as error:
            message = f"{self.url}: the JSON-RPC node gave an invalid answer ({error})"
            raise ChainError(message) from error
        if not isinstance(answer, dict):
            message = f"{self.url}: {method}: unexpected answer {str(answer)[:80]}"
            raise ChainError(message)
        return answer

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = self._answer(method, params)
        if "error" in answer:
            message = f"{self.url}: {method} failed: {answer['error']}"
            raise ChainError(message)
        return answer["result"]

    def _read_only(self, what: str) -> ChainError:
        return ChainError(f"{self.url}: the explorer only reads the node (no {what})")

    def fund(self, address: bytes, wei: int) -> None:
        raise self._read_only("funding")

    def nonce(self, address: bytes) -> int:
        raise self._read_only("nonces")

    def send(self, raws: Sequence[bytes]) -> list[TxResult]:
        raise self._read_only("transactions")

    def estimate_gas(
        self, sender: bytes, to: bytes | None, data: bytes, *, exact: bool = False
    ) -> int:
        raise self._read_only("gas estimates")

    def seal(self) -> None:
        return None

    def new_block(self) -> None:
        raise self._read_only("mining")

    def call(self, sender: bytes, to: bytes, data: bytes) -> bytes:
        params = [{"from": _hex(sender), "to": _hex(to), "data": _hex(data)}, "latest"]
        answer = self._answer("eth_call", params)
        if "error" in answer:
            message = f"{self.url}: call to {_hex(to)} reverted: {answer['error']}"
            raise ChainError(message)
        return _unhex(answer["result"])

    def code(self, address: bytes) -> bytes:
        """The contract code at ``address`` (empty: no contract)."""
        return _unhex(self._rpc("eth_getCode", [_hex(address), "latest"]))

    def block_number(self) -> int:
        return int(self._rpc("eth_blockNumber", []), 16)

    def find_logs(self, query: dict[str, Any]) -> list[LogEntry]:
        """``eth_getLogs`` with ``query`` (address, topics, fromBlock, toBlock)."""
        return [parse_log_entry(e) for e in self._rpc("eth_getLogs", [query])]

    def logs(self, address: bytes, from_block: int = 0) -> list[LogEntry]:
        query = {"address": _hex(address), "fromBlock": hex(from_block), "toBlock": "latest"}
        return self.find_logs(query)


def _type_of(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_type_of(c) for c in param["components"]) + ")" + kind[5:]
    return kind


@cache
def _artifact_json(name: str) -> dict[str, Any]:
    path = resources.files("gridledger.ledger").joinpath("artifacts", f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _market_json() -> dict[str, Any]:
    return _artifact_json("Market")


_PLACEHOLDER = re.compile(r"__\$[0-9a-f]{34}\$__")


def market_topics() -> list[bytes]:
    """``topic0`` of every event of the shipped Market artifact."""
    return [
        keccak(f"{e['name']}({','.join(_type_of(p) for p in e['inputs'])})".encode())
        for e in _market_json()["abi"]
        if e["type"] == "event"
    ]


def shipped_code() -> bytes:
    """The shipped Market's runtime code (its immutables zero, and the address of the
    linked EntryChecker library, a placeholder in the artifact, zero too)."""
    return _unhex(_PLACEHOLDER.sub("0" * 40, _market_json()["deployedBytecode"]))


def _library_offsets() -> list[int]:
    """Byte offsets of the library's address in the Market's runtime code."""
    code = _market_json()["deployedBytecode"][2:]
    return [m.start() // 2 for m in _PLACEHOLDER.finditer(code)]


def _same(shipped: bytes, code: bytes) -> bool:
    """``code`` equals ``shipped`` where ``shipped`` is not zero."""
    return len(code) == len(shipped) and all(
        s == 0 or s == c for s, c in zip(shipped, code, strict=True)
    )


def code_matches(code: bytes, code_at: Callable[[bytes], bytes] | None = None) -> bool:
    """True when ``code`` is the shipped Market's runtime code (the immutables and the
    library's address, zero in the artifact, may differ) and, given ``code_at`` (address ->
    code), the library it is linked to is the shipped EntryChecker (whose own address, zero
    in the artifact, may differ)."""
    if not _same(shipped_code(), code):
        return False
    if code_at is None:
        return True
    library = _unhex(_artifact_json("EntryChecker")["deployedBytecode"])
    return all(_same(library, code_at(code[k : k + 20])) for k in _library_offsets())


#: The Market's deployment parameters (its immutables), which its desk must share.
_PARAMETERS = (
    "operator",
    "dso",
    "grid",
    "token",
    "feeVerifier",
    "uniformClearing",
    "calculator",
    "curtailmentVerifier",
    "rounds",
    "clearingRule",
    "toleranceBp",
    "retailPerKwhMicro",
    "feedInPerKwhMicro",
    "roundBlocks",
    "readingBlocks",
    "settleBlocks",
)


def desk_matches(
    market: bytes,
    code_at: Callable[[bytes], bytes],
    call_at: Callable[[bytes, bytes], bytes],
) -> bool:
    """True when the desk the Market at ``market`` forwards to (``desk()``, reached by
    DELEGATECALL, so it acts on the Market's storage) runs the shipped MarketDesk code,
    linked to the shipped EntryChecker, with the Market's own parameters (each getter
    answers the same at both addresses): a Market whose code is the shipped one could
    otherwise have been deployed with a desk of someone else's choosing."""
    abi = artifact("Market")
    try:
        (desk_hex,) = abi.decode_output("desk", call_at(market, abi.encode_call("desk")))
        desk = _unhex(desk_hex)
        shipped = _artifact_json("MarketDesk")["deployedBytecode"]
        code = code_at(desk)
        if not _same(_unhex(_PLACEHOLDER.sub("0" * 40, shipped)), code):
            return False
        library = _unhex(_artifact_json("EntryChecker")["deployedBytecode"])
        offsets = [m.start() // 2 for m in _PLACEHOLDER.finditer(shipped[2:])]
        if not all(_same(library, code_at(code[k : k + 20])) for k in offsets):
            return False
        for name in _PARAMETERS:
            data = abi.encode_call(name)
            if call_at(market, data) != call_at(desk, data):
                return False
    except ChainError:
        return False
    return True


@dataclass(frozen=True)
class MarketOnChain:
    """A contract that emitted Market events: where, since when, how many, and whether its
    code is the shipped Market's."""

    address: bytes
    first_block: int
    events: int
    code_matches: bool

    @property
    def hex(self) -> str:
        return _hex(self.address)


def find_markets(
    reader: NodeReader, from_block: int = 0, to_block: int | None = None
) -> list[MarketOnChain]:
    """The emitters of Market events in ``from_block..to_block`` (default: the head),
    oldest first, with their code compared to the shipped artifact."""
    head = reader.block_number() if to_block is None else to_block
    query = {
        "fromBlock": hex(from_block),
        "toBlock": hex(head),
        "topics": [[_hex(t) for t in market_topics()]],
    }
    seen: dict[bytes, list[int]] = {}
    for entry in reader.find_logs(query):
        first_count = seen.setdefault(entry.address, [entry.block_number, 0])
        first_count[1] += 1

    def ours(address: bytes) -> bool:
        if not code_matches(reader.code(address), reader.code):
            return False
        return desk_matches(address, reader.code, lambda to, data: reader.call(bytes(20), to, data))

    return [
        MarketOnChain(address, first, count, ours(address))
        for address, (first, count) in sorted(seen.items(), key=lambda kv: kv[1][0])
    ]


class MarketReader(ChainReader):
    """A :class:`ChainReader` of the Market at ``address`` found on the node (no run folder,
    no deployment record); its events are read incrementally."""

    def __init__(self, backend: NodeReader, address: bytes) -> None:
        super().__init__(backend, bytes(20))
        self.node = backend
        self.address = address
        self._events: list[DecodedEvent] = []
        self._next_block = 0

    @property
    def market(self) -> bytes | None:
        return self.address

    def is_set_up(self) -> bool:
        return True

    def view(self, function: str, *args: Any) -> tuple[Any, ...]:
        data = self.market_abi.encode_call(function, *args)
        return self.market_abi.decode_output(
            function, self.node.call(bytes(20), self.address, data)
        )

    def events(self) -> list[DecodedEvent]:
        """Every event of the Market so far (new blocks read since the last call)."""
        head = self.node.block_number()
        if head >= self._next_block:
            query = {
                "address": _hex(self.address),
                "fromBlock": hex(self._next_block),
                "toBlock": hex(head),
            }
            self._events += self.market_abi.decode_logs(self.node.find_logs(query), self.address)
            self._next_block = head + 1
        return merge_settlement_pages(self._events)


@dataclass(frozen=True)
class MarketParams:
    """The Market's settings, read from its view functions."""

    rule: str
    rounds: int
    tariffs: Tariffs
    token: str
    dso: str

    @property
    def retail_per_kwh(self) -> float:
        return self.tariffs.retail_per_kwh_micro / 1e6

    @property
    def feed_in_per_kwh(self) -> float:
        return self.tariffs.feed_in_per_kwh_micro / 1e6


def market_params(market: MarketReader) -> MarketParams:
    """Clearing rule, rounds, tariffs and tolerance, token and DSO of ``market``."""
    view = market.view
    rule = int(view("clearingRule")[0])
    tariffs = Tariffs(
        int(view("retailPerKwhMicro")[0]),
        int(view("feedInPerKwhMicro")[0]),
        int(view("toleranceBp")[0]),
    )
    return MarketParams(
        RULES.get(rule, f"rule {rule}"),
        int(view("rounds")[0]),
        tariffs,
        str(view("token")[0]),
        str(view("dso")[0]),
    )


@dataclass(frozen=True)
class NodeView:
    """What the node watcher knows besides the events: the Markets found, the one
    followed and its settings."""

    markets: tuple[MarketOnChain, ...] = ()
    market: MarketOnChain | None = None
    params: MarketParams | None = None
    head: int = 0


@dataclass
class NodeWatcher(Follower):
    """Follows the node at ``url``: finds its Markets, picks ``market`` (default: the
    newest whose code is the shipped Market's) and reads its events as they come."""

    url: str
    market: bytes | None = None
    view: NodeView = field(default_factory=NodeView)
    _reader: NodeReader | None = None
    _followed: MarketReader | None = None
    _scanned: int = 0
    _found: dict[bytes, MarketOnChain] = field(default_factory=dict)

    @property
    def node(self) -> str | None:
        return self.url

    def _reset(self) -> None:
        self._reader = None
        self._followed = None

    def _scan(self, reader: NodeReader) -> int:
        head = reader.block_number()
        if head + 1 < self._scanned:  # a dev node restarted or reverted: read it anew
            log.warning("node %s went back to block %d: reading it anew", self.url, head)
            self._found, self._scanned, self._followed = {}, 0, None
        if head >= self._scanned:
            for found in find_markets(reader, self._scanned, head):
                old = self._found.get(found.address)
                if old is None:
                    self._found[found.address] = found
                    note = "" if found.code_matches else " (its code is not the shipped Market's)"
                    log.warning(
                        "node %s: Market events from %s since block %d%s",
                        self.url,
                        found.hex,
                        found.first_block,
                        note,
                    )
                else:
                    self._found[found.address] = MarketOnChain(
                        old.address, old.first_block, old.events + found.events, old.code_matches
                    )
            self._scanned = head + 1
        return head

    def _choose(self) -> MarketOnChain | None:
        if self.market is not None:
            return self._found.get(self.market)
        matching = [m for m in self._found.values() if m.code_matches]
        return max(matching, key=lambda m: m.first_block, default=None)

    def _poll(self) -> None:
        if self._reader is None:
            self._reader = NodeReader(self.url, timeout_s=5.0)
            log.warning("connected to %s", self.url)
        head = self._scan(self._reader)
        chosen = self._choose()
        markets = tuple(sorted(self._found.values(), key=lambda m: m.first_block))
        if chosen is None:
            wanted = "" if self.market is None else f" at {_hex(self.market)}"
            status = f"node {self.url}: no gridledger Market{wanted} (blocks 0..{head} scanned)"
            self.view = NodeView(markets, None, None, head)
            self._snapshot = ChainSnapshot(status, (), time.time())
            return
        if self._followed is None or self._followed.address != chosen.address:
            self._followed = MarketReader(self._reader, chosen.address)
            params = market_params(self._followed)
            if len(markets) > 1:
                others = ", ".join(m.hex for m in markets if m is not chosen)
                log.warning(
                    "node %s: following Market %s; others: %s (choose with --market)",
                    self.url,
                    chosen.hex,
                    others,
                )
        else:
            params = self.view.params or market_params(self._followed)
        events = tuple(self._followed.events())
        settled = sum(1 for e in events if e.name == "IntervalSettled")
        self.view = NodeView(markets, chosen, params, head)
        self._snapshot = ChainSnapshot(
            f"node {self.url}, Market {chosen.hex}: {settled} intervals settled, "
            f"{len(events)} events",
            events,
            time.time(),
        )
