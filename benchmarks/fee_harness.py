"""Test and benchmark harness of the fee-clearing library (contracts/FeeClearingHarness.sol).

The harness exposes ``FeeClearing.verifyGreedy`` / ``verifyOptimal`` with the fee table
passed in, plus ``setFeeTable`` / ``setKappa``. The product never deploys it: its
artifact lives in ``dev-artifacts/`` (``node scripts/compile_contracts.mjs`` writes it).
:class:`FeeClearingHarness` deploys it on a
:class:`~gridledger.ledger.backends.Backend` and calls it (eth_call for verdicts, signed
transactions with explicit gas for gas figures).

Tests import this module as ``benchmarks.fee_harness``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from eth_utils import keccak

from gridledger.errors import ChainError
from gridledger.ledger.backends import Backend, CallReverted
from gridledger.ledger.contracts import Artifact
from gridledger.ledger.deploy import create_address
from gridledger.ledger.encoding import address_of, pack_bid, pack_trades, sign_transaction
from gridledger.ledger.fee_clearing import (
    dual_words,
    greedy_order,
    kappa_args,
    optimal_parties,
    pack_fee_table,
)
from gridledger.market.orders import Bid, Trade
from gridledger.market.path_fees import PathFees

__all__ = [
    "HARNESS_ARTIFACT",
    "FeeClearingHarness",
    "FeeClearingRejected",
    "fee_table_hash",
    "greedy_args",
    "load_harness_artifact",
    "optimal_args",
]

HARNESS = "FeeClearingHarness"
HARNESS_ARTIFACT = Path(__file__).resolve().parents[1] / "dev-artifacts" / f"{HARNESS}.json"
MAX_FEE_WEI = 10**9


class FeeClearingRejected(ChainError):
    """The contract rejected a clearing result: ``error`` is the custom error's name."""

    def __init__(self, error: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"fee clearing rejected: {error}{args}")
        self.error = error
        self.args_ = args


def fee_table_hash(packed: bytes) -> bytes:
    """keccak256 of a packed fee table (what ``setFeeTable`` records)."""
    return bytes(keccak(packed))


def greedy_args(
    bids: Sequence[Bid], fees: npt.ArrayLike | PathFees, trades: Sequence[Trade]
) -> tuple[bytes, list[int], list[int], int, list[int]]:
    """Arguments of ``verifyGreedy(feeTable, bids, order, nBuys, trades)``."""
    order, n_buys = greedy_order(bids)
    return pack_fee_table(fees), [pack_bid(b) for b in bids], order, n_buys, pack_trades(trades)


def optimal_args(
    bids: Sequence[Bid],
    fees: npt.ArrayLike | PathFees,
    trades: Sequence[Trade],
    buyer_dual: Mapping[int, int],
    seller_dual: Mapping[int, int],
    tie_buyer_dual: Mapping[int, int] | None = None,
    tie_seller_dual: Mapping[int, int] | None = None,
) -> tuple[bytes, list[int], list[int], list[int], list[int]]:
    """Arguments of ``verifyOptimal(feeTable, bids, trades, parties, duals)`` (welfare duals,
    then tie-break duals; see ``dual_words``)."""
    return (
        pack_fee_table(fees),
        [pack_bid(b) for b in bids],
        pack_trades(trades),
        optimal_parties(bids, trades),
        dual_words(
            bids,
            buyer_dual,
            seller_dual,
            tie_buyer_dual,
            tie_seller_dual,
            n_buses=fees.n_buses if isinstance(fees, PathFees) else int(np.shape(fees)[0]),
        ),
    )


def load_harness_artifact() -> Artifact:
    """The compiled harness (``dev-artifacts/FeeClearingHarness.json``)."""
    try:
        return Artifact(json.loads(HARNESS_ARTIFACT.read_text()))
    except OSError as error:
        message = f"{HARNESS_ARTIFACT} missing: run node scripts/compile_contracts.mjs"
        raise ChainError(message) from error


@dataclass
class FeeClearingHarness:
    """A deployed ``FeeClearingHarness`` on ``backend``, operated by ``key``."""

    backend: Backend
    key: bytes
    address: bytes
    abi: Artifact

    @classmethod
    def deploy(cls, backend: Backend, key: bytes, gas: int = 6_000_000) -> FeeClearingHarness:
        """Deploy the harness (the account of ``key`` must hold ether for gas)."""
        abi = load_harness_artifact()
        sender = address_of(key)
        nonce = backend.nonce(sender)
        raw = sign_transaction(
            backend.chain_id, key, None, abi.deploy_data(), gas, nonce, MAX_FEE_WEI
        )
        (result,) = backend.send([raw])
        if not result.status:
            message = f"deploying {HARNESS} failed (gas used {result.gas_used})"
            raise ChainError(message)
        backend.seal()
        return cls(backend, key, create_address(sender, nonce), abi)

    @property
    def sender(self) -> bytes:
        return address_of(self.key)

    def transact(self, function: str, *args: Any, gas: int = 29_000_000) -> int:
        """Send ``function(*args)`` as a transaction with explicit ``gas``; its gas used.

        Raises :class:`FeeClearingRejected` when the transaction reverts with a custom error.
        """
        data = self.abi.encode_call(function, *args)
        nonce = self.backend.nonce(self.sender)
        raw = sign_transaction(
            self.backend.chain_id, self.key, self.address, data, gas, nonce, MAX_FEE_WEI
        )
        (result,) = self.backend.send([raw])
        self.backend.seal()
        if not result.status:
            raise self._rejected(result.revert_data, function)
        return result.gas_used

    def call(self, function: str, *args: Any) -> tuple[Any, ...]:
        """``eth_call`` of ``function(*args)``; raises :class:`FeeClearingRejected` on revert."""
        data = self.abi.encode_call(function, *args)
        try:
            out = self.backend.call(self.sender, self.address, data)
        except CallReverted as error:
            raise self._rejected(error.data, function) from error
        return self.abi.decode_output(function, out)

    def _rejected(self, data: bytes, function: str) -> ChainError:
        found = self.abi.decode_error(data)
        if found is None:
            message = f"{HARNESS}.{function} reverted without a known error (0x{data.hex()})"
            return ChainError(message)
        return FeeClearingRejected(found[0], tuple(found[1]))

    def set_fee_table(self, fees: npt.ArrayLike | PathFees) -> bytes:
        """Record the hash and size of ``fees`` (a table or path form); returns the packed
        data."""
        packed = pack_fee_table(fees)
        n_buses = fees.n_buses if isinstance(fees, PathFees) else int(np.asarray(fees).shape[0])
        self.transact("setFeeTable", n_buses, fee_table_hash(packed), gas=100_000)
        return packed

    def set_kappa(self, kappa: Fraction | float) -> None:
        self.transact("setKappa", *kappa_args(kappa), gas=100_000)

    def verify_greedy(
        self, bids: Sequence[Bid], fees: npt.ArrayLike | PathFees, trades: Sequence[Trade]
    ) -> int:
        """Welfare (micro-tokens/kWh x Wh) if the chain accepts ``trades`` as the greedy result."""
        return int(self.call("verifyGreedy", *greedy_args(bids, fees, trades))[0])

    def verify_greedy_page(
        self,
        bids: Sequence[Bid],
        fees: npt.ArrayLike | PathFees,
        trades: Sequence[Trade],
        start: int,
        up_to: int,
    ) -> int:
        """Welfare of trades ``[0, up_to)`` if the chain accepts the page ``[start, up_to)``
        of ``trades`` as the greedy result (earlier trades replayed, not scanned)."""
        args = greedy_args(bids, fees, trades)
        return int(self.call("verifyGreedyPage", *args, (start << 128) | up_to)[0])

    def verify_optimal(
        self,
        bids: Sequence[Bid],
        fees: npt.ArrayLike | PathFees,
        trades: Sequence[Trade],
        buyer_dual: Mapping[int, int],
        seller_dual: Mapping[int, int],
        tie_buyer_dual: Mapping[int, int] | None = None,
        tie_seller_dual: Mapping[int, int] | None = None,
    ) -> int:
        """Welfare if the chain accepts ``trades`` as the canonical optimum, certified by the
        welfare duals and the tie-break duals."""
        args = optimal_args(
            bids, fees, trades, buyer_dual, seller_dual, tie_buyer_dual, tie_seller_dual
        )
        return int(self.call("verifyOptimal", *args)[0])

    def verify_optimal_page(
        self,
        bids: Sequence[Bid],
        fees: npt.ArrayLike | PathFees,
        trades: Sequence[Trade],
        duals: tuple[Mapping[int, int], ...],
        start: int,
        up_to: int,
    ) -> int:
        """The page ``[start, up_to)`` of the optimal verification's entries (the trades,
        then the final check) of ``trades`` certified by ``duals`` (welfare duals of buyers
        and sellers, then their tie-break duals): its result, with DONE at the final check."""
        args = optimal_args(bids, fees, trades, *duals)
        return int(self.call("verifyOptimalPage", *args, (start << 128) | up_to)[0])
