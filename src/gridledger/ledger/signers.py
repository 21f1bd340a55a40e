"""One signer per role: each holds one private key and signs only as its owner.

The parties of a deployment (docs/ledger.md, "Keys"):

- :class:`OperatorSigner`: the market operator's account; signs the operator's
  transactions (registration, rounds, clearing, readings batch, settlement).
- :class:`DsoSigner`: the grid operator; signs EIP-712 digests (the network
  commitment, every security verdict) that the operator relays.
- :class:`GridSigner`: the GRID account (supplier of last resort); signs its own
  transactions (its withdrawals).
- :class:`MemberSigner`: one member's bidding/withdrawal account; signs that member's
  bids and its own transactions (a bid sent straight to the contract, withdrawals).
- :class:`MeterSigner`: one member's meter; signs that member's readings and its own
  transactions (a reading sent straight to the contract).

A signer never signs a record naming another member (:class:`~gridledger.errors.WrongSigner`).
Bids and readings are signed over the EIP-712 domain of one Market
(:meth:`RecordSigner.bind_market`); transactions for one chain id (:meth:`TxSigner.bind_chain`).
"""

from __future__ import annotations

from coincurve import PrivateKey

from gridledger.errors import ChainError, WrongSigner
from gridledger.ledger import encoding as enc
from gridledger.market.orders import Bid

__all__ = [
    "MAX_FEE_WEI",
    "DsoSigner",
    "GridSigner",
    "MemberSigner",
    "MeterSigner",
    "OperatorSigner",
    "RecordSigner",
    "TxSigner",
]

MAX_FEE_WEI = 100 * 10**9


class _Key:
    """One private key and its address; ``role`` names the owner in messages."""

    def __init__(self, key: bytes, role: str) -> None:
        if len(key) != 32 or not 0 < int.from_bytes(key, "big") < enc.SECP256K1_N:
            message = f"{role}: not a secp256k1 private key ({len(key)} bytes)"
            raise ChainError(message)
        self._key = key
        self._signing_key = PrivateKey(key)  # built once: signing is then ~40 % faster
        self.role = role
        self.address = enc.address_of(key)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({self.role}, 0x{self.address.hex()})"


class TxSigner(_Key):
    """A key that signs its own transactions on one chain (``chain_id`` None: not yet
    bound; :meth:`bind_chain` binds it once the node is known)."""

    def __init__(self, key: bytes, role: str, chain_id: int | None = None) -> None:
        super().__init__(key, role)
        self.chain_id = chain_id

    def bind_chain(self, chain_id: int) -> None:
        """Sign transactions for chain ``chain_id`` from now on."""
        self.chain_id = chain_id

    def sign_tx(self, to: bytes | None, data: bytes, gas: int, nonce: int) -> bytes:
        """A raw EIP-1559 transaction from this account (``to`` None: contract creation)."""
        if self.chain_id is None:
            message = f"{self.role}: no chain id bound, cannot sign a transaction"
            raise ChainError(message)
        return enc.sign_transaction(self.chain_id, self._key, to, data, gas, nonce, MAX_FEE_WEI)


class OperatorSigner(TxSigner):
    """The market operator's account: signs the operator's transactions only."""

    def __init__(self, key: bytes, chain_id: int | None = None) -> None:
        super().__init__(key, "operator", chain_id)


class GridSigner(TxSigner):
    """The GRID account (supplier of last resort): signs its own transactions."""

    def __init__(self, key: bytes, chain_id: int | None = None) -> None:
        super().__init__(key, "grid", chain_id)


class DsoSigner(_Key):
    """The grid operator (DSO): signs EIP-712 digests (network commitment, verdicts)."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key, "dso")

    def sign_digest(self, digest: bytes) -> tuple[bytes, bytes]:
        """Compact signature ``(r, vs)`` of a 32-byte EIP-712 digest
        (:func:`~gridledger.ledger.encoding.sign_compact`)."""
        if len(digest) != 32:
            message = f"dso: a digest is 32 bytes, got {len(digest)}"
            raise ChainError(message)
        return enc.sign_compact(self._signing_key, digest)


class RecordSigner(TxSigner):
    """A key of one member (its account or its meter) that signs that member's records
    over the EIP-712 domain of the Market bound with :meth:`bind_market`."""

    def __init__(self, key: bytes, role: str, member: int, chain_id: int | None = None) -> None:
        super().__init__(key, role, chain_id)
        self.member = member
        self.domain = b""

    def bind_market(self, market: bytes) -> None:
        """Sign records for the Market at ``market`` (and the bound chain) from now on."""
        if self.chain_id is None:
            message = f"{self.role}: no chain id bound, cannot bind the Market"
            raise ChainError(message)
        self.domain = enc.domain_separator(self.chain_id, market)

    def _check(self, member: int, what: str) -> None:
        if member != self.member:
            message = f"{self.role}: cannot sign member {member}'s {what} (holds only its own key)"
            raise WrongSigner(message)
        if not self.domain:
            message = f"{self.role}: no Market bound, cannot sign a {what}"
            raise ChainError(message)

    @property
    def key(self) -> bytes:
        """The private key (simulation and tests only: they send raw transactions with it)."""
        return self._key


class MemberSigner(RecordSigner):
    """One member's bidding/withdrawal account: signs that member's bids only."""

    def __init__(self, key: bytes, member: int, chain_id: int | None = None) -> None:
        super().__init__(key, f"member {member}", member, chain_id)

    def sign_bid(self, interval: int, round_: int, word: int) -> tuple[bytes, bytes]:
        """Compact signature ``(r, vs)`` of a packed bid, which must name this member."""
        self._check(word >> 224, "bid")
        return enc.sign_compact(
            self._signing_key, enc.bid_digest(self.domain, interval, round_, word)
        )

    def sign(self, interval: int, round_: int, bid: Bid) -> tuple[int, bytes, bytes]:
        """The packed ``bid`` of this member and its signature ``(word, r, vs)``."""
        word = enc.pack_bid(bid)
        return (word, *self.sign_bid(interval, round_, word))


class MeterSigner(RecordSigner):
    """One member's meter: signs that member's readings only."""

    def __init__(self, key: bytes, member: int, chain_id: int | None = None) -> None:
        super().__init__(key, f"meter {member}", member, chain_id)

    def sign_reading(self, interval: int, word: int) -> tuple[bytes, bytes]:
        """Compact signature ``(r, vs)`` of a packed reading, which must name this meter's
        member."""
        self._check(word >> 224, "reading")
        return enc.sign_compact(self._signing_key, enc.reading_digest(self.domain, interval, word))

    def sign(self, interval: int, net_wh: int) -> tuple[int, bytes, bytes]:
        """The packed reading ``net_wh`` of this member and its signature ``(word, r, vs)``."""
        word = enc.pack_reading(self.member, net_wh)
        return (word, *self.sign_reading(interval, word))
