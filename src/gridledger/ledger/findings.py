"""What the audit names: manipulations found in chain data (and members' receipts).

The contracts refuse most manipulations outright (a named revert). The audit looks for
the traces of every class anyway, from events alone, so that a chain made by another
contract version, a node that was tampered with, or a rule outcome that users should
know about (a silent meter's default reading) is reported by name:

- ``dropped_signed_bid``: a member's receipt shows a bid it signed for a round that was
  recorded without it, or a bid sent straight to the contract is missing from its round;
- ``unjustified_curtailment``: a security verdict not signed by the DSO, or a curtailment
  that the committed network does not justify;
- ``missing_reading``: a member settled by the default reading (its meter sent nothing);
- ``non_canonical_optimum``: the optimal rule's trades differ from the canonical optimum
  of the same bids although the welfare is the same;
- ``unbacked_withdrawal``: a withdrawal beyond the free balance (members) or beyond the
  backed balance (GRID, OPERATOR), found by replaying every account over the events;
- ``solvency_breach``: after some transaction the GRID and OPERATOR accounts did not cover
  the members' debt, or the contract's ``solvent()`` is false now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import DecodedEvent
from gridledger.ledger.receipts import Receipts
from gridledger.ledger.reference import binding_lock_micro

__all__ = [
    "FINDING_KINDS",
    "GRID_ACCOUNT",
    "OPERATOR_ACCOUNT",
    "AccountReplay",
    "Finding",
    "VerdictCheck",
    "dropped_bids",
    "missing_readings",
    "unsigned_verdicts",
]

FINDING_KINDS = (
    "dropped_signed_bid",
    "unjustified_curtailment",
    "missing_reading",
    "non_canonical_optimum",
    "unbacked_withdrawal",
    "solvency_breach",
)

GRID_ACCOUNT = 2**32 - 1
OPERATOR_ACCOUNT = 2**32 - 2


@dataclass(frozen=True, slots=True)
class Finding:
    """One manipulation (or rule outcome) found: its kind, interval and what exactly."""

    kind: str
    interval: int | None
    detail: str

    def __str__(self) -> str:
        where = "" if self.interval is None else f"interval {self.interval}: "
        return f"{self.kind}: {where}{self.detail}"


def _interval(event: DecodedEvent) -> int:
    return int(event.args["interval"])


def dropped_bids(events: Sequence[DecodedEvent], receipts: Receipts) -> list[Finding]:
    """Signed bids (receipts) and direct bids missing from the round recorded for them."""
    recorded: dict[tuple[int, int], set[int]] = {}
    direct: dict[tuple[int, int], dict[int, int]] = {}
    for e in events:
        if e.name == "RoundRecorded":
            recorded[(_interval(e), int(e.args["round"]))] = {int(w) for w in e.args["bids"]}
        elif e.name == "BidSubmitted":
            key = (_interval(e), int(e.args["round"]))
            direct.setdefault(key, {})[int(e.args["member"])] = int(e.args["bid"])
    out = []
    for source, table in (("signed and handed to the operator", receipts), ("sent", direct)):
        for (interval, round_), bids in sorted(table.items()):
            words = recorded.get((interval, round_))
            if words is None:
                continue  # the round was never recorded: nothing was dropped from it
            for member, word in sorted(bids.items()):
                if word not in words:
                    detail = (
                        f"member {member}'s bid of round {round_} ({source}) is not in the "
                        "recorded round"
                    )
                    out.append(Finding("dropped_signed_bid", interval, detail))
    return out


def missing_readings(events: Sequence[DecodedEvent]) -> list[Finding]:
    """Members settled by the default reading (their meter reported nothing)."""
    return [
        Finding(
            "missing_reading",
            _interval(e),
            f"member {int(e.args['member'])}'s meter sent no reading: settled by the default "
            "(an import at its connection limit)",
        )
        for e in events
        if e.name == "ReadingDefaulted"
    ]


VerdictCheck = Callable[[int, list[int], list[int], list[int], list[int]], str | None]


def unsigned_verdicts(
    events: Sequence[DecodedEvent],
    domain: bytes,
    dso: bytes,
    justify: VerdictCheck | None = None,
) -> list[Finding]:
    """Verdicts whose DSO signature does not recover to ``dso``, and curtailments that
    ``justify(interval, trades, curtailments, margins, certificate)`` rejects (it returns
    the reason, or None when they are justified)."""
    trades: dict[int, list[int]] = {}
    evidence: dict[int, tuple[list[int], list[int]]] = {}
    out = []
    for e in events:
        if e.name == "IntervalCleared":
            trades[_interval(e)] = [int(w) for w in e.args["trades"]]
        elif e.name == "CurtailmentEvidence":
            margins = [int(w) for w in e.args["margins"]]
            evidence[_interval(e)] = (margins, [int(w) for w in e.args["certificate"]])
        elif e.name == "SecurityRecorded":
            interval = _interval(e)
            cuts = [int(w) for w in e.args["curtailments"]]
            margins, certificate = evidence.get(interval, ([], []))
            words = trades.get(interval, [])
            verdict = int(e.args["verdict"])
            digest = enc.verdict_digest(
                domain, interval, words, verdict, (cuts, margins, certificate)
            )
            r, vs = (bytes(x) for x in e.args["dsoSig"])
            signer = enc.recover_compact(digest, r, vs)
            if signer != dso:
                detail = f"verdict signed by 0x{signer.hex()}, not by the DSO 0x{dso.hex()}"
                out.append(Finding("unjustified_curtailment", interval, detail))
            elif cuts and justify is not None:
                reason = justify(interval, words, cuts, margins, certificate)
                if reason is not None:
                    out.append(Finding("unjustified_curtailment", interval, reason))
    return out


@dataclass(slots=True)
class AccountReplay:
    """Every account replayed over the Market's events, with the contract's rules for what
    may be withdrawn; breaches become findings. The replay also keeps each member's locks
    and balances per interval (what the explorer draws)."""

    retail_per_kwh_micro: int
    balance: dict[int, int] = field(default_factory=dict)
    locked: dict[int, int] = field(default_factory=dict)
    pending: int | None = None
    grid: int = 0
    operator: int = 0
    findings: list[Finding] = field(default_factory=list)
    locks_at: dict[int, dict[int, int]] = field(default_factory=dict)
    """Interval -> member -> escrow locked by its binding bid."""
    balances_at: dict[int, dict[int, int]] = field(default_factory=dict)
    """Interval -> member -> escrow balance once the interval settled."""

    @property
    def debt(self) -> int:
        return sum(-b for b in self.balance.values() if b < 0)

    def run(self, events: Sequence[DecodedEvent]) -> list[Finding]:
        """Replay ``events`` in order; the findings."""
        for e in events:
            handler = _HANDLERS.get(e.name)
            if handler is not None:
                handler(self, e.args)
        return self.findings

    def _deposited(self, args: dict[str, Any]) -> None:
        account, amount = int(args["account"]), int(args["amountMicro"])
        if account == GRID_ACCOUNT:
            self.grid += amount
        else:
            self.balance[account] = self.balance.get(account, 0) + amount

    def _withdrawn(self, args: dict[str, Any]) -> None:
        account, amount = int(args["account"]), int(args["amountMicro"])
        if account in (GRID_ACCOUNT, OPERATOR_ACCOUNT):
            own = self.grid if account == GRID_ACCOUNT else self.operator
            available = max(0, min(own, self.grid + self.operator - self.debt))
            name = "GRID" if account == GRID_ACCOUNT else "OPERATOR"
            if amount > available:
                detail = f"{name} withdrew {amount} micro-tokens, only {available} were backed"
                self.findings.append(Finding("unbacked_withdrawal", self.pending, detail))
            if account == GRID_ACCOUNT:
                self.grid -= amount
            else:
                self.operator -= amount
            return
        free = self.balance.get(account, 0) - (self.locked.get(account, 0) if self.pending else 0)
        if amount > free:
            detail = f"member {account} withdrew {amount} micro-tokens, its free balance was {free}"
            self.findings.append(Finding("unbacked_withdrawal", self.pending, detail))
        self.balance[account] = self.balance.get(account, 0) - amount

    def _round(self, args: dict[str, Any]) -> None:
        if not args.get("binding"):
            return
        interval = int(args["interval"])
        self.pending = interval
        self.locked = {}
        for word in args.get("bids", ()):
            bid = enc.unpack_bid(int(word))
            need = binding_lock_micro(bid, self.retail_per_kwh_micro)
            if self.balance.get(bid.member, 0) >= need:  # else the chain left it out
                self.locked[bid.member] = need
        self.locks_at[interval] = dict(self.locked)

    def _settled(self, args: dict[str, Any]) -> None:
        interval = int(args["interval"])
        for member, delta in zip(args["members"], args["deltasMicro"], strict=True):
            self.balance[int(member)] = self.balance.get(int(member), 0) + int(delta)
        self.grid += int(args["gridDeltaMicro"])
        self.operator += int(args["operatorDeltaMicro"])
        self.pending = None
        self.locked = {}
        self.balances_at[interval] = dict(self.balance)
        if self.grid < 0 or self.operator < 0 or self.grid + self.operator < self.debt:
            detail = (
                f"after settlement GRID {self.grid} and OPERATOR {self.operator} micro-tokens "
                f"do not cover the members' debt of {self.debt}"
            )
            self.findings.append(Finding("solvency_breach", interval, detail))

    def _expired(self, args: dict[str, Any]) -> None:
        self.pending = None
        self.locked = {}


_HANDLERS: dict[str, Callable[[AccountReplay, dict[str, Any]], None]] = {
    "Deposited": AccountReplay._deposited,
    "Withdrawn": AccountReplay._withdrawn,
    "RoundRecorded": AccountReplay._round,
    "IntervalSettled": AccountReplay._settled,
    "IntervalExpired": AccountReplay._expired,
}
