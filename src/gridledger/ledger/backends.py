"""Chain backends behind one interface: embedded py-evm (default) and JSON-RPC.

- :class:`EmbeddedBackend`: eth-tester's ``PyEVMBackend`` in process, no server and
  no node.js. Transactions execute when sent (``chain.apply_transaction``), so a
  revert surfaces at once with its decoded custom error; :meth:`Backend.seal` mines
  them into one block (one block per market interval).
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
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.vm.spoof import SpoofTransaction
from eth_tester import PyEVMBackend

from gridledger.errors import ChainError, NodeUnreachable

__all__ = [
    "Backend",
    "CallReverted",
    "EmbeddedBackend",
    "LogEntry",
    "RpcBackend",
    "TxResult",
    "calldata_floor_gas",
    "open_backend",
]

log = logging.getLogger(__name__)

BLOCK_GAS_LIMIT = 30_000_000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event log: emitting address, topics, data, block number."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int


@dataclass(slots=True)
class TxResult:
    """Outcome of one transaction."""

    tx_hash: bytes
    status: bool
    gas_used: int
    logs: list[LogEntry] = field(default_factory=list)
    revert_data: bytes = b""


class Backend(ABC):
    """What the ledger needs from a chain."""

    chain_id: int
    #: True when :meth:`send` executes at once (results without mining).
    eager: bool
    #: Gas one block may hold (the sum of its transactions' gas limits stays below it).
    block_gas_limit: int = BLOCK_GAS_LIMIT

    @abstractmethod
    def fund(self, address: bytes, wei: int) -> None:
        """Give ``address`` ether for gas (genesis allocation or a dev-node call)."""

    @abstractmethod
    def nonce(self, address: bytes) -> int:
        """Next nonce of ``address`` including pending transactions."""

    @abstractmethod
    def send(self, raws: Sequence[bytes]) -> list[TxResult]:
        """Execute signed transactions in order (included in the chain on return)."""

    @abstractmethod
    def seal(self) -> None:
        """Close the current block (embedded: mine; rpc: nothing pending, no-op)."""

    @abstractmethod
    def call(self, sender: bytes, to: bytes, data: bytes) -> bytes:
        """``eth_call`` at the latest state; raises :class:`ChainError` on revert."""

    @abstractmethod
    def estimate_gas(self, sender: bytes, to: bytes | None, data: bytes) -> int:
        """``eth_estimateGas`` of a call (``to`` None: a deployment) at the pending state,
        after every transaction sent or staged so far; raises :class:`CallReverted` with
        the revert data when the call would revert."""

    def stage(self, raws: Sequence[bytes]) -> None:  # noqa: B027 - eager backends run at once
        """Hand signed transactions to the node's pool without mining them, so the next
        :meth:`estimate_gas` sees their effects (a JSON-RPC node; eager backends have run
        them already). :meth:`send` of the same transactions then only mines them."""

    @abstractmethod
    def logs(self, address: bytes, from_block: int = 0) -> list[LogEntry]:
        """All logs emitted by ``address`` from ``from_block`` on, in chain order."""

    @abstractmethod
    def block_number(self) -> int:
        """Number of the latest sealed block."""

    def new_block(self) -> None:
        """End the current block even when it is empty (embedded: seal it; a JSON-RPC node:
        mine an empty one), so a deadline counted in blocks passes."""
        self.seal()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (stop nothing that the backend did not start)."""


def calldata_floor_gas(data: bytes) -> int:
    """The least gas a transaction with calldata ``data`` is charged since Prague (EIP-7623:
    21,000 plus 10 per token, a zero byte one token and any other byte four): a transaction
    whose limit is below it is invalid, whatever its execution costs."""
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


class CallReverted(ChainError):
    """An ``eth_call`` reverted; ``data`` holds the revert data."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(message)
        self.data = data


# ---------------------------------------------------------------- embedded
class EmbeddedBackend(Backend):
    """py-evm in process through eth-tester's ``PyEVMBackend``."""

    eager = True

    def __init__(
        self,
        funded: Sequence[bytes] = (),
        wei_each: int = 10**24,
        *,
        block_gas_limit: int = BLOCK_GAS_LIMIT,
    ) -> None:
        self.block_gas_limit = block_gas_limit
        state = {
            address: {"balance": wei_each, "storage": {}, "code": b"", "nonce": 0}
            for address in funded
        }
        params = PyEVMBackend.generate_genesis_params(
            overrides={"gas_limit": block_gas_limit, "timestamp": 1_700_000_000}
        )
        self._backend = PyEVMBackend(genesis_parameters=params, genesis_state=state or None)
        self.chain = self._backend.chain
        self.chain_id = int(self.chain.chain_id)
        self._vm: Any = None
        self._header: Any = None
        self._txs: list[Any] = []
        self._receipts: list[Any] = []
        self._cumulative_gas = 0

    def fund(self, address: bytes, wei: int) -> None:
        balance = self._state_vm().state.get_balance(address)
        if balance < wei:
            message = (
                f"embedded chain: account 0x{address.hex()} has {balance} wei; "
                "fund it at genesis (EmbeddedBackend(funded=...))"
            )
            raise ChainError(message)

    def _state_vm(self) -> Any:
        """The VM holding unsealed transactions, else a fresh one at the pending header."""
        return self._vm if self._vm is not None else self.chain.get_vm()

    def nonce(self, address: bytes) -> int:
        return int(self._state_vm().state.get_nonce(address))

    def send(self, raws: Sequence[bytes]) -> list[TxResult]:
        # Faster than chain.apply_transaction, which rebuilds the block's transaction and
        # receipt tries and the state root after every transaction: here that happens once,
        # in seal().
        out = []
        for raw in raws:
            if self._vm is None:
                self._vm = self.chain.get_vm(self.chain.header)
                self._header = self.chain.header
            vm = self._vm
            try:
                tx = vm.get_transaction_builder().decode(raw)
                receipt, computation = vm.apply_transaction(self._header, tx)
            except Exception as error:  # py-evm validation errors have no common base
                message = f"embedded chain rejected a transaction: {error}"
                raise ChainError(message) from error
            self._header = vm.add_receipt_to_header(self._header, receipt)
            self._txs.append(tx)
            self._receipts.append(receipt)
            cumulative = int(receipt.gas_used)  # py-evm receipts carry the block's cumulative gas
            gas_used = cumulative - self._cumulative_gas
            self._cumulative_gas = cumulative
            number = int(self._header.block_number)
            logs = [
                LogEntry(
                    address=bytes(entry.address),
                    topics=tuple(t.to_bytes(32, "big") for t in entry.topics),
                    data=bytes(entry.data),
                    block_number=number,
                )
                for entry in receipt.logs
            ]
            out.append(
                TxResult(
                    tx_hash=bytes(tx.hash),
                    status=not computation.is_error,
                    gas_used=gas_used,
                    logs=logs,
                    revert_data=bytes(computation.output or b"") if computation.is_error else b"",
                )
            )
        return out

    def seal(self) -> None:
        vm = self._vm
        if vm is not None:
            vm.state.persist()
            header = self._header.copy(state_root=vm.state.state_root)
            block = vm.set_block_transactions_and_withdrawals(
                vm.get_block(), header, self._txs, self._receipts
            )
            self.chain.header = block.header
        self._backend.mine_blocks(1)
        self._vm = None
        self._header = None
        self._txs = []
        self._receipts = []
        self._cumulative_gas = 0

    def call(self, sender: bytes, to: bytes, data: bytes) -> bytes:
        vm = self._state_vm()
        state = vm.state
        unsigned = vm.create_unsigned_transaction(
            nonce=state.get_nonce(sender),
            gas_price=vm.get_header().base_fee_per_gas or 0,
            gas=self.block_gas_limit // 2,
            to=to,
            value=0,
            data=data,
        )
        spoof = SpoofTransaction(unsigned, from_=sender)
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(spoof)
        finally:
            state.revert(snapshot)
        if computation.is_error:
            output = bytes(computation.output or b"")
            raise CallReverted(f"call to 0x{to.hex()} reverted", output)
        return bytes(computation.output)

    def estimate_gas(self, sender: bytes, to: bytes | None, data: bytes) -> int:
        # One run at the block's gas limit on a snapshot of the pending state; the gas it
        # consumes before the refund is what the transaction needs (the caller adds the
        # margin that covers the 63/64 rule of nested calls).
        vm = self._state_vm()
        state = vm.state
        unsigned = vm.create_unsigned_transaction(
            nonce=state.get_nonce(sender),
            gas_price=vm.get_header().base_fee_per_gas or 0,
            gas=self.block_gas_limit,
            to=to or b"",
            value=0,
            data=data,
        )
        spoof = SpoofTransaction(unsigned, from_=sender)
        state.lock_changes()  # as a real transaction starts: storage's original values
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(spoof)
        finally:
            state.revert(snapshot)
        if computation.is_error:
            output = bytes(computation.output or b"")
            raise CallReverted(f"estimate of a call to 0x{(to or b'').hex()} reverted", output)
        executed = self.block_gas_limit - int(computation.get_gas_remaining())
        return max(executed, calldata_floor_gas(data))

    def logs(self, address: bytes, from_block: int = 0) -> list[LogEntry]:
        chaindb = self.chain.chaindb
        head = int(self.chain.get_canonical_head().block_number)
        out = []
        for number in range(from_block, head + 1):
            block = self.chain.get_canonical_block_by_number(number)
            for receipt in block.get_receipts(chaindb):
                for entry in receipt.logs:
                    if bytes(entry.address) == address:
                        out.append(
                            LogEntry(
                                address=address,
                                topics=tuple(t.to_bytes(32, "big") for t in entry.topics),
                                data=bytes(entry.data),
                                block_number=number,
                            )
                        )
        return out

    def block_number(self) -> int:
        return int(self.chain.get_canonical_head().block_number)


# --------------------------------------------------------------------- rpc
def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


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
            logs = [
                LogEntry(
                    address=_unhex(e["address"]),
                    topics=tuple(_unhex(t) for t in e["topics"]),
                    data=_unhex(e["data"]),
                    block_number=int(e["blockNumber"], 16),
                )
                for e in receipt["logs"]
            ]
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

    def estimate_gas(self, sender: bytes, to: bytes | None, data: bytes) -> int:
        call: dict[str, str] = {"from": _hex(sender), "data": _hex(data)}
        if to is not None:
            call["to"] = _hex(to)
        answer = self._post(
            {
                "jsonrpc": "2.0",
                "id": next(self._ids),
                "method": "eth_estimateGas",
                "params": [call, "pending"],
            }
        )
        if "error" in answer:
            err = answer["error"]
            raw = err.get("data") if isinstance(err, dict) else None
            data_out = _unhex(raw) if isinstance(raw, str) and raw.startswith("0x") else b""
            where = f"0x{to.hex()}" if to is not None else "a deployment"
            raise CallReverted(f"eth_estimateGas of a call to {where} failed: {err}", data_out)
        return int(answer["result"], 16)

    def logs(self, address: bytes, from_block: int = 0) -> list[LogEntry]:
        entries = self._rpc(
            "eth_getLogs",
            [{"address": _hex(address), "fromBlock": hex(from_block), "toBlock": "latest"}],
        )
        return [
            LogEntry(
                address=_unhex(e["address"]),
                topics=tuple(_unhex(t) for t in e["topics"]),
                data=_unhex(e["data"]),
                block_number=int(e["blockNumber"], 16),
            )
            for e in entries
        ]

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
