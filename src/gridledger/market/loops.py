"""The committed network of a meshed feeder in O(buses x loops) integers (SecurityVerifier data v3).

A meshed feeder's linear model is its spanning tree's plus a correction of rank ``k``, one
per loop-closing branch (chord). Closing chord ``l`` (ends ``f``, ``t``, impedance ``z_l``)
adds ``a_l a_l^T / z_l`` to the tree's admittance matrix, ``a_l = e_f - e_t``, so with
``W = Z_tree A`` (B x k) and ``M = diag(z) + A^T Z_tree A`` (k x k) the Woodbury identity gives

    Z = Z_tree - W M^-1 W^T.

Every committed row is linear in a column of ``Z``: a bus row in ``Z[j, b]``, a branch row
in ``(Z[u, b] - Z[v, b]) / z`` over its ends, a chord row is the chord's current, the
``l``-th entry of ``h_b = M^-1 W[b]^T``. So each row ``r`` has a complex k-vector ``g_r``
with ``relief = tree relief + Re(g_r . h_b)``, and the real part of the complex dot product
is a real dot product of length 2k: ``[Re g, -Im g] . [Re h, Im h]``.

:class:`LoopCorrection` holds those vectors as integers, ``bus_vec`` (B x 2k) and
``row_vec`` (R x 2k), and one ``shift``: the correction of row ``r`` at bus ``b`` is
``(row_vec[r] . bus_vec[b] + 2**(shift-1)) >> shift`` (floor division, so half up; no
rounding term when ``shift`` is 0), exactly as the contract computes it. A bus row's relief
is its tree relief plus the correction; a branch row's is the absolute value of the sum
(the committed rows measure flow magnitude, as the dense form's ``|PTDF|``). The builder
from a feeder is :func:`gridledger.security.meshed_network.looped_network`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.errors import SecurityError

__all__ = ["DENSE_MESHED_MAX_BUSES", "LoopCorrection"]

DENSE_MESHED_MAX_BUSES = 443
"""Largest meshed feeder committed in the dense form (its R x B int32 entries fill at most
the 64 data contracts a network may span; ledger/network_data.py's ``max_meshed_buses``).
Larger meshed feeders are committed with a :class:`LoopCorrection`."""

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True, eq=False)
class LoopCorrection:
    """Integer loop vectors of every bus and row, and the shift of their dot products."""

    shift: int
    bus_vec: np.ndarray
    row_vec: np.ndarray

    def __post_init__(self) -> None:
        if not 0 <= self.shift <= 255:
            msg = f"LoopCorrection: shift {self.shift} outside 0..255 (a u8 of the header)"
            raise SecurityError(msg)
        for name in ("bus_vec", "row_vec"):
            vec = getattr(self, name)
            if vec.ndim != 2 or vec.shape[1] % 2 or vec.dtype.kind != "i":
                msg = f"LoopCorrection: {name} must be an integer (n, 2k) array, got {vec.shape}"
                raise SecurityError(msg)
            if vec.size and (int(vec.min()) < INT32_MIN or int(vec.max()) > INT32_MAX):
                msg = f"LoopCorrection: {name} entries must fit int32"
                raise SecurityError(msg)
        if self.bus_vec.shape[1] != self.row_vec.shape[1]:
            msg = (
                f"LoopCorrection: bus vectors have {self.bus_vec.shape[1]} entries, "
                f"row vectors {self.row_vec.shape[1]}"
            )
            raise SecurityError(msg)

    @property
    def n_loops(self) -> int:
        return int(self.bus_vec.shape[1] // 2)

    def correction(self) -> np.ndarray:
        """``(R, B)`` int64: the rounded, shifted dot products, exact (no float anywhere)."""
        rows = self.row_vec.astype(np.int64)
        buses = self.bus_vec.astype(np.int64)
        bound = (
            int(np.abs(rows).max(initial=0))
            * int(np.abs(buses).max(initial=0))
            * max(1, rows.shape[1])
        )
        if bound >= (1 << 62):  # products beyond int64: Python integers (extreme data only)
            rows, buses = rows.astype(object), buses.astype(object)
        dot = rows @ buses.T
        if self.shift:
            dot = (dot + (1 << (self.shift - 1))) >> self.shift
        if dot.dtype == object:
            if dot.size and (int(dot.min()) < INT32_MIN or int(dot.max()) > INT32_MAX):
                msg = "LoopCorrection: a correction does not fit int32"
                raise SecurityError(msg)
            return dot.astype(np.int64)
        return np.asarray(dot, dtype=np.int64)

    def apply(self, tree_relief: np.ndarray, n_bus_rows: int) -> np.ndarray:
        """The meshed relief from the spanning tree's: plus the correction, branch rows in
        absolute value."""
        if tree_relief.shape != (self.row_vec.shape[0], self.bus_vec.shape[0]):
            msg = (
                f"LoopCorrection: {self.row_vec.shape[0]} row and {self.bus_vec.shape[0]} bus "
                f"vectors for a relief of shape {tree_relief.shape}"
            )
            raise SecurityError(msg)
        out = tree_relief.astype(np.int64) + self.correction()
        np.abs(out[n_bus_rows:], out=out[n_bus_rows:])
        return out
