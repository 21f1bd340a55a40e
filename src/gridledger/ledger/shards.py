"""Committed data beyond one contract: shard contracts and their directory.

A fee table or a linearised network is stored as the code of a data contract (``0x00 ||
bytes``, so it never runs) and read on chain with EXTCODECOPY. One contract holds
:data:`MAX_SHARD_BYTES` (EIP-170). Larger data is split into chunks, each deployed by the
operator as its own data contract (a *shard*), and the Market is given a small directory
instead of the data (contracts/DataShards.sol)::

    MAGIC (32) | total u256 (32) | per shard: address word (32) | code hash (32)

The code hash is keccak256 of the shard's code ``0x00 || chunk``. The directory is what
the Market stores, hashes and emits, and what the responsible party (the DSO for the
network) signs, so the hashes in it bind every chunk. The verifiers check each shard's
EXTCODEHASH against the directory before they use a byte; :func:`resolve` is the same
check for the audit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eth_utils import keccak

from gridledger.errors import ChainError

__all__ = [
    "MAGIC",
    "MAX_DATA_BYTES",
    "MAX_SHARDS",
    "MAX_SHARD_BYTES",
    "DataTooLarge",
    "ShardError",
    "code_hash",
    "directory",
    "init_code",
    "is_directory",
    "resolve",
    "split",
]

MAGIC = keccak(b"gridledger.DataShards.v1")
MAX_SHARD_BYTES = 24_575  # EIP-170 code size limit - 1 (the leading 0x00)
MAX_SHARDS = 64  # 1.57 MB: loading it costs about 5M gas of memory per verification
MAX_DATA_BYTES = MAX_SHARDS * MAX_SHARD_BYTES


class DataTooLarge(ChainError):
    """Data too large for :data:`MAX_SHARDS` shard contracts."""


class ShardError(ChainError):
    """A directory or a shard read from the chain does not hold what it claims."""


def split(data: bytes) -> list[bytes]:
    """``data`` in chunks of at most :data:`MAX_SHARD_BYTES` (one chunk if it fits)."""
    if len(data) > MAX_DATA_BYTES:
        message = (
            f"data of {len(data):,} bytes needs more than {MAX_SHARDS} shard contracts "
            f"({MAX_DATA_BYTES:,} bytes)"
        )
        raise DataTooLarge(message)
    return [data[k : k + MAX_SHARD_BYTES] for k in range(0, len(data), MAX_SHARD_BYTES)] or [b""]


def code_hash(chunk: bytes) -> bytes:
    """EXTCODEHASH of the shard holding ``chunk`` (its code is ``0x00 || chunk``)."""
    return bytes(keccak(b"\x00" + chunk))


def init_code(chunk: bytes) -> bytes:
    """Init code deploying a data contract whose code is ``0x00 || chunk`` (as Market does)."""
    if len(chunk) > MAX_SHARD_BYTES:
        message = f"data of {len(chunk):,} bytes exceeds one data contract ({MAX_SHARD_BYTES:,})"
        raise DataTooLarge(message)
    size = len(chunk) + 1
    # PUSH2 size, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN; then the code
    return b"\x61" + size.to_bytes(2, "big") + bytes.fromhex("80600c6000396000f3") + b"\x00" + chunk


def directory(chunks: Sequence[bytes], addresses: Sequence[bytes]) -> bytes:
    """The directory of ``chunks`` deployed at ``addresses`` (same order)."""
    if len(chunks) != len(addresses) or not chunks:
        message = f"{len(chunks)} chunks but {len(addresses)} shard addresses"
        raise ChainError(message)
    total = sum(len(c) for c in chunks)
    body = b"".join(
        bytes(12) + bytes(a) + code_hash(c) for c, a in zip(chunks, addresses, strict=True)
    )
    return MAGIC + total.to_bytes(32, "big") + body


def is_directory(data: bytes) -> bool:
    """Whether committed bytes are a shard directory (start with :data:`MAGIC`)."""
    return len(data) >= 64 and data[:32] == MAGIC


def resolve(data: bytes, code_at: Callable[[bytes], bytes]) -> bytes:
    """The committed bytes behind ``data`` (a data contract's code after its first byte):
    ``data`` itself, or for a directory its shards' chunks, read with ``code_at(address)``
    and checked like contracts/DataShards.sol checks them (:class:`ShardError` names the
    shard and what is wrong)."""
    if not is_directory(data):
        return data
    n = (len(data) - 64) // 64
    total = int.from_bytes(data[32:64], "big")
    if n == 0 or len(data) != 64 + 64 * n or total > n * MAX_SHARD_BYTES:
        message = f"shard directory of {len(data)} bytes is malformed (total {total})"
        raise ShardError(message)
    out = bytearray()
    for i in range(n):
        entry = data[64 + 64 * i : 128 + 64 * i]
        if any(entry[:12]):
            message = f"shard directory entry {i}: the address word has non-zero high bytes"
            raise ShardError(message)
        address, want = entry[12:32], entry[32:]
        code = code_at(address)
        if not code or bytes(keccak(code)) != want:
            message = (
                f"shard {i} at 0x{address.hex()}: code hash {keccak(code).hex()} is not the "
                f"directory's {want.hex()}"
            )
            raise ShardError(message)
        out += code[1:]
    if len(out) != total:
        message = f"shards hold {len(out):,} bytes, the directory says {total:,}"
        raise ShardError(message)
    return bytes(out)
