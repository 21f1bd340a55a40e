"""The member model: who sits where on the feeder and what energy is worth to them.

A :class:`Member` is immutable. Its economic parameters are in tokens (the
settlement token) per kWh, floats; the market converts them to integer
micro-tokens. Quadratic forms for the game-theory mechanism (docs/methods.md §5):

- seller cost of selling Q kWh: ``C(Q) = cost_a * Q**2 + cost_per_kwh * Q``
- buyer utility of consuming D kWh: ``U(D) = utility_alpha * D - 0.5 * utility_beta * D**2``
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from gridledger.errors import MemberError
from gridledger.members.profiles import PROFILES

__all__ = ["RISK_ATTITUDES", "Member", "Role"]

RISK_ATTITUDES = ("averse", "neutral", "seeking")


class Role(StrEnum):
    """What a member does in the market."""

    CONSUMER = "consumer"  # load only
    PRODUCER = "producer"  # generation only (a DG plant)
    PROSUMER = "prosumer"  # load and PV behind one meter


def _fail(member_id: object, field: str, value: object, need: str) -> MemberError:
    return MemberError(f"member {member_id}: {field} = {value!r}: {need}")


_NON_NEGATIVE = (
    "load_annual_kwh",
    "pv_kwp",
    "cost_per_kwh",
    "utility_per_kwh",
    "cost_a",
    "utility_alpha",
    "utility_beta",
)


@dataclass(frozen=True, slots=True)
class Member:
    """One market participant behind one meter.

    ``bus`` is the market bus index (0 is the substation). ``p_max_kw`` limits
    both import and export at the meter. ``cost_per_kwh`` is a seller's marginal
    cost, ``utility_per_kwh`` a buyer's value of energy. ``risk_attitude`` is
    ``"averse"``, ``"neutral"``, ``"seeking"`` or a number in [-1, 1]; the
    mapping to bidding behaviour lives in ``gridledger.bidding``.
    """

    id: int
    name: str
    bus: int
    role: Role
    load_annual_kwh: float
    load_profile: str
    pv_kwp: float
    p_max_kw: float
    cost_per_kwh: float
    utility_per_kwh: float
    cost_a: float
    utility_alpha: float
    utility_beta: float
    risk_attitude: str | float
    strategy: str

    def __post_init__(self) -> None:
        mid = self.id
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 0:
            raise _fail(mid, "id", self.id, "need an integer >= 0")
        if not isinstance(self.name, str) or not self.name.strip():
            raise _fail(mid, "name", self.name, "need a non-empty string")
        if isinstance(self.bus, bool) or not isinstance(self.bus, int) or self.bus < 0:
            raise _fail(mid, "bus", self.bus, "need a bus index >= 0")
        if not isinstance(self.role, Role):
            try:
                object.__setattr__(self, "role", Role(self.role))
            except ValueError:
                allowed = ", ".join(r.value for r in Role)
                raise _fail(mid, "role", self.role, f"need one of {allowed}") from None
        self._check_numbers()
        self._check_profile()
        self._check_attitude()
        if not isinstance(self.strategy, str) or not self.strategy.strip():
            raise _fail(mid, "strategy", self.strategy, "need a strategy name such as 'zi' or 'aa'")
        if self.role is Role.CONSUMER and self.pv_kwp > 0:
            raise _fail(mid, "pv_kwp", self.pv_kwp, "a consumer has no PV (use role prosumer)")
        if self.role is Role.PROSUMER and self.pv_kwp <= 0:
            raise _fail(mid, "pv_kwp", self.pv_kwp, "a prosumer needs PV > 0 kWp")

    def _check_numbers(self) -> None:
        for field in (*_NON_NEGATIVE, "p_max_kw"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail(self.id, field, value, "need a number")
            if not math.isfinite(value) or value < 0:
                raise _fail(self.id, field, value, "need a finite number >= 0")
        if self.p_max_kw <= 0:
            raise _fail(self.id, "p_max_kw", self.p_max_kw, "need a limit > 0 kW")

    def _check_profile(self) -> None:
        if self.load_profile not in PROFILES:
            allowed = ", ".join(sorted(PROFILES))
            raise _fail(self.id, "load_profile", self.load_profile, f"need one of {allowed}")

    def _check_attitude(self) -> None:
        value = self.risk_attitude
        if isinstance(value, str):
            if value not in RISK_ATTITUDES:
                need = f"need one of {', '.join(RISK_ATTITUDES)} or a number in [-1, 1]"
                raise _fail(self.id, "risk_attitude", value, need)
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not -1.0 <= value <= 1.0
        ):
            need = f"need one of {', '.join(RISK_ATTITUDES)} or a number in [-1, 1]"
            raise _fail(self.id, "risk_attitude", value, need)

    @property
    def has_load(self) -> bool:
        return self.load_annual_kwh > 0

    @property
    def has_pv(self) -> bool:
        return self.pv_kwp > 0

    def cost_tokens(self, q_kwh: float) -> float:
        """Seller's cost of selling ``q_kwh``: ``cost_a q^2 + cost_per_kwh q`` (tokens)."""
        return self.cost_a * q_kwh * q_kwh + self.cost_per_kwh * q_kwh

    def utility_tokens(self, d_kwh: float) -> float:
        """Buyer's utility of consuming ``d_kwh``: ``alpha d - beta d^2 / 2`` (tokens)."""
        return self.utility_alpha * d_kwh - 0.5 * self.utility_beta * d_kwh * d_kwh
