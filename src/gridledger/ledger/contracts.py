"""Typed access to the compiled contracts: artifacts, call encoding, events, errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

from gridledger.errors import ChainError
from gridledger.ledger.backends import LogEntry

__all__ = ["Artifact", "DecodedEvent", "artifact", "decode_error", "decode_words", "encode_words"]

CONTRACT_NAMES = (
    "Market",
    "EntryChecker",
    "SettlementToken",
    "FeeClearingVerifier",
    "UniformClearing",
    "SettlementCalculator",
    "SecurityVerifier",
)


def _type_of(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_of(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """An event decoded from a log: name, arguments by name, block number."""

    name: str
    args: dict[str, Any]
    block_number: int


_PLACEHOLDER = re.compile(r"__\$[0-9a-f]{34}\$__")
"""solc's placeholder for a library's address in unlinked bytecode."""


class Artifact:
    """A compiled contract: ABI, bytecode and encoders/decoders built from the ABI."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.name: str = data["contractName"]
        self.abi: list[dict[str, Any]] = data["abi"]
        self._code_hex: str = data["bytecode"][2:]
        self.deployed_hex: str = data["deployedBytecode"][2:]
        """Runtime code as in the artifact (hex; placeholders where libraries link)."""
        self.library_slots: frozenset[str] = frozenset(_PLACEHOLDER.findall(self._code_hex))
        """Placeholders of the libraries this bytecode must be linked to (Market: one)."""
        self.bytecode = b"" if self.library_slots else bytes.fromhex(self._code_hex)
        self.compiler: dict[str, Any] = data["compiler"]
        self._functions: dict[str, tuple[bytes, list[str], list[str]]] = {}
        self._events: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
        self._errors: dict[bytes, tuple[str, list[str]]] = {}
        self._constructor: list[str] = []
        for item in self.abi:
            kind = item["type"]
            if kind == "constructor":
                self._constructor = [_type_of(p) for p in item["inputs"]]
            elif kind == "function":
                types = [_type_of(p) for p in item["inputs"]]
                selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
                self._functions[item["name"]] = (
                    selector,
                    types,
                    [_type_of(p) for p in item["outputs"]],
                )
            elif kind == "event":
                types = [_type_of(p) for p in item["inputs"]]
                topic = keccak(f"{item['name']}({','.join(types)})".encode())
                self._events[topic] = (item["name"], item["inputs"])
            elif kind == "error":
                types = [_type_of(p) for p in item["inputs"]]
                selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
                self._errors[selector] = (item["name"], types)

    def deploy_data(self, *args: Any, library: bytes | None = None) -> bytes:
        """Creation code and constructor arguments; ``library``: the address the linked
        library is deployed at (every placeholder of the bytecode is replaced by it)."""
        code = self.bytecode
        if self.library_slots:
            if library is None or len(library) != 20:
                message = f"{self.name} must be linked to its library's address to be deployed"
                raise ChainError(message)
            linked = self._code_hex
            for slot in self.library_slots:
                linked = linked.replace(slot, library.hex())
            code = bytes.fromhex(linked)
        return code + encode(self._constructor, list(args))

    def encode_call(self, function: str, *args: Any) -> bytes:
        if function not in self._functions:
            message = f"{self.name} has no function {function!r}"
            raise ChainError(message)
        selector, types, _ = self._functions[function]
        fast = encode_words(types, args)
        return selector + (fast if fast is not None else encode(types, list(args)))

    def decode_output(self, function: str, data: bytes) -> tuple[Any, ...]:
        _, _, outputs = self._functions[function]
        return tuple(decode(outputs, data))

    def error_names(self) -> list[str]:
        return sorted(name for name, _ in self._errors.values())

    def decode_error(self, data: bytes) -> tuple[str, tuple[Any, ...]] | None:
        if len(data) < 4 or data[:4] not in self._errors:
            return None
        name, types = self._errors[data[:4]]
        return name, tuple(decode(types, data[4:]))

    def decode_log(
        self, topics: tuple[bytes, ...], data: bytes, block_number: int
    ) -> DecodedEvent | None:
        if not topics or topics[0] not in self._events:
            return None
        name, inputs = self._events[topics[0]]
        indexed = [p for p in inputs if p["indexed"]]
        plain = [p for p in inputs if not p["indexed"]]
        values = _decode([_type_of(p) for p in plain], data)
        args: dict[str, Any] = dict(zip((p["name"] for p in plain), values, strict=True))
        for param, topic in zip(indexed, topics[1:], strict=True):
            args[param["name"]] = _decode([_type_of(param)], topic)[0]
        return DecodedEvent(name, args, block_number)

    def decode_logs(self, entries: Iterable[LogEntry], address: bytes) -> list[DecodedEvent]:
        """The events of this contract at ``address`` among ``entries``, in order."""
        out = []
        for entry in entries:
            if entry.address != address:
                continue
            event = self.decode_log(entry.topics, entry.data, entry.block_number)
            if event is not None:
                out.append(event)
        return out


_WORD_ARRAYS = ("uint256[]", "bytes32[]")


def _word(kind: str, value: Any) -> bytes | None:
    """One 32-byte ABI word of a ``uintN``, ``bool``, ``uint256`` or ``bytes32`` value
    (None: another type or value, left to eth_abi)."""
    if kind == "bytes32":
        return value if type(value) is bytes and len(value) == 32 else None
    if kind == "bool":
        return (b"\x00" * 31 + bytes([value])) if type(value) is bool else None
    bits = kind[4:] if kind.startswith("uint") else ""
    if type(value) is not int or not bits.isdigit() or not 0 <= value < 1 << int(bits):
        return None
    return value.to_bytes(32, "big")


def encode_words(types: list[str], args: tuple[Any, ...]) -> bytes | None:
    """The ABI encoding of ``args`` when every type is a ``uintN``, ``bool`` or a
    ``uint256[]`` / ``bytes32[]`` of exactly such values (the Market's interval calls, with
    their lists of thousands of words; eth_abi takes a few microseconds per word); None
    for anything else, which eth_abi then encodes or refuses with its own error."""
    if len(types) != len(args):
        return None
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = 32 * len(types)
    for kind, value in zip(types, args, strict=True):
        if kind in _WORD_ARRAYS:
            if not isinstance(value, list | tuple):
                return None
            element = kind[:-2]
            words = [_word(element, v) for v in value]
            if any(w is None for w in words):
                return None
            tail = len(words).to_bytes(32, "big") + b"".join(w for w in words if w is not None)
            heads.append(offset.to_bytes(32, "big"))
            tails.append(tail)
            offset += len(tail)
            continue
        word = _word(kind, value)
        if word is None or kind == "bytes32":
            return None
        heads.append(word)
    return b"".join(heads) + b"".join(tails)


def _value(kind: str, word: bytes) -> Any:
    """A ``uintN``, ``intN``, ``bool`` or ``bytes32`` ABI word as eth_abi decodes it (None:
    another type, or a word eth_abi would refuse)."""
    if kind == "bytes32":
        return word
    if kind == "bool":
        flag = int.from_bytes(word, "big")
        return None if flag > 1 else flag == 1
    signed = kind.startswith("int")
    bits = kind[3:] if signed else kind[4:] if kind.startswith("uint") else ""
    if not bits.isdigit():
        return None
    value = int.from_bytes(word, "big", signed=signed)
    top = 1 << (int(bits) - 1 if signed else int(bits))
    return value if (-top if signed else 0) <= value < top else None


def decode_words(types: list[str], data: bytes) -> tuple[Any, ...] | None:
    """The ABI decoding of ``data`` when every type is a ``uintN``, ``intN``, ``bool``,
    ``bytes32`` or a dynamic array of one of them (the Market's events, with their lists of
    thousands of words; eth_abi takes microseconds per word), equal to eth_abi's (arrays as
    tuples); None for anything else or any word eth_abi would refuse, left to eth_abi."""
    if len(data) < 32 * len(types):
        return None
    out: list[Any] = []
    for k, kind in enumerate(types):
        head = data[32 * k : 32 * k + 32]
        if not kind.endswith("[]"):
            value = _value(kind, head)
            if value is None:
                return None
            out.append(value)
            continue
        element = kind[:-2]
        start = int.from_bytes(head, "big")
        if start % 32 or start + 32 > len(data) or "[" in element:
            return None
        n = int.from_bytes(data[start : start + 32], "big")
        first = start + 32
        if first + 32 * n > len(data):
            return None
        if element == "uint256":
            items: list[Any] = [
                int.from_bytes(data[i : i + 32], "big") for i in range(first, first + 32 * n, 32)
            ]
        else:
            items = [_value(element, data[i : i + 32]) for i in range(first, first + 32 * n, 32)]
            if any(v is None for v in items):
                return None
        out.append(tuple(items))
    return tuple(out)


def _decode(types: list[str], data: bytes) -> tuple[Any, ...]:
    fast = decode_words(types, data)
    return fast if fast is not None else tuple(decode(types, data))


@cache
def artifact(name: str) -> Artifact:
    """Load the committed artifact ``name`` (``Market`` or ``SettlementToken``)."""
    try:
        text = (
            resources.files("gridledger.ledger").joinpath("artifacts", f"{name}.json").read_text()
        )
    except (FileNotFoundError, OSError) as error:
        message = f"contract artifact {name}.json missing in gridledger/ledger/artifacts: run node scripts/compile_contracts.mjs"
        raise ChainError(message) from error
    return Artifact(json.loads(text))


def decode_error(data: bytes) -> str:
    """Readable name and arguments of a custom error from any of the contracts."""
    for name in CONTRACT_NAMES:
        found = artifact(name).decode_error(data)
        if found is not None:
            error, args = found
            shown = ", ".join(f"0x{a.hex()}" if isinstance(a, bytes) else str(a) for a in args)
            return f"{error}({shown})"
    if not data:
        return "reverted without data (out of gas or invalid opcode)"
    return f"unknown revert data 0x{data.hex()}"
