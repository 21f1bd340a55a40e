"""Re-derive clearing and settlement from chain data alone and compare with market/.

For every interval the audit takes, from the Market contract's events only:
the binding round's bids (``RoundRecorded``, less those ``BidExcluded``), the emitted trades
(``IntervalCleared``), the curtailments (``SecurityRecorded``), the meter readings
(``ReadingsRecorded``) and the booked account changes (``IntervalSettled``); the
tariffs, the settlement tolerance band and the clearing rule come from the contract's
immutables, and for the fee rules the fee table (read from its data contract and checked
against the recorded ``feeTableHash``) and kappa from its storage. It re-runs the rule
(:func:`gridledger.market.clear_uniform`, :func:`~gridledger.market.greedy.clear_greedy`
or :func:`~gridledger.market.optimal.clear_optimal`) and :func:`gridledger.market.settle`
and compares to the unit, checks that each interval's changes sum to zero and that
the contract's own conservation and solvency checks hold. Manipulations are named as
findings (:mod:`~gridledger.ledger.findings`): dropped signed bids (against the members'
receipts), unsigned or unjustified verdicts, missing readings, a non-canonical optimum,
unbacked withdrawals and solvency breaches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from eth_utils import keccak

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import DecodedEvent
from gridledger.ledger.deploy import CLEARING_RULE_IDS
from gridledger.ledger.findings import (
    AccountReplay,
    Finding,
    VerdictCheck,
    dropped_bids,
    missing_readings,
    unsigned_verdicts,
)
from gridledger.ledger.network_data import check_recorded, unpack_network
from gridledger.ledger.path_data import is_path_form, sparse_consistent, unpack_path_fees
from gridledger.ledger.reader import ChainReader
from gridledger.ledger.receipts import Receipts
from gridledger.ledger.reference import deltas_from_event, unpack_fee_table
from gridledger.ledger.shards import resolve
from gridledger.market.double_auction import clear_uniform
from gridledger.market.greedy import clear_greedy
from gridledger.market.justification import RULE_IDS, LinearNetwork, UnjustifiedCurtailment
from gridledger.market.optimal import clear_optimal
from gridledger.market.orders import Bid, ClearingResult, Trade, apply_curtailments
from gridledger.market.settlement import Tariffs, settle
from gridledger.market.welfare import bid_surplus_wh_micro

__all__ = ["AuditReport", "audit", "compact_ranges"]


def _address(value: Any) -> bytes:
    """An address from a decoded ABI value (checksummed hex string or bytes)."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def _network_check(
    events: Sequence[DecodedEvent], code_at: Callable[[bytes], bytes]
) -> VerdictCheck | None:
    """The reference check of curtailments against the network committed on chain (its
    ``NetworkConfigured`` event, with the shards its directory lists read by ``code_at``);
    None without a checked network."""
    found = [e for e in events if e.name == "NetworkConfigured"]
    if not found:
        return None
    cfg, table = int(found[0].args["cfg"]), bytes(found[0].args["table"])
    rules = {rule_id: name for name, rule_id in RULE_IDS.items()}
    if cfg not in rules:
        return None  # signed-only: the DSO's signature is all there is to check
    try:
        network: LinearNetwork | None = unpack_network(resolve(table, code_at))
        damaged = ""
    except ChainError as error:
        network, damaged = None, str(error)

    def check(
        interval: int,
        trades: list[int],
        curtailments: list[int],
        margins: list[int],
        certificate: list[int],
    ) -> str | None:
        if network is None:
            return f"the committed network cannot be read: {damaged}"
        try:
            check_recorded(
                network, rules[cfg], enc.unpack_trades(trades), curtailments, margins, certificate
            )
        except UnjustifiedCurtailment as error:
            return f"curtailment not justified by the committed network: {error}"
        return None

    return check


def _same_welfare(
    rule_id: int, trades: Sequence[Trade], reference: ClearingResult, bids: Sequence[Bid]
) -> bool:
    """Whether the optimal rule's ``trades`` reach the reference optimum's welfare."""
    if rule_id != CLEARING_RULE_IDS["optimal"]:
        return False
    try:
        return bid_surplus_wh_micro(trades, bids) == bid_surplus_wh_micro(reference.trades, bids)
    except (KeyError, ValueError):
        return False


@dataclass(slots=True)
class AuditReport:
    """Outcome of :func:`audit`: intervals checked and every discrepancy found."""

    intervals_checked: int = 0
    intervals_settled: int = 0
    bids_seen: int = 0
    trades_seen: int = 0
    conserved: bool = True
    problems: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    solvent: bool = True
    settled: list[int] = field(default_factory=list)
    expected_intervals: int | None = None  # the run's horizon, when known

    @property
    def missing(self) -> list[int] | None:
        """Intervals of the horizon not settled on chain (None: horizon unknown)."""
        if self.expected_intervals is None:
            return None
        done = set(self.settled)
        return [t for t in range(self.expected_intervals) if t not in done]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.findings and self.conserved and self.solvent

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "intervals_checked": self.intervals_checked,
            "intervals_settled": self.intervals_settled,
            "bids_seen": self.bids_seen,
            "trades_seen": self.trades_seen,
            "conserved": self.conserved,
            "solvent": self.solvent,
            "findings": len(self.findings),
            "settled_intervals": compact_ranges(self.settled),
            "missing_intervals": "unknown (no horizon given)"
            if self.missing is None
            else compact_ranges(self.missing),
            "problems": list(self.problems) + [str(f) for f in self.findings],
        }


def compact_ranges(numbers: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``; ``"none"`` when empty."""
    parts: list[str] = []
    values = sorted(set(numbers))
    start = 0
    for k in range(1, len(values) + 1):
        if k == len(values) or values[k] != values[k - 1] + 1:
            first, last = values[start], values[k - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = k
    return ", ".join(parts) or "none"


def _clearing_rule(
    ledger: ChainReader, report: AuditReport
) -> Callable[[Sequence[Bid]], ClearingResult]:
    """The chain's clearing rule as a reference function, parameters from chain data only."""
    rule = int(ledger.view("clearingRule")[0])
    if rule == CLEARING_RULE_IDS["uniform"]:
        return clear_uniform
    code = ledger.backend.code(_address(ledger.view("feeTableData")[0]))
    recorded = bytes(ledger.view("feeTableHash")[0])
    if keccak(code[1:]) != recorded:
        report.problems.append("fee table read from its data contract differs from feeTableHash")
    n_buses = int(ledger.view("feeBuses")[0])
    try:
        packed = resolve(code[1:], ledger.backend.code)
    except ChainError as error:
        report.problems.append(f"fee table cannot be read from its shards: {error}")
        packed = bytes(4 * n_buses * n_buses)
    try:
        fees = unpack_fee_table(packed, n_buses)
    except ChainError as error:
        report.problems.append(f"fee table cannot be read: {error}")
        fees = np.zeros((n_buses, n_buses), dtype=np.int64)
    if is_path_form(packed) and not sparse_consistent(unpack_path_fees(packed)):
        report.problems.append(
            "fee data in path form: its range-minimum rows are not the minima of its levels "
            "(the chain computed the fees from them as they are)"
        )
    kappa = Fraction(int(ledger.view("kappaNum")[0]), int(ledger.view("kappaDen")[0]))
    if rule == CLEARING_RULE_IDS["greedy"]:
        return lambda bids: clear_greedy(bids, fees, kappa)
    return lambda bids: clear_optimal(bids, fees, kappa)


def audit(
    ledger: ChainReader,
    expected_intervals: int | None = None,
    *,
    receipts: Receipts | None = None,
    justify: VerdictCheck | None = None,
) -> AuditReport:
    """Audit every interval recorded on ``ledger``'s chain (see the module docstring).

    With ``expected_intervals`` (the run's horizon), an interval in
    ``0..expected_intervals-1`` that is not settled on chain is a problem. Manipulations
    are named as findings (:mod:`~gridledger.ledger.findings`): ``receipts`` are the bids
    members signed (to find dropped ones), ``justify`` checks curtailments against the
    committed network.
    """
    report = AuditReport(expected_intervals=expected_intervals)
    events = ledger.events()
    reference_rule = _clearing_rule(ledger, report)
    rule_id = int(ledger.view("clearingRule")[0])
    retail = int(ledger.view("retailPerKwhMicro")[0])
    feed_in = int(ledger.view("feedInPerKwhMicro")[0])
    tolerance_bp = int(ledger.view("toleranceBp")[0])
    tariffs = Tariffs(retail, feed_in, tolerance_bp)
    last_round: dict[int, list[int]] = {}
    cleared: dict[int, Any] = {}
    curtailments: dict[int, list[int]] = {}
    readings: dict[int, list[int]] = {}
    for event in events:
        args = event.args
        interval = int(args["interval"]) if "interval" in args else -1
        if event.name == "RoundRecorded":
            last_round[interval] = list(args["bids"])
            report.bids_seen += len(args["bids"])
            if enc.list_hash(args["bids"]) != bytes(args["bidsHash"]):
                report.problems.append(
                    f"interval {interval}: RoundRecorded hash differs from its bids"
                )
        elif event.name == "BidExcluded":
            member = int(args["member"])
            last_round[interval] = [w for w in last_round.get(interval, []) if w >> 224 != member]
        elif event.name == "IntervalCleared":
            report.intervals_checked += 1
            bids = [enc.unpack_bid(w) for w in last_round.get(interval, [])]
            reference = reference_rule(bids)
            trades = enc.unpack_trades(list(args["trades"]))
            report.trades_seen += len(trades)
            cleared[interval] = trades
            if trades != reference.trades and _same_welfare(rule_id, trades, reference, bids):
                detail = (
                    f"the optimal rule's {len(trades)} trades are an optimum of the same "
                    f"welfare but not the canonical one ({len(reference.trades)} trades)"
                )
                report.findings.append(Finding("non_canonical_optimum", interval, detail))
            elif trades != reference.trades:
                report.problems.append(
                    f"interval {interval}: chain cleared {len(trades)} trades, reference "
                    f"{len(reference.trades)} (first difference in the trade list)"
                )
            price = int(args["price"]) if trades and reference_rule is clear_uniform else None
            if price != reference.price_per_kwh_micro:
                report.problems.append(
                    f"interval {interval}: chain price {price}, reference {reference.price_per_kwh_micro}"
                )
        elif event.name == "SecurityRecorded":
            curtailments[interval] = list(args["curtailments"])
        elif event.name == "ReadingsRecorded":
            readings[interval] = list(args["readings"])
        elif event.name == "IntervalSettled":
            report.intervals_settled += 1
            report.settled.append(interval)
            cuts = [enc.unpack_curtailment(w) for w in curtailments.get(interval, [])]
            trades = apply_curtailments(cleared.get(interval, ()), cuts)
            metered = dict(enc.unpack_reading(w) for w in readings.get(interval, []))
            expected = settle(trades, metered, tariffs).deltas()
            got = deltas_from_event(args)
            if got != expected:
                wrong = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
                report.problems.append(
                    f"interval {interval}: settlement differs for accounts {wrong}"
                )
            if sum(got.values()) != 0:
                report.problems.append(
                    f"interval {interval}: account changes sum to {sum(got.values())}"
                )
    report.conserved = ledger.conserved()
    report.solvent = bool(ledger.view("solvent")[0])
    if not report.solvent:
        detail = "the contract's solvent() is false: tokens held do not cover every claim"
        report.findings.append(Finding("solvency_breach", None, detail))
    report.findings += dropped_bids(events, receipts or {})
    report.findings += missing_readings(events)
    domain, dso = bytes(ledger.view("domainSeparator")[0]), _address(ledger.view("dso")[0])
    report.findings += unsigned_verdicts(
        events, domain, dso, justify or _network_check(events, ledger.backend.code)
    )
    report.findings += AccountReplay(retail).run(events)
    if report.missing:
        report.problems.append(
            f"intervals not settled on chain: {compact_ranges(report.missing)} "
            f"(the run has {expected_intervals})"
        )
    return report
