"""Chain backends behind one interface (:mod:`~gridledger.ledger.chainapi`): embedded
py-evm (default) and JSON-RPC; ``open_backend`` picks one.

- :class:`EmbeddedBackend` (:mod:`~gridledger.ledger.embedded`): eth-tester's
  ``PyEVMBackend`` in process, no server and no node.js. Transactions execute when
  sent, so a revert surfaces at once with its decoded custom error; :meth:`Backend.seal`
  mines them into one block.
- :class:`RpcBackend`: any JSON-RPC node (anvil, geth, besu). Transactions are
  queued, sent in one JSON-RPC batch, mined with one ``evm_mine`` (automine is
  switched off where the node allows it) and their receipts fetched in one batch;
  no receipt polling.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from gridledger.errors import ChainError, NodeUnreachable
from gridledger.ledger.chainapi import (
    BLOCK_GAS_LIMIT,
    Backend,
    CallReverted,
    LogEntry,
    OutOfBlockGas,
    TxResult,
    calldata_floor_gas,
    nested_out_of_gas,
)
from gridledger.ledger.embedded import EmbeddedBackend

__all__ = [
    "BLOCK_GAS_LIMIT",
    "Backend",
    "CallReverted",
    "EmbeddedBackend",
    "LogEntry",
    "RpcBackend",
    "TxResult",
    "calldata_floor_gas",
    "open_backend",
    "parse_log_entry",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------- rpc
def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def parse_log_entry(answer: dict[str, Any]) -> LogEntry:
    """One log of a JSON-RPC answer (an ``eth_getLogs`` entry or a receipt's log) as a
    :class:`LogEntry`."""
    return LogEntry(
        address=_unhex(answer["address"]),
        topics=tuple(_unhex(t) for t in answer["topics"]),
        data=_unhex(answer["data"]),
        block_number=int(answer["blockNumber"], 16),
    )


class RpcBackend(Backend):
    """A JSON-RPC node. On anvil: automine off, one batch and one ``evm_mine`` per send."""

    eager = False

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        #: What the ledger adds to a :class:`NodeUnreachable` message (its saved progress).
        self.context: Callable[[], str] | None = None
        self.chain_id = int(self._rpc("eth_chainId", []), 16)
        self.is_anvil = False
        self._staged: dict[bytes, str] = {}  # raw -> hash: in the pool, not mined yet
        latest = self._rpc("eth_getBlockByNumber", ["latest", False])
        self.block_gas_limit = int(latest["gasLimit"], 16)
        try:
            self._rpc("anvil_setAutomine", [False])
            self.is_anvil = True
        except ChainError:
            try:
                self._rpc("evm_setAutomine", [False])
            except ChainError:
                log.info("%s: node has no automine switch; mining with evm_mine", url)

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            http_error = isinstance(error, urllib.error.HTTPError)
            reason = error if http_error else getattr(error, "reason", None) or error
            message = f"{self.url}: the JSON-RPC node did not answer ({reason})"
            note = self.context() if self.context is not None else ""
            raise NodeUnreachable(message + (f"; {note}" if note else "")) from error
        try:
            return json.loads(data)
        except json.JSONDecodeError as error:
            message = f"{self.url}: the JSON-RPC node gave an invalid answer ({error})"
            raise ChainError(message) from error

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        if "error" in answer:
            message = f"{self.url}: {method} failed: {answer['error']}"
            raise ChainError(message)
        return answer["result"]

    def _batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        answers = self._post(payload)
        by_id = {a.get("id"): a for a in answers}
        out = []
        for i, (method, _params) in zip(ids, calls, strict=True):
            answer = by_id.get(i)
            if answer is None or "error" in answer:
                detail = None if answer is None else answer["error"]
                message = f"{self.url}: batched {method} failed: {detail}"
                raise ChainError(message)
            out.append(answer["result"])
        return out

    def fund(self, address: bytes, wei: int) -> None:
        balance = int(self._rpc("eth_getBalance", [_hex(address), "latest"]), 16)
        if balance >= wei:
            return
        try:
            self._rpc("anvil_setBalance", [_hex(address), hex(wei)])
            return
        except ChainError:
            pass
        accounts = self._rpc("eth_accounts", [])
        if not accounts:
            message = f"{self.url}: cannot fund 0x{address.hex()} (no anvil_setBalance, no unlocked account)"
            raise ChainError(message)
        self._rpc(
            "eth_sendTransaction",
            [{"from": accounts[0], "to": _hex(address), "value": hex(wei - balance)}],
        )
        self._rpc("evm_mine", [])

    def nonce(self, address: bytes) -> int:
        return int(self._rpc("eth_getTransactionCount", [_hex(address), "pending"]), 16)

    def stage(self, raws: Sequence[bytes]) -> None:
        fresh = [r for r in raws if r not in self._staged]
        hashes = self._batch([("eth_sendRawTransaction", [_hex(r)]) for r in fresh])
        self._staged.update(zip(fresh, hashes, strict=True))

    def send(self, raws: Sequence[bytes]) -> list[TxResult]:
        if not raws:
            return []
        self.stage(raws)
        hashes = [self._staged.pop(r) for r in raws]
        self.mine()
        out = []
        for h, res in zip(hashes, self.receipts([_unhex(h) for h in hashes]), strict=True):
            if res is None:
                message = f"{self.url}: transaction {h} not mined by evm_mine (block full?)"
                raise ChainError(message)
            out.append(res)
        return out

    def mine(self) -> None:
        """Mine one block of the pending transactions (``evm_mine``)."""
        self._rpc("evm_mine", [])

    def receipts(self, hashes: Sequence[bytes]) -> list[TxResult | None]:
        """The mined outcome of each transaction hash, None where the node has no receipt."""
        answers = self._batch([("eth_getTransactionReceipt", [_hex(h)]) for h in hashes])
        out: list[TxResult | None] = []
        for h, receipt in zip(hashes, answers, strict=True):
            if receipt is None:
                out.append(None)
                continue
            logs = [parse_log_entry(e) for e in receipt["logs"]]
            out.append(
                TxResult(
                    tx_hash=h,
                    status=int(receipt["status"], 16) == 1,
                    gas_used=int(receipt["gasUsed"], 16),
                    logs=logs,
                )
            )
        return out

    def transaction_count(self, address: bytes, tag: str) -> int:
        """Nonce of ``address`` at block ``tag`` (``"latest"``: mined, ``"pending"``: with
        the transactions waiting in the node's pool)."""
        return int(self._rpc("eth_getTransactionCount", [_hex(address), tag]), 16)

    def code(self, address: bytes) -> bytes:
        """The contract code at ``address`` (empty: no contract)."""
        return _unhex(self._rpc("eth_getCode", [_hex(address), "latest"]))

    def seal(self) -> None:
        return None

    def new_block(self) -> None:
        self.mine()

    def call(self, sender: bytes, to: bytes, data: bytes) -> bytes:
        answer = self._post(
            {
                "jsonrpc": "2.0",
                "id": next(self._ids),
                "method": "eth_call",
                "params": [{"from": _hex(sender), "to": _hex(to), "data": _hex(data)}, "latest"],
            }
        )
        if "error" in answer:
            err = answer["error"]
            raw = err.get("data") if isinstance(err, dict) else None
            data_out = _unhex(raw) if isinstance(raw, str) and raw.startswith("0x") else b""
            raise CallReverted(f"call to 0x{to.hex()} reverted: {err}", data_out)
        return _unhex(answer["result"])

    def estimate_gas(
        self, sender: bytes, to: bytes | None, data: bytes, *, exact: bool = False
    ) -> int:
        # Fast: the gas the node measures in one run (EIP-2930 eth_createAccessList, two
        # EVM runs), which TxQueue confirms at the limit it chooses (confirm_limit); exact:
        # eth_estimateGas (anvil's binary search runs the call about 30 times).
        call = self._call_object(sender, to, data)
        where = f"0x{to.hex()}" if to is not None else "a deployment"
        if not exact:
            answer = self._post(self._request("eth_createAccessList", [call, "pending"]))
            result = answer.get("result")
            if isinstance(result, dict) and "gasUsed" in result and not result.get("error"):
                return max(int(result["gasUsed"], 16), calldata_floor_gas(data))
        answer = self._post(self._request("eth_estimateGas", [call, "pending"]))
        if "error" in answer:
            err = answer["error"]
            raw = err.get("data") if isinstance(err, dict) else None
            data_out = _unhex(raw) if isinstance(raw, str) and raw.startswith("0x") else b""
            text = str(err.get("message", "")) if isinstance(err, dict) else str(err)
            if not data_out and (
                "out of gas" in text or "gas required exceeds" in text or self._ran_out(call)
            ):
                message = f"eth_estimateGas of a call to {where}: {text}"
                raise OutOfBlockGas(message)
            raise CallReverted(f"eth_estimateGas of a call to {where} failed: {err}", data_out)
        return int(answer["result"], 16)

    def _ran_out(self, call: dict[str, str]) -> bool:
        """Whether ``call``, which reverts without data, runs out of gas in a nested call
        when given the most one transaction may carry (the node's call trace; False when
        the node has no ``debug_traceCall``)."""
        request = [{**call, "gas": hex(self.max_tx_gas())}, "pending", {"tracer": "callTracer"}]
        trace = self._post(self._request("debug_traceCall", request)).get("result")
        if not isinstance(trace, dict) or "gasUsed" not in trace or "gas" not in trace:
            return False
        return nested_out_of_gas(int(trace["gasUsed"], 16), int(trace["gas"], 16))

    def estimate_probed(
        self, sender: bytes, to: bytes | None, data: bytes, probe: int
    ) -> tuple[int, bool]:
        # eth_createAccessList given gas ``probe``: its first run is the call as sent, with
        # that gas (an error if it runs out), its gasUsed the same as without a gas field;
        # so one request answers both the estimate and confirm_limit(probe). A call that
        # needs more gas (or reverts) is estimated again without the probe.
        call = self._call_object(sender, to, data)
        call["gas"] = hex(probe)
        answer = self._post(self._request("eth_createAccessList", [call, "pending"]))
        result = answer.get("result")
        if isinstance(result, dict) and "gasUsed" in result and not result.get("error"):
            return max(int(result["gasUsed"], 16), calldata_floor_gas(data)), True
        return self.estimate_gas(sender, to, data), False

    def confirm_limit(self, sender: bytes, to: bytes | None, data: bytes, limit: int) -> bool:
        call = self._call_object(sender, to, data)
        call["gas"] = hex(limit)
        answer = self._post(self._request("eth_call", [call, "pending"]))
        return "error" not in answer

    def _request(self, method: str, params: list[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    @staticmethod
    def _call_object(sender: bytes, to: bytes | None, data: bytes) -> dict[str, str]:
        call = {"from": _hex(sender), "data": _hex(data)}
        if to is not None:
            call["to"] = _hex(to)
        return call

    def logs(self, address: bytes, from_block: int = 0) -> list[LogEntry]:
        entries = self._rpc(
            "eth_getLogs",
            [{"address": _hex(address), "fromBlock": hex(from_block), "toBlock": "latest"}],
        )
        return [parse_log_entry(e) for e in entries]

    def block_number(self) -> int:
        return int(self._rpc("eth_blockNumber", []), 16)


def open_backend(chain: str, operator: bytes, wei: int = 10**24, *, fund: bool = True) -> Backend:
    """The backend of ``chain`` (``"embedded"`` or an ``http(s)://`` JSON-RPC URL) with
    ``wei`` for the ``operator``'s gas (embedded: at genesis; a node: only with ``fund``,
    never for a reader)."""
    if chain == "embedded":
        return EmbeddedBackend(funded=[operator], wei_each=wei)
    if chain.startswith(("http://", "https://")):
        backend = RpcBackend(chain)
        if fund:
            backend.fund(operator, wei)
        return backend
    message = f"chain {chain!r}: use 'embedded' or an http(s):// JSON-RPC URL"
    raise ChainError(message)
