"""What the ledger needs from a chain (:class:`Backend`), and the records it gets back.

The implementations: :class:`~gridledger.ledger.embedded.EmbeddedBackend` (py-evm in
process) and :class:`~gridledger.ledger.backends.RpcBackend` (a JSON-RPC node).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from gridledger.errors import ChainError

__all__ = [
    "BLOCK_GAS_LIMIT",
    "TX_GAS_CAP",
    "Backend",
    "CallReverted",
    "LogEntry",
    "OutOfBlockGas",
    "TxResult",
    "calldata_floor_gas",
    "nested_out_of_gas",
]

BLOCK_GAS_LIMIT = 30_000_000
TX_GAS_CAP = 2**24
"""EIP-7825 (Osaka): the most gas one transaction may carry, 16,777,216."""


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
    #: Gas one transaction may carry (EIP-7825's cap unless the scenario says otherwise).
    tx_gas_cap: int = TX_GAS_CAP

    def max_tx_gas(self) -> int:
        """The most gas one transaction may use: the smaller of a block's and the cap."""
        return min(self.block_gas_limit, self.tx_gas_cap)

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
    def estimate_gas(
        self, sender: bytes, to: bytes | None, data: bytes, *, exact: bool = False
    ) -> int:
        """The gas a call (``to`` None: a deployment) needs at the pending state, after
        every transaction sent or staged so far, never below its calldata floor; raises
        :class:`CallReverted` with the revert data when the call would revert. A backend
        may answer from one measured run (then :meth:`confirm_limit` checks the limit
        chosen from it); ``exact``: the node's ``eth_estimateGas``."""

    def estimate_probed(
        self, sender: bytes, to: bytes | None, data: bytes, probe: int
    ) -> tuple[int, bool]:
        """:meth:`estimate_gas`, measured where the backend can by a run given gas ``probe``:
        the estimate, and whether that run succeeded (then the call succeeds with any limit
        of ``probe`` or more, and :meth:`confirm_limit` of such a limit is answered). False
        when the backend has no such run, or the call needed more than ``probe``."""
        return self.estimate_gas(sender, to, data), False

    def confirm_limit(self, sender: bytes, to: bytes | None, data: bytes, limit: int) -> bool:
        """Whether the call succeeds with gas ``limit`` at the pending state (a backend
        whose :meth:`estimate_gas` is exact needs no check)."""
        return True

    def stage(self, raws: Sequence[bytes]) -> None:  # noqa: B027 - eager backends run at once
        """Hand signed transactions to the node's pool without mining them, so the next
        :meth:`estimate_gas` sees their effects (a JSON-RPC node; eager backends have run
        them already). :meth:`send` of the same transactions then only mines them."""

    @abstractmethod
    def code(self, address: bytes) -> bytes:
        """The contract code at ``address`` (empty: no contract)."""

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


def nested_out_of_gas(used: int, given: int) -> bool:
    """Whether a call that reverted without revert data after using ``used`` of the
    ``given`` gas ran out of gas in a nested call: a frame keeps only 1/64 of its gas when
    it calls (EIP-150), so a nested call that runs out leaves its caller to revert with at
    least 63/64 of the gas spent. Our contracts revert with named errors, never empty."""
    return used * 64 >= given * 63


class OutOfBlockGas(ChainError):
    """A call ran out of gas at the block's gas limit: it needs more than a block holds."""


class CallReverted(ChainError):
    """An ``eth_call`` reverted; ``data`` holds the revert data."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(message)
        self.data = data
