"""Chain side of the committed linearised network (contracts/SecurityVerifier.sol).

The DSO commits the network once: :func:`pack_network` turns a
:class:`~gridledger.market.justification.LinearNetwork` into bytes stored as the code of a
data contract (``0x00 || data``, like the fee table) and :func:`network_hash` is the
keccak256 commitment. Layout (big endian)::

    header (16 bytes): version u8 = 1 | scale_exp u8 = 9 | n_buses u16 | n_bus_rows u16
                       | n_line_rows u16 | n_trafo_rows u16 | interval_s u32 | 2 zero bytes
    body: R x n_buses int32, entry (r, b) at 16 + 4 * (r * n_buses + b)
          = npct (1e-9 % of the limit) of row r's margin gained per Wh cut at bus b

One data contract holds ``MAX_NETWORK_BYTES`` = 24,575 bytes: with one bus row per non-slack
bus and one row per branch of a radial feeder (R = 2 (B - 1)), up to B = 55 buses
(:func:`max_radial_buses`). A larger radial network is packed in version 2, from its
:class:`~gridledger.market.radial.RadialTree` (``LinearNetwork.tree``)::

    header: as above with version u8 = 2 (n_bus_rows = n_buses - 1)
    body: per bus (8 bytes): parent u16 | depth u16 | value int32,
          then per branch row (6 bytes): child u16 | value int32

which fits up to 1,754 buses in one data contract (:func:`max_tree_buses`). A meshed feeder
past :func:`max_meshed_buses` (443) buses is packed in version 3, from its spanning tree and
:class:`~gridledger.market.loops.LoopCorrection` (``LinearNetwork.loops``)::

    header: as version 2 with version u8 = 3, byte 14 = k loops, byte 15 = shift
    body: version 2's body (a loop-closing branch row has value 0),
          then per bus 2k int32 (its loop vector), then per row 2k int32 (its row vector)

Data over one contract is deployed in shards that a directory lists
(:mod:`~gridledger.ledger.shards`): a radial feeder of up to 65,535 buses (the u16 fields),
a meshed one of up to 14,297 buses with 4 loops, 25,367 with 2 (:func:`max_looped_buses`); larger
ones raise :class:`NetworkDataTooLarge`.

Per interval the verdict carries margin words (:func:`pack_margin`)::

    elementKind u8 <<248 | elementIndex u32 <<216 | marginNpct int64 <<152 | allowanceNpct u64 <<88

and, for the lp rule, one dual per margin word (scaled by ``DUAL_SCALE``).
:func:`verifier_args` builds every argument of ``verifyCurtailments`` after ``data``;
:func:`check_recorded` is the audit's reference check of recorded words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from eth_utils import keccak

from gridledger.errors import ChainError, SecurityError
from gridledger.ledger.encoding import pack_curtailment, pack_trades, unpack_curtailment
from gridledger.ledger.shards import (
    MAX_DATA_BYTES,
    MAX_SHARD_BYTES,
    MAX_SHARDS,
    DataTooLarge,
    init_code,
)
from gridledger.market.justification import (
    ELEMENT_KINDS,
    RULE_IDS,
    LinearNetwork,
    RowMargin,
    check_curtailments,
    linear_network_from_tree,
)
from gridledger.market.loops import LoopCorrection
from gridledger.market.orders import Curtailment, Trade
from gridledger.market.radial import RadialTree

__all__ = [
    "HEADER_BYTES",
    "MAX_NETWORK_BYTES",
    "NETWORK_VERSION",
    "SCALE_EXP",
    "NetworkDataTooLarge",
    "check_recorded",
    "data_contract_init_code",
    "looped_bytes",
    "max_looped_buses",
    "max_meshed_buses",
    "max_radial_buses",
    "max_tree_buses",
    "network_bytes",
    "network_hash",
    "pack_margin",
    "pack_network",
    "pack_tree",
    "unpack_margin",
    "unpack_network",
    "verifier_args",
]

HEADER_BYTES = 16
MAX_NETWORK_BYTES = MAX_SHARD_BYTES  # one data contract
NETWORK_VERSION = 1
TREE_VERSION = 2
LOOPS_VERSION = 3
SCALE_EXP = 9
U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
_KIND_NAMES = {v: k for k, v in ELEMENT_KINDS.items()}


class NetworkDataTooLarge(ChainError):
    """The packed network exceeds what the chain holds (:data:`MAX_SHARDS` data contracts)."""


def network_bytes(n_buses: int, n_rows: int) -> int:
    """Size of the packed network data."""
    return HEADER_BYTES + 4 * n_rows * n_buses


def tree_bytes(n_buses: int, n_branches: int) -> int:
    """Size of a version-2 (radial tree) network."""
    return HEADER_BYTES + 8 * n_buses + 6 * n_branches


def looped_bytes(n_buses: int, n_branches: int, n_loops: int) -> int:
    """Size of a version-3 (meshed, spanning tree and loop vectors) network."""
    n_rows = n_buses - 1 + n_branches
    return tree_bytes(n_buses, n_branches) + 8 * n_loops * (n_buses + n_rows)


def max_looped_buses(n_loops: int) -> int:
    """Largest meshed feeder (B - 1 + ``n_loops`` branches) whose version-3 data fits the
    :data:`MAX_SHARDS` data contracts a network may span (at most 65,535: the u16 fields)."""
    per_bus = 14 + 8 * n_loops * 3  # a bus, its tree branch and bus row, all loop vectors
    fixed = HEADER_BYTES - 6 + n_loops * (6 + 8 * n_loops) - 8 * n_loops * 2
    return min(0xFFFF, (MAX_DATA_BYTES - fixed) // per_bus)


def max_tree_buses() -> int:
    """Largest radial feeder (B - 1 branches) whose version-2 data fits one data contract."""
    return (MAX_NETWORK_BYTES - HEADER_BYTES + 6) // 14


def max_radial_buses(limit: int = MAX_NETWORK_BYTES) -> int:
    """Largest feeder with R = 2 (B - 1) rows whose dense data fits ``limit`` bytes (one
    data contract by default)."""
    b = 1
    while network_bytes(b + 1, 2 * b) <= limit:
        b += 1
    return b


def max_meshed_buses() -> int:
    """Largest feeder with R = 2 (B - 1) rows whose dense data fits :data:`MAX_SHARDS`
    shard contracts (a meshed feeder has a few more rows: its closing branches)."""
    return max_radial_buses(MAX_DATA_BYTES)


def pack_network(net: LinearNetwork) -> bytes:
    """The committed network as data-contract bytes (layout in the module docstring):
    version 3 for a network with loops, version 2 for a radial tree too large for one data
    contract in version 1, else version 1."""
    counts = (net.n_buses, net.n_bus_rows, net.n_line_rows, net.n_trafo_rows)
    if any(not 0 <= c <= 0xFFFF for c in counts) or not 0 < net.interval_s <= U32:
        message = f"network shape {counts} / interval {net.interval_s} s outside the header fields"
        raise ChainError(message)
    size = network_bytes(net.n_buses, net.n_rows)
    if net.loops is not None or (size > MAX_NETWORK_BYTES and net.tree is not None):
        return pack_tree(net)
    if size > MAX_DATA_BYTES:
        message = (
            f"linearised network of {net.n_buses} buses and {net.n_rows} rows needs "
            f"{size:,} bytes; {MAX_SHARDS} data contracts hold {MAX_DATA_BYTES:,} (a meshed "
            f"feeder of up to {max_meshed_buses()} buses; a radial one of up to 65,535 in "
            "tree form)"
        )
        raise NetworkDataTooLarge(message)
    header = _header(NETWORK_VERSION, counts, net.interval_s)
    return header + np.asarray(net.relief, dtype=np.int64).astype(">i4").tobytes()


def _header(version: int, counts: tuple[int, ...], interval_s: int) -> bytes:
    return (
        bytes([version, SCALE_EXP])
        + b"".join(c.to_bytes(2, "big") for c in counts)
        + interval_s.to_bytes(4, "big")
        + b"\x00\x00"
    )


def pack_tree(net: LinearNetwork) -> bytes:
    """``net`` in version 2 (its radial tree form) or, with loops, version 3, whatever its
    size."""
    tree, loops = net.tree, net.loops
    if tree is None:
        message = "pack_tree: the network has no tree form (a meshed feeder in dense form)"
        raise ChainError(message)
    counts = (net.n_buses, net.n_bus_rows, net.n_line_rows, net.n_trafo_rows)
    n_branches = net.n_line_rows + net.n_trafo_rows
    k = 0 if loops is None else loops.n_loops
    size = (
        tree_bytes(net.n_buses, n_branches)
        if loops is None
        else looped_bytes(net.n_buses, n_branches, k)
    )
    if size > MAX_DATA_BYTES or any(not 0 <= c <= 0xFFFF for c in counts) or k > 0xFF:
        kind = "radial" if loops is None else f"meshed ({k} loops)"
        message = (
            f"{kind} network of {net.n_buses} buses needs {size:,} bytes in its tree form; "
            f"{MAX_SHARDS} data contracts hold {MAX_DATA_BYTES:,} (the u16 fields 65,535 buses)"
        )
        raise NetworkDataTooLarge(message)
    nodes = np.zeros(net.n_buses, dtype=[("p", ">u2"), ("d", ">u2"), ("v", ">i4")])
    nodes["p"], nodes["d"], nodes["v"] = tree.parent, tree.depth, tree.bus_value
    branches = np.zeros(tree.branch_child.shape[0], dtype=[("c", ">u2"), ("v", ">i4")])
    branches["c"], branches["v"] = tree.branch_child, tree.branch_value
    if loops is None:
        head = _header(TREE_VERSION, counts, net.interval_s)
        return head + nodes.tobytes() + branches.tobytes()
    head = _header(LOOPS_VERSION, counts, net.interval_s)[:14] + bytes([k, loops.shift])
    vectors = np.vstack([loops.bus_vec, loops.row_vec]).astype(">i4")
    return head + nodes.tobytes() + branches.tobytes() + vectors.tobytes()


def _unpack_tree(data: bytes) -> LinearNetwork:
    """A version-2 or version-3 network (the audit's reader; refuses what the chain does)."""
    n_buses, n_bus, n_line, n_trafo = (int.from_bytes(data[i : i + 2], "big") for i in (2, 4, 6, 8))
    counts = (n_buses, n_bus, n_line, n_trafo)
    k = data[14] if data[0] == LOOPS_VERSION else 0
    size = tree_bytes(n_buses, n_line + n_trafo)
    if data[0] == LOOPS_VERSION:
        size = looped_bytes(n_buses, n_line + n_trafo, k)
    if len(data) != size or n_buses == 0 or n_bus != n_buses - 1:
        message = f"network data (tree): {len(data)} bytes, {counts} rows; header says {size}"
        raise ChainError(message)
    end = HEADER_BYTES + 8 * n_buses
    nodes = np.frombuffer(data[HEADER_BYTES:end], dtype=[("p", ">u2"), ("d", ">u2"), ("v", ">i4")])
    stop = end + 6 * (n_line + n_trafo)
    branches = np.frombuffer(data[end:stop], dtype=[("c", ">u2"), ("v", ">i4")])
    tree = RadialTree(
        *(nodes[k].astype(np.int64) for k in ("p", "d", "v")),
        *(branches[k].astype(np.int64) for k in ("c", "v")),
    )
    bad = tree.problem()
    if bad is not None:
        message = f"network data (tree): entry {bad} is not a tree node one deeper than its parent"
        raise ChainError(message)
    loops = None
    if data[0] == LOOPS_VERSION:
        vectors = np.frombuffer(data[stop:], dtype=">i4").astype(np.int64)
        vectors = vectors.reshape(n_buses + n_bus + n_line + n_trafo, 2 * k)
        loops = LoopCorrection(data[15], vectors[:n_buses], vectors[n_buses:])
    interval_s = int.from_bytes(data[10:14], "big")
    try:
        return linear_network_from_tree(tree, n_line, n_trafo, interval_s, loops)
    except SecurityError as error:
        message = f"network data (version {data[0]}): {error}"
        raise ChainError(message) from error


def unpack_network(data: bytes) -> LinearNetwork:
    """Inverse of :func:`pack_network` (what the audit reads back from chain)."""
    if len(data) >= HEADER_BYTES and data[0] in (TREE_VERSION, LOOPS_VERSION):
        return _unpack_tree(data)
    if len(data) < HEADER_BYTES or data[0] != NETWORK_VERSION:
        message = f"network data: {len(data)} bytes, version byte {data[:1].hex() or 'none'}"
        raise ChainError(message)
    n_buses, n_bus, n_line, n_trafo = (int.from_bytes(data[i : i + 2], "big") for i in (2, 4, 6, 8))
    n_rows = n_bus + n_line + n_trafo
    if len(data) != network_bytes(n_buses, n_rows):
        message = f"network data: {len(data)} bytes, header says {network_bytes(n_buses, n_rows)}"
        raise ChainError(message)
    body = np.frombuffer(data[HEADER_BYTES:], dtype=">i4").astype(np.int64)
    return LinearNetwork(
        n_buses=n_buses,
        n_bus_rows=n_bus,
        n_line_rows=n_line,
        n_trafo_rows=n_trafo,
        interval_s=int.from_bytes(data[10:14], "big"),
        relief=body.reshape(n_rows, n_buses),
    )


def network_hash(data: bytes) -> bytes:
    """keccak256 of the packed network: the DSO's commitment."""
    return bytes(keccak(data))


def pack_margin(m: RowMargin) -> int:
    """One margin word (layout in the module docstring)."""
    if m.element not in ELEMENT_KINDS or not 0 <= m.element_index <= U32:
        message = f"margin {m}: element must be one of {sorted(ELEMENT_KINDS)} with a u32 index"
        raise ChainError(message)
    if not -(1 << 63) <= m.margin_npct < (1 << 63) or not 0 <= m.allowance_npct <= U64:
        message = f"margin {m}: margin must fit int64 and allowance uint64 (npct)"
        raise ChainError(message)
    return (
        (ELEMENT_KINDS[m.element] << 248)
        | (m.element_index << 216)
        | ((m.margin_npct & U64) << 152)
        | (m.allowance_npct << 88)
    )


def unpack_margin(word: int) -> RowMargin:
    """Inverse of :func:`pack_margin`."""
    kind = word >> 248
    if kind not in _KIND_NAMES:
        message = f"margin word {word:#x}: element kind {kind} unknown"
        raise ChainError(message)
    raw = (word >> 152) & U64
    margin = raw - (1 << 64) if raw >> 63 else raw
    return RowMargin(_KIND_NAMES[kind], (word >> 216) & U32, margin, (word >> 88) & U64)


def data_contract_init_code(data: bytes) -> bytes:
    """Init code deploying a data contract whose code is ``0x00 || data`` (as Market does)."""
    try:
        return init_code(data)
    except DataTooLarge as error:
        raise NetworkDataTooLarge(str(error)) from error


def verifier_args(
    rule: str,
    trades: Sequence[Trade],
    curtailments: Sequence[Curtailment],
    margins: Sequence[RowMargin],
    certificate: Sequence[int],
) -> tuple[int, list[int], list[int], list[int], list[int]]:
    """``(cfg, trades, curtailments, margins, certificate)`` of ``verifyCurtailments``."""
    if rule not in RULE_IDS:
        message = f"congestion rule {rule!r} has no on-chain check; known: {sorted(RULE_IDS)}"
        raise ChainError(message)
    return (
        RULE_IDS[rule],
        pack_trades(trades),
        [pack_curtailment(c) for c in curtailments],
        [pack_margin(m) for m in margins],
        [int(y) for y in certificate],
    )


def check_recorded(
    data: bytes | LinearNetwork,
    rule: str,
    trades: Sequence[Trade],
    curtailment_words: Sequence[int],
    margin_words: Sequence[int],
    certificate: Sequence[int],
) -> int:
    """Audit: the reference check of recorded words against the committed network bytes.

    Raises :class:`~gridledger.market.justification.UnjustifiedCurtailment` (named after
    the contract's error) for an unjustified curtailment; returns the lp cost otherwise.
    ``data`` may be the network already unpacked (an audit unpacks it once).
    """
    return check_curtailments(
        data if isinstance(data, LinearNetwork) else unpack_network(data),
        rule,
        trades,
        [unpack_curtailment(w) for w in curtailment_words],
        [unpack_margin(w) for w in margin_words],
        certificate,
    )
