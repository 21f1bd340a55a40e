"""Packed 256-bit record words, EIP-712 digests and simulation keys.

The contracts keep only hashes of record lists; the lists travel as arrays of
``uint256`` words whose layouts are fixed here and in ``contracts/Market.sol``
(bit 255 is the top bit; unused low bits are zero):

- bid: ``member u32 <<224 | side u8 <<216 | e_wh u64 <<152 | price u64 <<88 | bus u16 <<72``
- trade (two words): ``buyer u32 <<224 | seller u32 <<192 | e_wh u64 <<128 |
  buyer_bus u16 <<112 | seller_bus u16 <<96`` and ``buyer_price u64 <<192 |
  seller_price u64 <<128``
- reading: ``member u32 <<224 | net_wh int64 (two's complement) <<160``
- curtailment: ``trade_index u32 <<224 | cut_wh u64 <<160 | kind u8 <<152 |
  element_index u32 <<120`` (kind 0 bus, 1 line, 2 trafo)

A list's hash is ``keccak256`` of its words concatenated (32 bytes each, big endian).

EIP-712 domain: ``name "gridledger"``, ``version "1"``, the chain id and the
Market contract's address. Types::

    Bid(uint32 interval,uint8 round,uint32 member,uint8 side,uint64 eWh,uint64 pricePerKwhMicro,uint16 bus)
    Reading(uint32 interval,uint32 member,int64 netWh)

Signatures are compact (EIP-2098): ``r`` and ``yParity << 255 | s``.

Keys: :func:`derive_key` derives private keys from a seed by hashing. They are
for simulation only: anyone who knows the seed can sign for every member.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_account import Account
from eth_hash.auto import keccak as _keccak
from eth_utils import keccak, to_checksum_address

from gridledger.errors import ChainError
from gridledger.market.orders import Bid, Curtailment, Side, Trade

__all__ = [
    "BID_TYPEHASH",
    "ELEMENT_KINDS",
    "NETWORK_TYPEHASH",
    "READING_TYPEHASH",
    "VERDICT_TYPEHASH",
    "address_of",
    "bid_digest",
    "derive_key",
    "domain_separator",
    "int_list_hash",
    "list_hash",
    "network_digest",
    "pack_bid",
    "pack_curtailment",
    "pack_reading",
    "pack_trades",
    "reading_digest",
    "recover_compact",
    "sign_compact",
    "sign_transaction",
    "unpack_bid",
    "unpack_curtailment",
    "unpack_reading",
    "unpack_trades",
    "verdict_digest",
]

U64 = (1 << 64) - 1


def sign_transaction(
    chain_id: int,
    key: bytes,
    to: bytes | None,
    data: bytes,
    gas: int,
    nonce: int,
    max_fee_wei: int,
) -> bytes:
    """A raw EIP-1559 transaction: explicit gas and nonce, no value, no priority fee
    (``to`` None: contract creation)."""
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": 0,
        "data": data,
        "gas": gas,
        "maxFeePerGas": max_fee_wei,
        "maxPriorityFeePerGas": 0,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


U32 = (1 << 32) - 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

BID_TYPEHASH = keccak(
    b"Bid(uint32 interval,uint8 round,uint32 member,uint8 side,uint64 eWh,"
    b"uint64 pricePerKwhMicro,uint16 bus)"
)
READING_TYPEHASH = keccak(b"Reading(uint32 interval,uint32 member,int64 netWh)")
VERDICT_TYPEHASH = keccak(
    b"Verdict(uint32 interval,bytes32 tradesHash,uint8 verdict,bytes32 curtailmentsHash,"
    b"bytes32 marginsHash,bytes32 certificateHash)"
)
NETWORK_TYPEHASH = keccak(b"Network(uint256 cfg,bytes32 tableHash)")
DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ELEMENT_KINDS: dict[str, int] = {"bus": 0, "line": 1, "trafo": 2}
_KIND_NAMES = {v: k for k, v in ELEMENT_KINDS.items()}


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


def list_hash(words: Iterable[int]) -> bytes:
    """keccak256 of the words concatenated, as the contract computes it."""
    return keccak(b"".join(_u256(w) for w in words))


# ------------------------------------------------------------------ bids
def pack_bid(bid: Bid) -> int:
    if not (0 <= bid.member <= U32 and 0 < bid.e_wh <= U64 and 0 <= bid.price_per_kwh_micro <= U64):
        message = f"bid {bid}: member, e_wh or price outside the on-chain ranges"
        raise ChainError(message)
    if not 0 <= bid.bus <= 0xFFFF:
        message = f"bid {bid}: bus {bid.bus} outside 0..65535"
        raise ChainError(message)
    return (
        (bid.member << 224)
        | (int(bid.side) << 216)
        | (bid.e_wh << 152)
        | (bid.price_per_kwh_micro << 88)
        | (bid.bus << 72)
    )


def unpack_bid(word: int) -> Bid:
    return Bid(
        member=word >> 224,
        side=Side((word >> 216) & 0xFF),
        e_wh=(word >> 152) & U64,
        price_per_kwh_micro=(word >> 88) & U64,
        bus=(word >> 72) & 0xFFFF,
    )


# ---------------------------------------------------------------- trades
def pack_trades(trades: Sequence[Trade]) -> list[int]:
    words: list[int] = []
    for t in trades:
        words.append(
            (t.buyer << 224)
            | (t.seller << 192)
            | (t.e_wh << 128)
            | (t.buyer_bus << 112)
            | (t.seller_bus << 96)
        )
        words.append((t.buyer_price_per_kwh_micro << 192) | (t.seller_price_per_kwh_micro << 128))
    return words


def unpack_trades(words: Sequence[int]) -> tuple[Trade, ...]:
    if len(words) % 2:
        message = f"trade words: odd length {len(words)}"
        raise ChainError(message)
    out = []
    for k in range(0, len(words), 2):
        w0, w1 = words[k], words[k + 1]
        out.append(
            Trade(
                buyer=w0 >> 224,
                seller=(w0 >> 192) & U32,
                e_wh=(w0 >> 128) & U64,
                buyer_price_per_kwh_micro=w1 >> 192,
                seller_price_per_kwh_micro=(w1 >> 128) & U64,
                buyer_bus=(w0 >> 112) & 0xFFFF,
                seller_bus=(w0 >> 96) & 0xFFFF,
            )
        )
    return tuple(out)


# -------------------------------------------------------------- readings
def pack_reading(member: int, net_wh: int) -> int:
    if not (0 <= member <= U32 and -(1 << 63) <= net_wh < (1 << 63)):
        message = f"reading member={member} net_wh={net_wh}: outside uint32 / int64"
        raise ChainError(message)
    return (member << 224) | ((net_wh & U64) << 160)


def unpack_reading(word: int) -> tuple[int, int]:
    raw = (word >> 160) & U64
    return word >> 224, raw - (1 << 64) if raw >> 63 else raw


# ---------------------------------------------------------- curtailments
def pack_curtailment(c: Curtailment) -> int:
    if c.element not in ELEMENT_KINDS:
        message = f"curtailment {c}: element {c.element!r} not in {sorted(ELEMENT_KINDS)}"
        raise ChainError(message)
    if not (0 <= c.trade_index <= U32 and 0 <= c.cut_wh <= U64 and 0 <= c.element_index <= U32):
        message = f"curtailment {c}: values outside the on-chain ranges"
        raise ChainError(message)
    return (
        (c.trade_index << 224)
        | (c.cut_wh << 160)
        | (ELEMENT_KINDS[c.element] << 152)
        | (c.element_index << 120)
    )


def unpack_curtailment(word: int) -> Curtailment:
    return Curtailment(
        trade_index=word >> 224,
        cut_wh=(word >> 160) & U64,
        element=_KIND_NAMES[(word >> 152) & 0xFF],
        element_index=(word >> 120) & U32,
    )


# --------------------------------------------------------------- EIP-712
def domain_separator(chain_id: int, market: bytes) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(b"gridledger")
        + keccak(b"1")
        + _u256(chain_id)
        + market.rjust(32, b"\x00")
    )


def bid_digest(domain: bytes, interval: int, round_: int, word: int) -> bytes:
    # the struct's fields straight from the packed word (the layout of pack_bid)
    struct_hash = _keccak(
        b"".join(
            (
                BID_TYPEHASH,
                interval.to_bytes(32, "big"),
                round_.to_bytes(32, "big"),
                (word >> 224).to_bytes(32, "big"),
                ((word >> 216) & 0xFF).to_bytes(32, "big"),
                ((word >> 152) & U64).to_bytes(32, "big"),
                ((word >> 88) & U64).to_bytes(32, "big"),
                ((word >> 72) & 0xFFFF).to_bytes(32, "big"),
            )
        )
    )
    return _keccak(b"\x19\x01" + domain + struct_hash)


def reading_digest(domain: bytes, interval: int, word: int) -> bytes:
    member, net_wh = unpack_reading(word)
    struct_hash = _keccak(
        READING_TYPEHASH
        + interval.to_bytes(32, "big")
        + member.to_bytes(32, "big")
        + (net_wh % (1 << 256)).to_bytes(32, "big")
    )
    return _keccak(b"\x19\x01" + domain + struct_hash)


def int_list_hash(values: Iterable[int]) -> bytes:
    """keccak256 of int256 values packed (two's complement), as ``abi.encodePacked`` does."""
    return keccak(b"".join(int(v).to_bytes(32, "big", signed=True) for v in values))


def verdict_digest(
    domain: bytes,
    interval: int,
    trades: Sequence[int],
    verdict: int,
    evidence: tuple[Sequence[int], Sequence[int], Sequence[int]],
) -> bytes:
    """EIP-712 digest of the DSO's security verdict: the trade words and the evidence
    ``(curtailment words, margins, certificate)``."""
    curtailments, margins, certificate = evidence
    struct_hash = keccak(
        VERDICT_TYPEHASH
        + _u256(interval)
        + list_hash(trades)
        + _u256(verdict)
        + list_hash(curtailments)
        + list_hash(margins)
        + list_hash(certificate)
    )
    return keccak(b"\x19\x01" + domain + struct_hash)


def network_digest(domain: bytes, cfg: int, table: bytes) -> bytes:
    """EIP-712 digest of the DSO's network commitment (configuration word and table)."""
    struct_hash = keccak(NETWORK_TYPEHASH + _u256(cfg) + keccak(table))
    return keccak(b"\x19\x01" + domain + struct_hash)


def sign_compact(key: bytes | PrivateKey, digest: bytes) -> tuple[bytes, bytes]:
    """EIP-2098 compact signature ``(r, yParity << 255 | s)`` of a 32-byte digest by a
    private key (its 32 bytes, or a coincurve key built once for many signatures)."""
    signer = key if isinstance(key, PrivateKey) else PrivateKey(key)
    sig = signer.sign_recoverable(digest, hasher=None)
    r, s, rec = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    return r, ((rec << 255) | s).to_bytes(32, "big")


def recover_compact(digest: bytes, r: bytes, vs: bytes) -> bytes:
    """The address that made the compact signature ``(r, vs)`` of ``digest`` (20 zero bytes
    when it is not a valid signature), as the contract's ``ecrecover`` sees it."""
    value = int.from_bytes(vs, "big")
    s = (value & ((1 << 255) - 1)).to_bytes(32, "big")
    try:
        public = PublicKey.from_signature_and_message(
            bytes(r) + s + bytes([value >> 255]), digest, hasher=None
        )
    except ValueError:
        return bytes(20)
    return keccak(public.format(compressed=False)[1:])[12:]


# ------------------------------------------------------------------ keys
def derive_key(seed: bytes, label: str) -> bytes:
    """Deterministic private key for ``label`` (simulation only: the seed reveals it)."""
    counter = 0
    while True:
        key = keccak(seed + b"/" + label.encode() + b"/" + counter.to_bytes(4, "big"))
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key
        counter += 1


def address_of(key: bytes) -> bytes:
    """20-byte address of a private key."""
    public = PrivateKey(key).public_key.format(compressed=False)[1:]
    return keccak(public)[-20:]
