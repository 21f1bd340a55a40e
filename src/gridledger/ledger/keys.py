"""Simulation keys derived from one seed, and signing with them.

The operator (the aggregator that sends every transaction), each member's bidding
account and each member's meter have a private key derived from the seed
(:func:`~gridledger.ledger.encoding.derive_key`). Anyone who knows the seed can sign
for all of them: the keys are for simulation only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.market.orders import Bid

__all__ = ["DEFAULT_SEED", "MAX_FEE_WEI", "Signer", "operator_address"]

DEFAULT_SEED = b"gridledger-simulation-only"
MAX_FEE_WEI = 100 * 10**9


def operator_address(seed: bytes) -> bytes:
    """Address of the operator account derived from ``seed``."""
    return enc.address_of(enc.derive_key(seed, "operator"))


class Signer:
    """The keys of one deployment and the signatures made with them.

    ``domain`` is the EIP-712 domain separator of the Market, set by :meth:`bind_market`;
    bids and readings are signed over it.
    """

    def __init__(self, seed: bytes, chain_id: int) -> None:
        self.seed = seed
        self.chain_id = chain_id
        self.operator_key = enc.derive_key(seed, "operator")
        self.operator = enc.address_of(self.operator_key)
        self.domain = b""
        self._member_keys: dict[int, bytes] = {}
        self._meter_keys: dict[int, bytes] = {}

    def add_member(self, member: int) -> None:
        """Derive the bidding and meter keys of ``member``."""
        self._member_keys[member] = enc.derive_key(self.seed, f"member/{member}")
        self._meter_keys[member] = enc.derive_key(self.seed, f"meter/{member}")

    def bind_market(self, market: bytes) -> None:
        """Sign bids and readings for the Market at ``market`` from now on."""
        self.domain = enc.domain_separator(self.chain_id, market)

    def member_key(self, member: int) -> bytes:
        """Private key of ``member``'s bidding/withdrawal account."""
        return self._member_keys[member]

    def meter_key(self, member: int) -> bytes:
        """Private key of ``member``'s meter."""
        return self._meter_keys[member]

    def member_address(self, member: int) -> bytes:
        """Address of ``member``'s bidding/withdrawal account."""
        return enc.address_of(self._member_keys[member])

    def meter_address(self, member: int) -> bytes:
        """Address of ``member``'s meter."""
        return enc.address_of(self._meter_keys[member])

    def sign_bid(self, interval: int, round_: int, word: int) -> tuple[bytes, bytes]:
        """Compact signature of a packed bid by the account of the member it names."""
        member = word >> 224
        digest = enc.bid_digest(self.domain, interval, round_, word)
        return enc.sign_compact(self._member_keys[member], digest)

    def sign_reading(self, interval: int, word: int) -> tuple[bytes, bytes]:
        """Compact signature of a packed reading by the meter of the member it names."""
        member = word >> 224
        digest = enc.reading_digest(self.domain, interval, word)
        return enc.sign_compact(self._meter_keys[member], digest)

    def sign_round(
        self, interval: int, round_: int, bids: Sequence[Bid]
    ) -> tuple[list[int], list[bytes]]:
        """Packed bids (by member) and their signatures ``r, vs`` flattened, for ``recordRound``."""
        words: list[int] = []
        sigs: list[bytes] = []
        for bid in sorted(bids, key=lambda b: b.member):
            if bid.member not in self._member_keys:
                message = f"interval {interval} round {round_}: bid by unknown member {bid.member}"
                raise ChainError(message)
            word = enc.pack_bid(bid)
            words.append(word)
            sigs += self.sign_bid(interval, round_, word)
        return words, sigs

    def sign_readings(
        self, interval: int, net_wh: Mapping[int, int]
    ) -> tuple[list[int], list[bytes]]:
        """Packed readings (by member) and their signatures, for ``recordReadings``."""
        words: list[int] = []
        sigs: list[bytes] = []
        for member in sorted(net_wh):
            if member not in self._meter_keys:
                message = f"interval {interval}: reading for unknown member {member}"
                raise ChainError(message)
            word = enc.pack_reading(member, int(net_wh[member]))
            words.append(word)
            sigs += self.sign_reading(interval, word)
        return words, sigs

    def sign_tx(
        self, to: bytes | None, data: bytes, gas: int, nonce: int, key: bytes | None = None
    ) -> bytes:
        """A raw transaction signed by ``key`` (default: the operator's)."""
        return enc.sign_transaction(
            self.chain_id, key or self.operator_key, to, data, gas, nonce, MAX_FEE_WEI
        )
