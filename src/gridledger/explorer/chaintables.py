"""A run's tables derived from a Market's events alone (``gridledger serve --chain URL``
without a run folder).

:func:`chain_tables` decodes what the chain holds with the ledger's own decoders
(:mod:`gridledger.ledger.encoding`): members (``MemberRegistered``), every round's bids
(``RoundRecorded``), the cleared trades (``IntervalCleared``) less their curtailments
(``SecurityRecorded``), the meter readings (``ReadingsRecorded``) and the booked
settlement (``IntervalSettled``), whose breakdown into P2P and grid payments is re-derived
with :func:`gridledger.market.settle` at the Market's own tariffs, as the audit does.
Columns the chain does not hold (times of day, names, PV, load, distances, voltages,
violations before management, the competitive optimum) are left empty (NaN); the pages
say so (:data:`NOT_ON_CHAIN`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gridledger.explorer.node import MarketParams
from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import DecodedEvent
from gridledger.ledger.reference import deltas_from_event
from gridledger.market.orders import Side, apply_curtailments
from gridledger.market.settlement import settle
from gridledger.report.tables import COLUMNS, RunTables

__all__ = ["NOT_ON_CHAIN", "ROLES", "VERDICTS", "WH_MICRO_PER_TOKEN", "chain_tables"]

MICRO = 1_000_000
WH_MICRO_PER_TOKEN = 1_000 * MICRO
"""Wh x micro-tokens/kWh per token (the unit of welfare and lost surplus on chain)."""

ROLES = {0: "consumer", 1: "producer", 2: "prosumer"}
"""The Market's member role codes (ledger/deploy.py ``ROLE_CODES``)."""

VERDICTS = {0: "secure", 1: "curtailed", 2: "insecure"}

NOT_ON_CHAIN = (
    "the scenario, the feeder and the time of day of each interval",
    "members' names, PV sizes, strategies and risk attitudes",
    "load and PV energy, and so the local share",
    "the feeder map and trade distances (the chain holds buses, not lines)",
    "voltages, line loading and violations before security management",
    "the competitive optimum of welfare (the chain holds the welfare at bid prices)",
    "the audit's check of dropped bids (it needs the members' signed receipts)",
)
"""What the explorer cannot show from a node without the run folder."""

EXTRA_INTERVAL_COLUMNS = (
    "block",
    "rounds",
    "trades",
    "verdict",
    "curtailments",
    "settled",
    "grid_delta",
    "settled_on_chain",
)


def _numbers(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """A frame of ``rows``; when there is none, its columns are numbers (not objects)."""
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(float) if not rows else frame


def _side(bid: Any) -> str:
    return "buy" if bid.side == Side.BUY else "sell"


def _members(events: Sequence[DecodedEvent]) -> pd.DataFrame:
    rows: dict[int, dict[str, Any]] = {}
    for e in events:
        if e.name == "MemberRegistered":
            a = e.args
            member = int(a["member"])
            rows[member] = {
                "id": member,
                "name": f"account {a['account']}",
                "bus": int(a["bus"]),
                "role": ROLES.get(int(a["role"]), f"role {a['role']}"),
                "account": str(a["account"]),
                "meter": str(a["meter"]),
                "limit_kwh": int(a["limitWh"]) / 1000,
            }
    columns = [*list(COLUMNS["members"]), "account", "meter", "limit_kwh"]
    return pd.DataFrame([rows[m] for m in sorted(rows)], columns=columns)


def chain_tables(events: Sequence[DecodedEvent], params: MarketParams) -> RunTables:
    """The tables of the Market's ``events`` (see the module docstring)."""
    intervals: dict[int, dict[str, Any]] = {}
    rounds: list[tuple[Any, ...]] = []
    trades: list[tuple[Any, ...]] = []
    settlement: list[tuple[Any, ...]] = []
    cleared: dict[int, tuple[Any, ...]] = {}
    cuts: dict[int, list[Any]] = {}
    readings: dict[int, dict[int, int]] = {}

    def row(interval: int) -> dict[str, Any]:
        return intervals.setdefault(
            interval,
            {"interval": interval, "time": f"interval {interval}", "rounds": 0, "settled": False},
        )

    for e in events:
        a = e.args
        if "interval" not in a or e.name in ("MemberRegistered", "DebtRecorded"):
            continue
        t = int(a["interval"])
        r = row(t)
        if e.name == "IntervalOpened":
            r["block"] = int(a["blockNumber"])
        elif e.name == "RoundRecorded":
            r["rounds"] += 1
            bids = [enc.unpack_bid(int(w)) for w in a["bids"]]
            r["n_bids"] = len(bids)
            for b in bids:
                rounds.append(
                    (
                        t,
                        int(a["round"]),
                        b.member,
                        _side(b),
                        b.e_wh / 1000,
                        b.price_per_kwh_micro / MICRO,
                        b.bus,
                    )
                )
        elif e.name == "IntervalCleared":
            cleared[t] = enc.unpack_trades([int(w) for w in a["trades"]])
            r["trades"] = len(cleared[t])
            uniform = params.rule == "uniform" and cleared[t]
            r["price_per_kwh"] = int(a["price"]) / MICRO if uniform else np.nan
        elif e.name == "ClearingWelfare":
            r["bid_surplus"] = int(a["welfareWhMicro"]) / WH_MICRO_PER_TOKEN
        elif e.name == "SecurityRecorded":
            cuts[t] = [enc.unpack_curtailment(int(w)) for w in a["curtailments"]]
            r["verdict"] = VERDICTS.get(int(a["verdict"]), f"verdict {a['verdict']}")
            r["curtailments"] = len(cuts[t])
            r["curtailed_kwh"] = sum(c.cut_wh for c in cuts[t]) / 1000
        elif e.name == "CurtailmentEvidence":
            r["lost_surplus"] = int(a["lostSurplusWhMicro"]) / WH_MICRO_PER_TOKEN
        elif e.name == "ReadingsRecorded":
            readings[t] = dict(enc.unpack_reading(int(w)) for w in a["readings"])
        elif e.name == "IntervalSettled":
            r["settled"] = True
            r["fees"] = int(a["operatorDeltaMicro"]) / MICRO
            r["grid_delta"] = int(a["gridDeltaMicro"]) / MICRO
            on_chain = {int(m): int(d) for m, d in zip(a["members"], a["deltasMicro"], strict=True)}
            delivered = apply_curtailments(cleared.get(t, ()), cuts.get(t, []))
            result = settle(delivered, readings.get(t, {}), params.tariffs)
            r["grid_import_kwh"] = sum(m.grid_import_wh for m in result.members.values()) / 1000
            r["grid_export_kwh"] = sum(m.grid_export_wh for m in result.members.values()) / 1000
            r["settled_on_chain"] = result.deltas() == deltas_from_event(a)
            for line in result.members.values():
                settlement.append(
                    (
                        t,
                        line.member,
                        line.scheduled_net_wh,
                        line.actual_net_wh,
                        line.p2p_paid_micro / MICRO,
                        line.p2p_received_micro / MICRO,
                        line.grid_import_wh,
                        line.grid_export_wh,
                        (line.grid_paid_micro + line.penalty_paid_micro) / MICRO,
                        (line.grid_received_micro + line.penalty_received_micro) / MICRO,
                        line.net_micro / MICRO,
                        on_chain.get(line.member, 0) / MICRO,
                    )
                )
    for t, cleared_trades in cleared.items():
        delivered = apply_curtailments(cleared_trades, cuts.get(t, []))
        for i, (tr, before) in enumerate(zip(delivered, cleared_trades, strict=True)):
            trades.append(
                (
                    t,
                    i,
                    tr.buyer,
                    tr.seller,
                    tr.buyer_bus,
                    tr.seller_bus,
                    tr.e_wh / 1000,
                    before.e_wh / 1000,
                    tr.buyer_price_per_kwh_micro / MICRO,
                    tr.seller_price_per_kwh_micro / MICRO,
                    tr.fee_per_kwh_micro / MICRO,
                    np.nan,
                    np.nan,
                )
            )
        intervals[t]["traded_kwh"] = sum(tr.e_wh for tr in delivered) / 1000
    columns = list(COLUMNS["intervals"]) + list(EXTRA_INTERVAL_COLUMNS)
    frame = pd.DataFrame([intervals[t] for t in sorted(intervals)], columns=columns)
    for column in ("traded_kwh", "curtailed_kwh", "fees"):
        frame[column] = frame[column].astype(float)
    trade_frame = _numbers(trades, list(COLUMNS["trades"]))
    trade_frame = trade_frame.sort_values(["interval", "trade"], ignore_index=True)
    market = {"retail_per_kwh": params.retail_per_kwh, "feed_in_per_kwh": params.feed_in_per_kwh}
    return RunTables(
        meta={"scenario": {"market": market}, "feeder": None, "clearing": params.rule},
        intervals=frame,
        rounds=_numbers(rounds, list(COLUMNS["rounds"])),
        trades=trade_frame,
        settlement=_numbers(settlement, [*COLUMNS["settlement"], "net_on_chain"]),
        members=_members(events),
        bus_voltages=pd.DataFrame(),
        bus_voltages_before=pd.DataFrame(),
        line_loading=pd.DataFrame(),
    )
