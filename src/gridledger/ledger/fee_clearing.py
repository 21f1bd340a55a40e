"""Python side of the on-chain fee-aware clearing check (contracts/FeeClearing.sol).

The library checks a clearing result computed off chain instead of searching for it:

- ``verifyGreedy``: the trades equal :func:`gridledger.market.greedy.clear_greedy` to the
  unit. Inputs: the bid words, a queue order (:func:`greedy_order`) and the trade words in
  clearing order.
- ``verifyOptimal``: the trades are welfare-optimal, certified by the integer LP duals of
  :func:`gridledger.market.optimal.solve_optimal`. Inputs: bid words, trade words, one party
  hint per trade (:func:`optimal_parties`) and one dual per bid (:func:`dual_words`).

Both need the fee table packed as ``B*B`` big-endian uint32 (:func:`pack_fee_table`,
micro-tokens per kWh, entry ``(p, q)`` at byte ``4 * (p * B + q)``, ``fees[seller_bus,
buyer_bus]``) whose keccak256 the operator records once. Duals are in micro-tokens per kWh,
the unit of prices (the LP objective is in micro-tokens/kWh x Wh, its row duals per Wh of
order quantity, hence per kWh in micro-tokens/kWh: the units of ``solve_optimal``).

:class:`FeeClearingHarness` deploys ``contracts/FeeClearingHarness.sol`` on a
:class:`~gridledger.ledger.backends.Backend` and calls it (eth_call for verdicts, signed
transactions with explicit gas for gas figures).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
from eth_utils import keccak

from gridledger.errors import ChainError
from gridledger.ledger.backends import Backend, CallReverted
from gridledger.ledger.contracts import Artifact, artifact
from gridledger.ledger.encoding import address_of, pack_bid, pack_trades, sign_transaction
from gridledger.market.greedy import kappa_fraction
from gridledger.market.orders import Bid, Side, Trade

__all__ = [
    "FeeClearingHarness",
    "FeeClearingRejected",
    "dual_words",
    "fee_table_hash",
    "greedy_args",
    "greedy_order",
    "kappa_args",
    "optimal_args",
    "optimal_parties",
    "pack_fee_table",
]

log = logging.getLogger(__name__)

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
MAX_FEE_WEI = 10**9
HARNESS = "FeeClearingHarness"


class FeeClearingRejected(ChainError):
    """The contract rejected a clearing result: ``error`` is the custom error's name."""

    def __init__(self, error: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"fee clearing rejected: {error}{args}")
        self.error = error
        self.args_ = args


# ------------------------------------------------------------------ encoding
def pack_fee_table(fees: npt.ArrayLike) -> bytes:
    """The fee table as ``B*B`` big-endian uint32 (row = seller bus, column = buyer bus)."""
    table = np.asarray(fees)
    if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] == 0:
        message = f"fee table must be square (B, B) with B >= 1, got shape {table.shape}"
        raise ChainError(message)
    if table.shape[0] > 65536:
        message = f"fee table has {table.shape[0]} buses; the chain allows at most 65536"
        raise ChainError(message)
    if table.dtype.kind not in "iu" and np.any(table != np.round(table)):
        message = "fee table must hold integer micro-tokens per kWh"
        raise ChainError(message)
    ints = table.astype(np.int64)
    if np.any(ints < 0) or np.any(ints > U32):
        message = (
            f"fee table entries must be in 0..{U32} micro-tokens per kWh "
            f"(got {int(ints.min())}..{int(ints.max())})"
        )
        raise ChainError(message)
    return ints.astype(">u4").tobytes()


def fee_table_hash(packed: bytes) -> bytes:
    """keccak256 of a packed fee table (what ``setFeeTable`` records)."""
    return keccak(packed)


def kappa_args(kappa: Fraction | float) -> tuple[int, int]:
    """``(num, den)`` of kappa as the greedy reference converts it."""
    frac = kappa_fraction(kappa)
    return frac.numerator, frac.denominator


def greedy_order(bids: Sequence[Bid]) -> tuple[list[int], int]:
    """Queue order for ``verifyGreedy`` and the number of buy bids.

    ``order[:n_buys]`` indexes the buy bids by (bus asc, price desc, member asc),
    ``order[n_buys:]`` the sell bids by (bus asc, price asc, member asc).
    """
    buys = [k for k, b in enumerate(bids) if b.side == Side.BUY]
    sells = [k for k, b in enumerate(bids) if b.side == Side.SELL]
    buys.sort(key=lambda k: (bids[k].bus, -bids[k].price_per_kwh_micro, bids[k].member))
    sells.sort(key=lambda k: (bids[k].bus, bids[k].price_per_kwh_micro, bids[k].member))
    return buys + sells, len(buys)


def optimal_parties(bids: Sequence[Bid], trades: Sequence[Trade]) -> list[int]:
    """Per trade ``buyer_bid_index << 128 | seller_bid_index`` (hint checked on chain)."""
    index = {b.member: k for k, b in enumerate(bids)}
    out = []
    for k, t in enumerate(trades):
        if t.buyer not in index or t.seller not in index:
            message = f"trade #{k}: buyer {t.buyer} or seller {t.seller} has no bid"
            raise ChainError(message)
        out.append((index[t.buyer] << 128) | index[t.seller])
    return out


def dual_words(
    bids: Sequence[Bid], buyer_dual: Mapping[int, int], seller_dual: Mapping[int, int]
) -> list[int]:
    """One dual per bid (u for buy bids, v for sell bids), micro-tokens per kWh; missing = 0."""
    out = []
    for b in bids:
        value = (buyer_dual if b.side == Side.BUY else seller_dual).get(b.member, 0)
        if value != int(value):
            message = f"dual of member {b.member} is {value}, not an integer"
            raise ChainError(message)
        out.append(int(value))
    return out


def greedy_args(
    bids: Sequence[Bid], fees: npt.ArrayLike, trades: Sequence[Trade]
) -> tuple[bytes, list[int], list[int], int, list[int]]:
    """Arguments of ``verifyGreedy(feeTable, bids, order, nBuys, trades)``."""
    order, n_buys = greedy_order(bids)
    return pack_fee_table(fees), [pack_bid(b) for b in bids], order, n_buys, pack_trades(trades)


def optimal_args(
    bids: Sequence[Bid],
    fees: npt.ArrayLike,
    trades: Sequence[Trade],
    buyer_dual: Mapping[int, int],
    seller_dual: Mapping[int, int],
) -> tuple[bytes, list[int], list[int], list[int], list[int]]:
    """Arguments of ``verifyOptimal(feeTable, bids, trades, parties, duals)``."""
    return (
        pack_fee_table(fees),
        [pack_bid(b) for b in bids],
        pack_trades(trades),
        optimal_parties(bids, trades),
        dual_words(bids, buyer_dual, seller_dual),
    )


# ------------------------------------------------------------------- harness
@dataclass
class FeeClearingHarness:
    """A deployed ``FeeClearingHarness`` on ``backend``, operated by ``key``."""

    backend: Backend
    key: bytes
    address: bytes
    abi: Artifact

    @classmethod
    def deploy(cls, backend: Backend, key: bytes, gas: int = 3_000_000) -> FeeClearingHarness:
        """Deploy the harness (the account of ``key`` must hold ether for gas)."""
        abi = artifact(HARNESS)
        sender = address_of(key)
        nonce = backend.nonce(sender)
        (result,) = backend.send(
            [
                sign_transaction(
                    backend.chain_id, key, None, abi.deploy_data(), gas, nonce, MAX_FEE_WEI
                )
            ]
        )
        if not result.status:
            message = f"deploying {HARNESS} failed (gas used {result.gas_used})"
            raise ChainError(message)
        backend.seal()
        address = keccak(_rlp_sender_nonce(sender, nonce))[-20:]
        return cls(backend, key, address, abi)

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

    def set_fee_table(self, fees: npt.ArrayLike) -> bytes:
        """Record the hash and size of ``fees``; returns the packed table."""
        packed = pack_fee_table(fees)
        n_buses = int(np.asarray(fees).shape[0])
        self.transact("setFeeTable", n_buses, fee_table_hash(packed), gas=100_000)
        return packed

    def set_kappa(self, kappa: Fraction | float) -> None:
        self.transact("setKappa", *kappa_args(kappa), gas=100_000)

    def verify_greedy(
        self, bids: Sequence[Bid], fees: npt.ArrayLike, trades: Sequence[Trade]
    ) -> int:
        """Welfare (micro-tokens/kWh x Wh) if the chain accepts ``trades`` as the greedy result."""
        return int(self.call("verifyGreedy", *greedy_args(bids, fees, trades))[0])

    def verify_optimal(
        self,
        bids: Sequence[Bid],
        fees: npt.ArrayLike,
        trades: Sequence[Trade],
        buyer_dual: Mapping[int, int],
        seller_dual: Mapping[int, int],
    ) -> int:
        """Welfare if the chain accepts ``trades`` as optimal, certified by the duals."""
        args = optimal_args(bids, fees, trades, buyer_dual, seller_dual)
        return int(self.call("verifyOptimal", *args)[0])


def _rlp_sender_nonce(sender: bytes, nonce: int) -> bytes:
    """RLP of [sender, nonce] (the CREATE address preimage)."""
    if nonce == 0:
        nonce_rlp = b"\x80"
    elif nonce < 0x80:
        nonce_rlp = bytes([nonce])
    else:
        raw = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        nonce_rlp = bytes([0x80 + len(raw)]) + raw
    body = b"\x94" + sender + nonce_rlp
    return bytes([0xC0 + len(body)]) + body
