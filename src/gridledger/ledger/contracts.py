"""Typed access to the compiled contracts: artifacts, call encoding, events, errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

from gridledger.errors import ChainError
from gridledger.ledger.backends import LogEntry

__all__ = ["Artifact", "DecodedEvent", "artifact", "decode_error"]

CONTRACT_NAMES = (
    "Market",
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


class Artifact:
    """A compiled contract: ABI, bytecode and encoders/decoders built from the ABI."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.name: str = data["contractName"]
        self.abi: list[dict[str, Any]] = data["abi"]
        self.bytecode = bytes.fromhex(data["bytecode"][2:])
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

    def deploy_data(self, *args: Any) -> bytes:
        return self.bytecode + encode(self._constructor, list(args))

    def encode_call(self, function: str, *args: Any) -> bytes:
        if function not in self._functions:
            message = f"{self.name} has no function {function!r}"
            raise ChainError(message)
        selector, types, _ = self._functions[function]
        return selector + encode(types, list(args))

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
        values = decode([_type_of(p) for p in plain], data)
        args: dict[str, Any] = dict(zip((p["name"] for p in plain), values, strict=True))
        for param, topic in zip(indexed, topics[1:], strict=True):
            args[param["name"]] = decode([_type_of(param)], topic)[0]
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
