"""Word layouts and EIP-712 digests agree with independent implementations."""

from __future__ import annotations

import re
from pathlib import Path

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import artifact, decode_words, encode_words
from gridledger.market import Bid, Side, Trade
from gridledger.market.orders import Curtailment

MARKET = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
CHAIN_ID = 31337

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


def _domain() -> dict[str, object]:
    return {
        "name": "gridledger",
        "version": "1",
        "chainId": CHAIN_ID,
        "verifyingContract": "0x" + MARKET.hex(),
    }


@given(
    u32,
    st.integers(0, 255),
    u32,
    st.sampled_from(Side),
    st.integers(1, 2**64 - 1),
    u64,
    st.integers(0, 0xFFFF),
)
def test_bid_digest_matches_eth_account(interval, round_, member, side, e_wh, price, bus) -> None:
    bid = Bid(member, side, e_wh, price, bus)
    word = enc.pack_bid(bid)
    assert enc.unpack_bid(word) == bid
    message = {
        "interval": interval,
        "round": round_,
        "member": member,
        "side": int(side),
        "eWh": e_wh,
        "pricePerKwhMicro": price,
        "bus": bus,
    }
    types = {
        "Bid": [
            {"name": "interval", "type": "uint32"},
            {"name": "round", "type": "uint8"},
            {"name": "member", "type": "uint32"},
            {"name": "side", "type": "uint8"},
            {"name": "eWh", "type": "uint64"},
            {"name": "pricePerKwhMicro", "type": "uint64"},
            {"name": "bus", "type": "uint16"},
        ]
    }
    signable = encode_typed_data(domain_data=_domain(), message_types=types, message_data=message)
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    domain = enc.domain_separator(CHAIN_ID, MARKET)
    assert enc.bid_digest(domain, interval, round_, word) == expected


@given(u32, u32, st.integers(-(2**63), 2**63 - 1))
def test_reading_digest_and_signature(interval, member, net_wh) -> None:
    word = enc.pack_reading(member, net_wh)
    assert enc.unpack_reading(word) == (member, net_wh)
    types = {
        "Reading": [
            {"name": "interval", "type": "uint32"},
            {"name": "member", "type": "uint32"},
            {"name": "netWh", "type": "int64"},
        ]
    }
    signable = encode_typed_data(
        domain_data=_domain(),
        message_types=types,
        message_data={"interval": interval, "member": member, "netWh": net_wh},
    )
    digest = enc.reading_digest(enc.domain_separator(CHAIN_ID, MARKET), interval, word)
    assert digest == keccak(b"\x19" + signable.version + signable.header + signable.body)
    key = enc.derive_key(b"seed", f"meter/{member}")
    r, vs = enc.sign_compact(key, digest)
    v = 27 + (int.from_bytes(vs, "big") >> 255)
    s = int.from_bytes(vs, "big") & ((1 << 255) - 1)
    signer = Account._recover_hash(digest, vrs=(v, int.from_bytes(r, "big"), s))
    assert bytes.fromhex(signer[2:]) == enc.address_of(key)


@given(
    st.lists(
        st.tuples(u32, u32, u64, u64, u64, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
        max_size=5,
    )
)
def test_trade_words_round_trip(rows) -> None:
    trades = tuple(Trade(*row) for row in rows)
    assert enc.unpack_trades(enc.pack_trades(trades)) == trades


def test_curtailment_round_trip() -> None:
    c = Curtailment(trade_index=3, cut_wh=120, element="line", element_index=7)
    assert enc.unpack_curtailment(enc.pack_curtailment(c)) == c


def test_assembly_error_selectors_match_the_abi() -> None:
    folder = Path(__file__).parents[2] / "contracts"
    source = (folder / "Market.sol").read_text() + (folder / "Registry.sol").read_text()
    for literal, name in re.findall(
        r"constant _E_\w+ = (0x[0-9a-f]{64}); // (\w+) selector", source
    ):
        signature = re.search(rf"error {name}\(([^)]*)\)", source)
        assert signature is not None
        types = ",".join(p.split()[0] for p in signature.group(1).split(",") if p.strip())
        assert literal[2:10] == keccak(f"{name}({types})".encode())[:4].hex(), name


_WORDS = st.lists(st.integers(0, 2**256 - 1), max_size=6)
_SIGS = st.lists(st.binary(min_size=32, max_size=32), max_size=6)


@given(st.integers(0, 2**32 - 1), st.integers(0, 255), st.booleans(), _WORDS, _SIGS, _WORDS)
def test_word_lists_encode_as_eth_abi_encodes_them(
    interval: int, round_: int, flag: bool, words: list[int], sigs: list[bytes], more: list[int]
) -> None:
    types = ["uint32", "uint8", "bool", "uint256[]", "bytes32[]", "uint256[]"]
    args = (interval, round_, flag, words, sigs, more)
    assert encode_words(types, args) == abi_encode(types, list(args))


def test_other_values_are_left_to_eth_abi() -> None:
    # out of range, bool for an integer, a short bytes32, another type: eth_abi's business
    for types, args in (
        (["uint8"], (256,)),
        (["uint32"], (True,)),
        (["uint256[]"], ([-1],)),
        (["bytes32[]"], ([b"\x01"],)),
        (["uint256[]"], (5,)),
        (["address"], (b"\x11" * 20,)),
        (["uint32", "uint32"], (1,)),
    ):
        assert encode_words(types, args) is None
    data = artifact("Market").encode_call("recordReadings", 3, [1 << 224], [b"\x02" * 32] * 2, 1)
    assert data[4:] == abi_encode(
        ["uint32", "uint256[]", "bytes32[]", "uint256"], [3, [1 << 224], [b"\x02" * 32] * 2, 1]
    )


i256 = st.integers(-(2**255), 2**255 - 1)


@given(
    u32,
    st.integers(-(2**255), 2**255 - 1),
    st.booleans(),
    st.binary(min_size=32, max_size=32),
    st.lists(u32, max_size=5),
    st.lists(i256, max_size=5),
    st.lists(st.integers(0, 2**256 - 1), max_size=5),
)
def test_event_words_decode_as_eth_abi(
    a: int, b: int, flag: bool, h: bytes, ids: list[int], deltas: list[int], words: list[int]
) -> None:
    types = ["uint32", "int256", "bool", "bytes32", "uint32[]", "int256[]", "uint256[]"]
    data = abi_encode(types, [a, b, flag, h, ids, deltas, words])
    assert decode_words(types, data) == abi_decode(types, data)


def test_other_words_are_left_to_eth_abi() -> None:
    # a word out of its type's range, a fixed array, an address, short data: eth_abi's business
    assert decode_words(["uint8"], (256).to_bytes(32, "big")) is None
    assert decode_words(["bool"], (2).to_bytes(32, "big")) is None
    assert decode_words(["int8"], (200).to_bytes(32, "big")) is None
    assert decode_words(["uint32[]"], abi_encode(["uint256[]"], [[2**32]])) is None
    assert decode_words(["bytes32[2]"], b"\x01" * 64) is None
    assert decode_words(["address"], b"\x00" * 32) is None
    assert decode_words(["uint256", "uint256"], b"\x00" * 32) is None
    assert decode_words(["uint256[]"], (64).to_bytes(32, "big")) is None
