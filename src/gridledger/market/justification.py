"""Integer reference of the on-chain curtailment check (contracts/SecurityVerifier.sol).

The DSO commits a *linearised network* once (:class:`LinearNetwork`): for every monitored
row that a cut of generation can relieve, the integer growth of the row's margin per Wh cut
from a seller at each bus. Per interval it signs, for every violated row it curtails for, the
AC power-flow margin before curtailment and a linearisation allowance (:class:`RowMargin`).
:func:`check_curtailments` accepts the curtailments exactly when the contract does and raises
:class:`UnjustifiedCurtailment` named after the contract's custom error otherwise, checking
in the contract's order (so both report the same first error).

Units: margins in nano-percent of the limit (``NPCT_PER_PCT`` = 10**9 per percent; a
voltage margin of 0.01 p.u. is 1 % = 10**9 npct); relief in npct per Wh cut within one
interval; the lp rule's weight of a trade is ``seller price + 1`` micro-tokens per kWh (the
traded value a cut loses, plus one so every cut costs something); duals are scaled by
``DUAL_SCALE`` (10**18).

Rows (committed order): upper voltage bound of buses ``1..n_bus_rows`` (kind ``bus``), the
upward (towards the substation) loading of lines ``0..n_line_rows-1`` (kind ``line``) and of
transformers (kind ``trafo``). Under-voltage and downward overloads are not rows: cutting
generation never relieves them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridledger.errors import SecurityError
from gridledger.market.loops import LoopCorrection
from gridledger.market.orders import Curtailment, Trade
from gridledger.market.radial import RadialTree

__all__ = [
    "DUAL_LIMIT",
    "DUAL_SCALE",
    "ELEMENT_KINDS",
    "NPCT_PER_PCT",
    "RULE_IDS",
    "LinearNetwork",
    "RowMargin",
    "UnjustifiedCurtailment",
    "check_curtailments",
    "cut_per_trade",
    "linear_network_from_tree",
    "lp_weight",
]

NPCT_PER_PCT = 10**9
DUAL_SCALE = 10**18
DUAL_LIMIT = 1 << 96
RULE_IDS: dict[str, int] = {"greedy": 0, "lp": 1}
ELEMENT_KINDS: dict[str, int] = {"bus": 0, "line": 1, "trafo": 2}
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = (1 << 64) - 1


class UnjustifiedCurtailment(SecurityError):
    """Curtailments the chain would reject: ``error`` is SecurityVerifier's custom error name."""

    def __init__(self, error: str, args: tuple[int, ...], detail: str) -> None:
        super().__init__(f"unjustified curtailment: {error}{args}: {detail}")
        self.error = error
        self.args_ = args


@dataclass(frozen=True, eq=False)
class LinearNetwork:
    """The committed linearised network: ``relief[r, b]`` npct per Wh cut at bus ``b``."""

    n_buses: int
    n_bus_rows: int
    n_line_rows: int
    n_trafo_rows: int
    interval_s: int
    relief: np.ndarray
    tree: RadialTree | None = None
    """The radial form the relief was expanded from (committed as data version 2), if any;
    for a meshed feeder, its spanning tree (with ``loops``: data version 3)."""
    loops: LoopCorrection | None = None
    """A meshed feeder's loop correction of the tree's relief (market/loops.py), if any."""

    def __post_init__(self) -> None:
        shape = (self.n_rows, self.n_buses)
        if self.relief.shape != shape:
            msg = f"LinearNetwork: relief has shape {self.relief.shape}, expected {shape}"
            raise SecurityError(msg)
        if self.relief.dtype.kind != "i":
            msg = f"LinearNetwork: relief must be integers, got dtype {self.relief.dtype}"
            raise SecurityError(msg)
        if self.relief.size and (
            int(self.relief.min()) < INT32_MIN or int(self.relief.max()) > INT32_MAX
        ):
            msg = "LinearNetwork: relief entries must fit int32 (npct per Wh)"
            raise SecurityError(msg)

    @property
    def n_rows(self) -> int:
        return self.n_bus_rows + self.n_line_rows + self.n_trafo_rows

    def row_of(self, element: str, index: int) -> int | None:
        """Committed row of ``(element, index)``, None if the network has no such row."""
        if element == "bus":
            return index - 1 if 1 <= index <= self.n_bus_rows else None
        if element == "line":
            return self.n_bus_rows + index if 0 <= index < self.n_line_rows else None
        if element == "trafo":
            return (
                self.n_bus_rows + self.n_line_rows + index
                if 0 <= index < self.n_trafo_rows
                else None
            )
        return None

    def element_of(self, row: int) -> tuple[str, int]:
        """``(element, index)`` of committed ``row``."""
        if not 0 <= row < self.n_rows:
            msg = f"LinearNetwork: row {row} outside 0..{self.n_rows - 1}"
            raise SecurityError(msg)
        if row < self.n_bus_rows:
            return "bus", row + 1
        if row < self.n_bus_rows + self.n_line_rows:
            return "line", row - self.n_bus_rows
        return "trafo", row - self.n_bus_rows - self.n_line_rows

    def relief_at(self, row: int, bus: int) -> int:
        """Relief of ``row`` per Wh cut at ``bus`` (0 outside the network, as on chain)."""
        return int(self.relief[row, bus]) if 0 <= bus < self.n_buses else 0


@dataclass(frozen=True)
class RowMargin:
    """The DSO's signed margin of one violated row (npct): AC margin and its allowance."""

    element: str
    element_index: int
    margin_npct: int
    allowance_npct: int = 0

    @property
    def need_npct(self) -> int:
        """Relief the cuts must bring: allowance - margin."""
        return self.allowance_npct - self.margin_npct


def linear_network_from_tree(
    tree: RadialTree,
    n_line_rows: int,
    n_trafo_rows: int,
    interval_s: int,
    loops: LoopCorrection | None = None,
) -> LinearNetwork:
    """The network of a radial feeder from its compact form (bus rows of every non-root bus,
    then ``n_line_rows`` line and ``n_trafo_rows`` transformer rows, the tree's branches);
    with ``loops``, of a meshed feeder from its spanning tree and loop correction."""
    if tree.branch_child.shape[0] != n_line_rows + n_trafo_rows:
        msg = (
            f"radial network: {tree.branch_child.shape[0]} branch rows, "
            f"expected {n_line_rows} lines + {n_trafo_rows} transformers"
        )
        raise SecurityError(msg)
    n = tree.n_buses
    relief = tree.relief() if loops is None else loops.apply(tree.relief(), n - 1)
    return LinearNetwork(n, n - 1, n_line_rows, n_trafo_rows, interval_s, relief, tree, loops)


def lp_weight(trade: Trade) -> int:
    """Per-kWh cost of cutting ``trade`` in the lp rule: seller price + 1 micro-token."""
    return trade.seller_price_per_kwh_micro + 1


def cut_per_trade(n_trades: int, curtailments: Sequence[Curtailment]) -> list[int]:
    """Total Wh cut of each trade."""
    cut = [0] * n_trades
    for c in curtailments:
        cut[c.trade_index] += c.cut_wh
    return cut


def _fail(error: str, index: int, detail: str) -> UnjustifiedCurtailment:
    return UnjustifiedCurtailment(error, (index,), detail)


def _margin_rows(net: LinearNetwork, margins: Sequence[RowMargin]) -> list[int]:
    rows: list[int] = []
    for k, m in enumerate(margins):
        row = net.row_of(m.element, m.element_index)
        if (
            row is None
            or not INT64_MIN <= m.margin_npct <= INT64_MAX
            or not 0 <= m.allowance_npct <= U64_MAX
            or (rows and row <= rows[-1])
        ):
            raise _fail("BadMargin", k, f"{m} names no row, is out of range or not ascending")
        if m.margin_npct >= 0:
            raise _fail("NotViolated", k, f"{m} is not violated")
        rows.append(row)
    return rows


def _cuts(
    net: LinearNetwork,
    trades: Sequence[Trade],
    curtailments: Sequence[Curtailment],
    rows: Sequence[int],
) -> list[int]:
    cut = [0] * len(trades)
    for k, c in enumerate(curtailments):
        if not 0 <= c.trade_index < len(trades) or not 0 < c.cut_wh <= U64_MAX:
            raise _fail("MalformedCurtailment", k, f"{c} names no trade or cuts nothing")
        row = net.row_of(c.element, c.element_index)
        if row is None:
            raise _fail("UnknownElement", k, f"{c} names no committed row")
        if row not in rows:
            raise _fail("NoMargin", k, f"{c}: its row has no margin")
        trade = trades[c.trade_index]
        if net.relief_at(row, trade.seller_bus) <= 0:
            raise _fail("TradeDoesNotLoad", k, f"{c}: cutting the trade does not relieve the row")
        total = cut[c.trade_index] + c.cut_wh
        if total > trade.e_wh:
            raise _fail("CutExceedsTrade", k, f"{c}: {total} Wh cut of {trade.e_wh} Wh traded")
        cut[c.trade_index] = total
    return cut


def _certify(
    net: LinearNetwork,
    trades: Sequence[Trade],
    cut: Sequence[int],
    rows: Sequence[int],
    need: Sequence[int],
    certificate: Sequence[int],
    cost: int,
) -> None:
    if len(certificate) != len(rows):
        raise UnjustifiedCurtailment(
            "CertificateLength", (len(rows), len(certificate)), "one dual per margin row"
        )
    bound = 0
    for k, y in enumerate(certificate):
        if not 0 <= y < DUAL_LIMIT:
            raise _fail("DualOutOfRange", k, f"dual {y} outside 0..2**96-1")
        bound += (y + 1) * need[k]
    for t, trade in enumerate(trades):
        weight = DUAL_SCALE * lp_weight(trade)
        g = sum(
            y * net.relief_at(r, trade.seller_bus) for y, r in zip(certificate, rows, strict=True)
        )
        if g > weight:
            bound -= (g - weight) * trade.e_wh
        if cut[t]:
            bound += weight
    scaled = DUAL_SCALE * cost
    if scaled > bound:
        raise UnjustifiedCurtailment(
            "BadCurtailmentCertificate", (scaled, bound), "the cuts cost more than the dual bound"
        )


def check_curtailments(
    net: LinearNetwork,
    rule: str,
    trades: Sequence[Trade],
    curtailments: Sequence[Curtailment],
    margins: Sequence[RowMargin],
    certificate: Sequence[int] = (),
) -> int:
    """Raise :class:`UnjustifiedCurtailment` unless the chain accepts; the lp cost otherwise.

    The cost is ``sum_t cut_t * lp_weight(t)`` (micro-tokens per kWh x Wh), what
    ``verifyCurtailments`` returns.
    """
    if rule not in RULE_IDS:
        raise UnjustifiedCurtailment(
            "BadSecurityConfig", (-1,), f"rule {rule!r} not in {list(RULE_IDS)}"
        )
    rows = _margin_rows(net, margins)
    need = [m.need_npct for m in margins]
    cut = _cuts(net, trades, curtailments, rows)
    for k, row in enumerate(rows):
        after = -need[k] + sum(
            net.relief_at(row, trades[t].seller_bus) * wh for t, wh in enumerate(cut) if wh
        )
        if after < 0:
            raise _fail(
                "NotRelieved", k, f"{margins[k]}: linearised margin {after} npct after cuts"
            )
    cost = sum(wh * lp_weight(trades[t]) for t, wh in enumerate(cut) if wh)
    if rule == "lp":
        _certify(net, trades, cut, rows, need, certificate, cost)
    elif certificate:
        raise UnjustifiedCurtailment("CertificateLength", (0, len(certificate)), "greedy has none")
    return cost
