"""The member model: validation names the field and the value."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gridledger.errors import GridledgerError
from gridledger.members import Member, MemberError, Role


def _fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 3,
        "name": "prosumer-003@bus7",
        "bus": 7,
        "role": Role.PROSUMER,
        "load_annual_kwh": 3500.0,
        "load_profile": "h0",
        "pv_kwp": 8.0,
        "p_max_kw": 10.0,
        "cost_per_kwh": 0.06,
        "utility_per_kwh": 0.25,
        "cost_a": 0.01,
        "utility_alpha": 0.25,
        "utility_beta": 0.05,
        "risk_attitude": "averse",
        "strategy": "aa",
    }
    base.update(changes)
    return base


def test_valid_member_and_quadratic_forms() -> None:
    m = Member(**_fields())
    assert m.has_pv and m.has_load
    assert m.cost_tokens(2.0) == pytest.approx(0.01 * 4 + 0.06 * 2)
    assert m.utility_tokens(2.0) == pytest.approx(0.25 * 2 - 0.5 * 0.05 * 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.bus = 2  # type: ignore[misc]


def test_role_given_as_text_is_coerced() -> None:
    m = Member(**_fields(role="consumer", pv_kwp=0.0))
    assert m.role is Role.CONSUMER
    assert m.role.value == "consumer"


@pytest.mark.parametrize("attitude", ["averse", "neutral", "seeking", -1.0, 0, 0.5, 1.0])
def test_risk_attitudes_accepted(attitude: str | float) -> None:
    assert Member(**_fields(risk_attitude=attitude)).risk_attitude == attitude


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", -1),
        ("id", True),
        ("name", " "),
        ("bus", -2),
        ("role", "trader"),
        ("load_annual_kwh", -1.0),
        ("load_annual_kwh", float("nan")),
        ("load_profile", "x9"),
        ("pv_kwp", float("inf")),
        ("p_max_kw", 0.0),
        ("cost_per_kwh", -0.01),
        ("utility_per_kwh", "0.2"),
        ("cost_a", -1.0),
        ("utility_alpha", -0.1),
        ("utility_beta", -0.1),
        ("risk_attitude", "bold"),
        ("risk_attitude", 1.5),
        ("risk_attitude", float("nan")),
        ("strategy", ""),
    ],
)
def test_invalid_field_names_field_and_value(field: str, value: object) -> None:
    with pytest.raises(MemberError) as info:
        Member(**_fields(**{field: value}))
    text = str(info.value)
    assert field in text
    assert repr(value) in text
    assert "member 3" in text or field == "id"
    assert isinstance(info.value, GridledgerError)


def test_role_and_pv_must_agree() -> None:
    with pytest.raises(MemberError, match="consumer has no PV"):
        Member(**_fields(role=Role.CONSUMER, pv_kwp=5.0))
    with pytest.raises(MemberError, match="prosumer needs PV"):
        Member(**_fields(role=Role.PROSUMER, pv_kwp=0.0))
    producer = Member(**_fields(role=Role.PRODUCER, load_annual_kwh=0.0, pv_kwp=100.0))
    assert not producer.has_load
