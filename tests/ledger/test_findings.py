"""The audit's account replay names unbacked withdrawals and solvency breaches.

The contracts revert these before they can happen, so the replay is tested on event lists
made by hand: what a chain of another contract version (or a tampered node) would show.
"""

from __future__ import annotations

from typing import Any

from gridledger.ledger.contracts import DecodedEvent
from gridledger.ledger.findings import (
    GRID_ACCOUNT,
    OPERATOR_ACCOUNT,
    AccountReplay,
    missing_readings,
)

RETAIL = 300_000


def _event(name: str, **args: Any) -> DecodedEvent:
    return DecodedEvent(name, args, 1)


def _bid(member: int, side: int, e_wh: int, price: int) -> int:
    return member << 224 | side << 216 | e_wh << 152 | price << 88 | 1 << 72


def _kinds(events: list[DecodedEvent]) -> list[str]:
    return [f.kind for f in AccountReplay(RETAIL).run(events)]


def test_honest_history_has_no_findings() -> None:
    events = [
        _event("Deposited", account=1, amountMicro=1_000),
        _event("Deposited", account=GRID_ACCOUNT, amountMicro=5_000),
        _event("RoundRecorded", interval=0, binding=True, bids=[_bid(1, 0, 2_000, 400)]),
        _event(
            "IntervalSettled",
            interval=0,
            members=[1],
            deltasMicro=[-800],
            gridDeltaMicro=700,
            operatorDeltaMicro=100,
        ),
        _event("Withdrawn", account=1, amountMicro=200),
        _event("Withdrawn", account=GRID_ACCOUNT, amountMicro=5_700),
        _event("Withdrawn", account=OPERATOR_ACCOUNT, amountMicro=100),
    ]
    assert _kinds(events) == []


def test_withdrawing_a_locked_balance_is_named() -> None:
    events = [
        _event("Deposited", account=1, amountMicro=1_000),
        _event("RoundRecorded", interval=3, binding=True, bids=[_bid(1, 0, 2_000, 400)]),
        _event("Withdrawn", account=1, amountMicro=900),  # 800 locked, 200 free
    ]
    assert _kinds(events) == ["unbacked_withdrawal"]


def test_grid_credit_backed_only_by_debt_is_named() -> None:
    events = [
        _event(
            "IntervalSettled",
            interval=0,
            members=[1],
            deltasMicro=[-500],
            gridDeltaMicro=500,
            operatorDeltaMicro=0,
        ),
        _event("Withdrawn", account=GRID_ACCOUNT, amountMicro=500),
    ]
    assert _kinds(events) == ["unbacked_withdrawal"]


def test_settlement_leaving_debt_uncovered_is_a_solvency_breach() -> None:
    events = [
        _event("Deposited", account=2, amountMicro=100),
        _event(
            "IntervalSettled",
            interval=4,
            members=[1, 2],
            deltasMicro=[-300, 300],
            gridDeltaMicro=0,
            operatorDeltaMicro=0,
        ),
    ]
    assert _kinds(events) == ["solvency_breach"]


def test_default_readings_are_named() -> None:
    found = missing_readings([_event("ReadingDefaulted", interval=7, member=5)])
    assert [(f.kind, f.interval) for f in found] == [("missing_reading", 7)]
    assert "member 5" in str(found[0])
