"""Fees in path form as committed on chain (contracts/PathFees.sol), and read back.

The data is what :func:`~gridledger.market.path_fees.path_layout` computes, packed big-endian
after a 64-byte header (all entries uint32):

    MAGIC (32) | nBuses u32 | tour length E u32 | levels K u8 | portals S u8 | flat u32
    | 18 zero bytes | first (nBuses) | sparse table (K rows of E) | portal fees (nBuses x S)

The sparse table's row ``k`` holds ``min(level[i : i + 2**k])`` (zero past ``E - 2**k``), so
the verifier finds the minimum of any range with two reads. ``K`` is the bit length of ``E``.
:func:`unpack_path_fees` checks what ``PathFees.check`` checks (sizes and ranges), so the
audit refuses by name what the chain refuses; the table is then computed by the verifier's
formula from the committed rows, whatever they hold (:func:`sparse_consistent` tells whether
they are the range minima of their levels, as :func:`pack_path_fees` writes them).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from eth_utils import keccak

from gridledger.errors import ChainError
from gridledger.market.path_fees import PathFees, PathLayout, sparse_minima, table_from_layout

__all__ = [
    "PATH_MAGIC",
    "is_path_form",
    "pack_path_fees",
    "path_table",
    "sparse_consistent",
    "unpack_path_fees",
    "zero_path_fees",
]

PATH_MAGIC = keccak(b"gridledger.PathFees.v1")
HEADER_BYTES = 64
LIMIT = 1 << 30  # levels, portal fees and the flat fee (so every fee is below 2**32)
MAX_TOUR = 1 << 17
MAX_PORTALS = 64
MAX_BUSES = 65536


def is_path_form(packed: bytes) -> bool:
    """Whether committed fee data is in path form (it starts with :data:`PATH_MAGIC`)."""
    return len(packed) >= HEADER_BYTES and packed[:32] == PATH_MAGIC


def pack_path_fees(fees: PathFees) -> bytes:
    """The path-form data of ``fees`` (:class:`ChainError` naming a limit it exceeds)."""
    layout = fees.layout
    b, e, s = fees.n_buses, int(layout.level.shape[0]), int(layout.portals.shape[0])
    if b > MAX_BUSES or e > MAX_TOUR:
        message = f"path fees: {b:,} buses; the chain allows at most {MAX_BUSES:,}"
        raise ChainError(message)
    if s > MAX_PORTALS:
        message = (
            f"path fees: the feeder's loops have {s} end buses (portals); the chain checks at "
            f"most {MAX_PORTALS}: use the table form (market.fee_form) or run off chain"
        )
        raise ChainError(message)
    top = max(int(layout.level.max()), int(layout.portal_fee.max(initial=0)), layout.flat)
    if top >= LIMIT:
        message = (
            f"path fees: a path fee of {top:,} micro-tokens per kWh is too large for the chain "
            f"(at most {LIMIT - 1:,})"
        )
        raise ChainError(message)
    table = sparse_minima(layout.level)
    head = (
        b.to_bytes(4, "big")
        + e.to_bytes(4, "big")
        + bytes([table.shape[0], s])
        + layout.flat.to_bytes(4, "big")
    )
    parts = [layout.first, table.ravel(), layout.portal_fee.ravel()]
    body = np.concatenate(parts).astype(">u4").tobytes()
    return PATH_MAGIC + head.ljust(32, b"\0") + body


def zero_path_fees(n_buses: int) -> PathFees:
    """No fees on ``n_buses`` buses, in path form (a star around bus 0)."""
    leaves = np.arange(1, n_buses, dtype=np.int64)
    zeros = np.zeros(n_buses - 1, dtype=np.int64)
    return PathFees(n_buses, zeros, leaves, zeros.copy())


def _u32(packed: bytes, start: int, count: int) -> npt.NDArray[np.int64]:
    return np.frombuffer(packed, dtype=">u4", count=count, offset=start).astype(np.int64)


def unpack_path_fees(packed: bytes) -> PathLayout:
    """The layout committed in path-form data, checked as ``PathFees.check`` does."""
    head = packed[32:HEADER_BYTES]
    b = int.from_bytes(head[0:4], "big")
    e = int.from_bytes(head[4:8], "big")
    k, s = head[8], head[9]
    flat = int.from_bytes(head[10:14], "big")
    expected = HEADER_BYTES + 4 * (b + k * e + b * s)
    if (
        not 1 <= b <= MAX_BUSES
        or not 1 <= e <= MAX_TOUR
        or k != e.bit_length()
        or s > MAX_PORTALS
        or flat >= LIMIT
        or any(head[14:])
        or len(packed) != expected
    ):
        message = f"path fees: malformed header or length ({len(packed):,} bytes)"
        raise ChainError(message)
    first = _u32(packed, HEADER_BYTES, b)
    table = _u32(packed, HEADER_BYTES + 4 * b, k * e).reshape(k, e)
    portal_fee = _u32(packed, HEADER_BYTES + 4 * (b + k * e), b * s).reshape(b, s)
    if np.any(first >= e):
        message = f"path fees: bus {int(np.argmax(first >= e))} is outside the tour"
        raise ChainError(message)
    if np.any(table[0] >= LIMIT) or np.any(portal_fee >= LIMIT):
        message = "path fees: a level or portal fee is 2**30 or more"
        raise ChainError(message)
    return PathLayout(
        first=first,
        level=table[0].copy(),
        portals=np.zeros(s, dtype=np.int64),  # not committed: only their fees are
        portal_fee=portal_fee,
        flat=flat,
        sparse=table,
    )


def sparse_consistent(layout: PathLayout) -> bool:
    """Whether committed rows are the range minima of their levels (then every fee is the
    least path fee of the layout; otherwise it is what the rows make of it)."""
    return layout.sparse is None or bool(np.array_equal(layout.sparse, sparse_minima(layout.level)))


def path_table(packed: bytes, n_buses: int) -> npt.NDArray[np.int64]:
    """The (n_buses, n_buses) fee table that path-form data stands for."""
    layout = unpack_path_fees(packed)
    if layout.first.shape[0] != n_buses:
        message = f"path fees cover {layout.first.shape[0]:,} buses, expected {n_buses:,}"
        raise ChainError(message)
    return table_from_layout(layout)
