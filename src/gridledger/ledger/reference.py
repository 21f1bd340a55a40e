"""Reference clearing and settlement inputs computed from market records and chain data.

The chain checks a clearing instead of searching for it (except the uniform rule, which
matches the sorted book itself): :func:`clearing_call` runs the market's reference rule
and builds the Market call with its hints. :func:`deltas_from_event` and
:func:`unpack_fee_table` read chain data back into the market's forms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import DecodedEvent
from gridledger.ledger.deploy import NETWORK_SIGNED_ONLY, NetworkCommitment
from gridledger.ledger.fee_clearing import dual_words, greedy_entries, greedy_order, optimal_parties
from gridledger.ledger.path_data import is_path_form, path_table
from gridledger.market.double_auction import sorted_books
from gridledger.market.greedy import clear_greedy
from gridledger.market.optimal import solve_optimal
from gridledger.market.orders import Bid, Curtailment, Side, Trade, apply_curtailments
from gridledger.market.settlement import GRID, OPERATOR

__all__ = [
    "ClearingCall",
    "binding_lock_micro",
    "clearing_call",
    "delivered",
    "deltas_from_event",
    "merge_settlement_pages",
    "settlement_parties",
    "unpack_fee_table",
    "verdict_entries",
]


@dataclass(frozen=True, slots=True)
class ClearingCall:
    """A Market clearing call: function, arguments after the interval, and the number of
    trades submitted (None: uniform, the chain matches the book itself); ``entries``: what a
    paged verification runs over (greedy:
    :func:`~gridledger.ledger.fee_clearing.greedy_entries`; optimal: the trades, the bids and
    one final check), None for the uniform rule (one transaction)."""

    function: str
    args: tuple[Any, ...]
    n_trades: int | None
    entries: int | None = None

    @property
    def trade_words(self) -> list[int]:
        """The trade words submitted (a fee rule's; none for the uniform rule)."""
        if self.function == "clearGreedy":
            return list(self.args[-1])
        return list(self.args[1]) if self.function == "clearOptimal" else []


def clearing_call(
    rule: str,
    words: Sequence[int],
    fees: npt.NDArray[np.int64] | None,
    kappa: Fraction,
) -> ClearingCall:
    """The call that clears the bid ``words`` of an interval on chain with ``rule``.

    Greedy / optimal: the reference (:func:`~gridledger.market.greedy.clear_greedy` /
    :func:`~gridledger.market.optimal.solve_optimal`) with its hints (queue order /
    party indexes, the welfare duals and the tie-break duals, which together certify that
    the trades are the canonical optimum). Uniform: the sorted book's order only.
    """
    bids = [enc.unpack_bid(w) for w in words]
    if rule == "greedy":
        result = clear_greedy(bids, fees, kappa).trades
        trades = enc.pack_trades(result)
        order, n_buys = greedy_order(bids)
        args: tuple[Any, ...] = (list(words), order, n_buys, trades)
        return ClearingCall("clearGreedy", args, len(result), greedy_entries(bids, result))
    if rule == "optimal":
        sol = solve_optimal(bids, fees, kappa)
        trades = enc.pack_trades(sol.trades)
        parties = optimal_parties(bids, sol.trades)
        duals = dual_words(
            bids,
            sol.buyer_dual,
            sol.seller_dual,
            sol.tie_buyer_dual,
            sol.tie_seller_dual,
            n_buses=0 if fees is None else int(np.shape(fees)[0]),
        )
        args = (list(words), trades, parties, duals)
        entries = len(parties) + len(words) + 1  # the trades, the bids, the final check
        return ClearingCall("clearOptimal", args, len(trades) // 2, entries)
    index = {b.member: k for k, b in enumerate(bids)}
    buys, sells = sorted_books(bids)
    order = [index[b.member] for b in buys] + [index[b.member] for b in sells]
    return ClearingCall("clear", (list(words), order, len(buys)), None)


def verdict_entries(
    network: NetworkCommitment | None, curtailments: int, margins: int, trades: int
) -> int:
    """The entries a verdict's check runs over (``Market.recordSecurity``'s ``upTo``): a
    curtailed verdict checked against a committed network has its margin rows, its trades
    (their terms of the lp bound) and one final entry; any other verdict one (a signed-only
    network's or, refused on chain, one without a network)."""
    checked = curtailments and network is not None and network.cfg != NETWORK_SIGNED_ONLY
    return margins + trades + 1 if checked else 1


def delivered(
    interval: int, trades: tuple[Trade, ...], curtailments: Sequence[Curtailment]
) -> tuple[Trade, ...]:
    """The trades as delivered after ``curtailments`` (what the chain settles)."""
    try:
        return apply_curtailments(trades, list(curtailments))
    except Exception as error:
        message = f"record_security {interval}: {error}"
        raise ChainError(message) from error


def settlement_parties(
    interval: int, delivery: Sequence[Trade], readings: Sequence[int]
) -> list[int]:
    """Per delivered trade ``buyer_reading_index << 128 | seller_reading_index``."""
    position = {w >> 224: k for k, w in enumerate(readings)}
    missing = sorted({m for t in delivery for m in (t.buyer, t.seller)} - set(position))
    if missing:
        message = f"settle {interval}: traded members {missing} have no meter reading"
        raise ChainError(message)
    return [(position[t.buyer] << 128) | position[t.seller] for t in delivery]


def binding_lock_micro(bid: Bid, retail_per_kwh_micro: int) -> int:
    """Escrow the Market locks for a binding bid (``Market._lockBinding``): a buyer's
    payment ``floor(eWh * price / 1000)``, a seller's worst-case shortfall penalty
    ``ceil(eWh * (retail - price) / 1000) + 1`` (micro-tokens)."""
    if bid.side == Side.BUY:
        return bid.e_wh * bid.price_per_kwh_micro // 1000
    return -(-bid.e_wh * (retail_per_kwh_micro - bid.price_per_kwh_micro) // 1000) + 1


def merge_settlement_pages(events: Sequence[DecodedEvent]) -> list[DecodedEvent]:
    """``events`` with every paged settlement's ``IntervalSettled`` made whole.

    A settlement paged over several transactions books some members on each page: each
    ``SettlementPaged`` lists those it booked, and the last page's ``IntervalSettled`` lists
    its own (docs/ledger.md, "Paged steps"). Here that ``IntervalSettled`` gets every page's
    members and changes before its own, in booking order, so it reads as one transaction's
    does; the ``SettlementPaged`` events stay as they are."""
    booked: dict[int, tuple[list[int], list[int]]] = {}
    out: list[DecodedEvent] = []
    for event in events:
        if event.name == "SettlementPaged":
            members, deltas = booked.setdefault(int(event.args["interval"]), ([], []))
            members += event.args["members"]
            deltas += event.args["deltasMicro"]
        elif event.name == "IntervalSettled" and int(event.args["interval"]) in booked:
            members, deltas = booked.pop(int(event.args["interval"]))
            args = dict(event.args)
            args["members"] = (*members, *args["members"])
            args["deltasMicro"] = (*deltas, *args["deltasMicro"])
            event = DecodedEvent(event.name, args, event.block_number)
        out.append(event)
    return out


def deltas_from_event(args: Mapping[str, Any]) -> dict[int, int]:
    """Account changes of an ``IntervalSettled`` event in ``Settlement.deltas()`` form (whole:
    :func:`merge_settlement_pages`)."""
    out = {int(m): int(d) for m, d in zip(args["members"], args["deltasMicro"], strict=True)}
    out[GRID] = int(args["gridDeltaMicro"])
    out[OPERATOR] = int(args["operatorDeltaMicro"])
    return out


def unpack_fee_table(packed: bytes, n_buses: int) -> npt.NDArray[np.int64]:
    """Inverse of :func:`~gridledger.ledger.fee_clearing.pack_fee_table` (either form)."""
    if is_path_form(packed):
        return path_table(packed, n_buses)
    if len(packed) != 4 * n_buses * n_buses:
        message = f"fee table: {len(packed)} bytes for {n_buses} buses (expected {4 * n_buses**2})"
        raise ChainError(message)
    table = np.frombuffer(packed, dtype=">u4").astype(np.int64)
    return table.reshape(n_buses, n_buses)
