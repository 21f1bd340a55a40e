"""The embedded chain: eth-tester's ``PyEVMBackend`` in process, no server and no node.js.

Transactions execute when sent, so a revert surfaces at once with its decoded custom
error; :meth:`EmbeddedBackend.seal` mines them into one block. A transaction sent right
after the estimate of the same call is not executed twice: the estimate's run, made on
a snapshot of the pending state, is kept as the transaction's (see
:meth:`EmbeddedBackend.send`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth.exceptions import OutOfGas
from eth.vm.spoof import SpoofTransaction
from eth_tester import PyEVMBackend

from gridledger.errors import ChainError
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

__all__ = ["EmbeddedBackend"]

_SUCCESS = b"\x01"  # EIP-658 status of a receipt


@dataclass(frozen=True, slots=True)
class _Speculation:
    """An estimate's run kept on the pending state until the transaction it was for."""

    sender: bytes
    to: bytes
    data: bytes
    nonce: int
    gas: int  # what the run consumed (the least gas limit that reproduces it)
    gas_price: int
    snapshot: Any
    computation: Any
    spoof: Any


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
        self._speculation: _Speculation | None = None

    def fund(self, address: bytes, wei: int) -> None:
        balance = self._state_vm().state.get_balance(address)
        if balance < wei:
            message = (
                f"embedded chain: account 0x{address.hex()} has {balance} wei; "
                "fund it at genesis (EmbeddedBackend(funded=...))"
            )
            raise ChainError(message)

    def _state_vm(self) -> Any:
        """The VM holding unsealed transactions, else a fresh one at the pending header
        (an estimate's kept run is dropped first: reads see only sent transactions)."""
        self._drop_speculation()
        return self._vm if self._vm is not None else self.chain.get_vm()

    def _open_block(self) -> Any:
        """The VM of the block being filled (opened at the pending header if none is)."""
        if self._vm is None:
            self._vm = self.chain.get_vm(self.chain.header)
            self._header = self.chain.header
        return self._vm

    def _drop_speculation(self) -> None:
        """Undo an estimate's kept run (its transaction was not sent next)."""
        spec, self._speculation = self._speculation, None
        if spec is not None:
            self._vm.state.revert(spec.snapshot)
            if not self._txs:
                self._vm, self._header = None, None

    def _take_speculation(self, vm: Any, tx: Any) -> _Speculation | None:
        """The kept run of an estimate if ``tx`` is the call it estimated (same sender,
        target, data and nonce, no value, the same gas price and no tip, and a limit at
        least a tenth above the run's gas, so that no nested call of the transaction could
        run short where the run at the block's limit did not), so the run is the
        transaction's; else None (the run is undone and the transaction runs anew)."""
        spec, self._speculation = self._speculation, None
        if spec is None:
            return None
        state = vm.state
        same = (
            tx.sender == spec.sender
            and bytes(tx.to) == spec.to
            and bytes(tx.data) == spec.data
            and tx.nonce == spec.nonce
            and tx.value == 0
            and 10 * tx.gas >= 11 * spec.gas  # room for the 63/64 rule of nested calls
        )
        if same:
            try:
                vm.validate_transaction_against_header(self._header, tx)
                tx.validate()
                same = (
                    state.get_transaction_context(tx).gas_price == spec.gas_price
                    and state.get_tip(tx) == 0
                )
            except Exception:  # py-evm validation errors have no common base
                same = False
        if same:
            state.commit(spec.snapshot)
            return spec
        state.revert(spec.snapshot)
        return None

    def nonce(self, address: bytes) -> int:
        return int(self._state_vm().state.get_nonce(address))

    def send(self, raws: Sequence[bytes]) -> list[TxResult]:
        # Faster than chain.apply_transaction, which rebuilds the block's transaction and
        # receipt tries and the state root after every transaction: here that happens once,
        # in seal().
        out = []
        for raw in raws:
            vm = self._open_block()
            try:
                tx = vm.get_transaction_builder().decode(raw)
                spec = self._take_speculation(vm, tx)
                if spec is None:
                    receipt, computation = vm.apply_transaction(self._header, tx)
                else:  # the estimate's run, on this very state: receipt as apply would make
                    computation = spec.computation
                    gas = int(self._header.gas_used) + vm.finalize_gas_used(spec.spoof, computation)
                    receipt = tx.make_receipt(_SUCCESS, gas, computation.get_log_entries())
            except Exception as error:  # py-evm validation errors have no common base
                self._drop_speculation()
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
        self._drop_speculation()
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

    def code(self, address: bytes) -> bytes:
        return bytes(self._state_vm().state.get_code(address))

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

    def estimate_gas(
        self, sender: bytes, to: bytes | None, data: bytes, *, exact: bool = False
    ) -> int:
        # One run at the block's gas limit on a snapshot of the pending state; the gas it
        # consumes before the refund is what the transaction needs (the caller adds the
        # margin that covers the 63/64 rule of nested calls). The run is kept: when the
        # next transaction sent is this call, it is that transaction's run (send()).
        self._drop_speculation()
        vm = self._open_block()
        state = vm.state
        gas_price = vm.get_header().base_fee_per_gas or 0
        nonce = state.get_nonce(sender)
        unsigned = vm.create_unsigned_transaction(
            nonce=nonce,
            gas_price=gas_price,
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
        except Exception:
            state.revert(snapshot)
            raise
        executed = self.block_gas_limit - int(computation.get_gas_remaining())
        if computation.is_error:
            state.revert(snapshot)
            if not self._txs:
                self._vm, self._header = None, None
            where = f"0x{(to or b'').hex()}"
            output = bytes(computation.output or b"")
            if isinstance(computation.error, OutOfGas) or (
                not output and nested_out_of_gas(executed, self.block_gas_limit)
            ):
                message = f"a call to {where} ran out of gas at the block's limit"
                raise OutOfBlockGas(message)
            raise CallReverted(f"estimate of a call to {where} reverted", output)
        self._speculation = _Speculation(
            sender, to or b"", data, nonce, executed, gas_price, snapshot, computation, spoof
        )
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
