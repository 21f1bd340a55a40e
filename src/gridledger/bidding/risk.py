"""Risk attitude -> initial aggressiveness and learning rates of the AA trader.

This module is the one place that maps a member's declared risk attitude to the
parameters of :mod:`gridledger.bidding.adaptive_aggressive`. The mapping is the
table :data:`RISK_TABLE`; a numeric attitude ``a`` in [-1, 1] is interpolated
linearly between its rows (``a`` is the row key), a named attitude picks its row.

=========  =====  =====  =====  ============  ============  ============  ============
attitude     a     r0    beta1  lambda_r up   lambda_a up   lambda_r dn   lambda_a dn
=========  =====  =====  =====  ============  ============  ============  ============
(a = -1)   -1.0   -0.9   0.4    0.02          0.005         0.08          0.05
seeking    -0.5   -0.5   0.4    0.035         0.01          0.065         0.04
neutral     0.0    0.0   0.4    0.05          0.025         0.05          0.025
averse      0.5    0.5   0.4    0.065         0.04          0.035         0.01
(a = +1)    1.0    0.9   0.4    0.08          0.05          0.02          0.005
=========  =====  =====  =====  ============  ============  ============  ============

- ``r0``: initial aggressiveness. Averse members start with r0 > 0 (target between
  the equilibrium estimate and their limit price: they give up margin for a higher
  chance to trade); seeking members start with r0 < 0 (target beyond the
  equilibrium estimate: they hold out for margin); neutral r0 = 0 (target = p*).
- ``lambda_* up`` are used when the short-term rule makes the trader *more*
  aggressive, ``lambda_* dn`` when it makes it *less* aggressive
  (``delta = (1 +- lambda_r) r_shout +- lambda_a``). The neutral row is the
  literature default (lambda_r = 0.05, Vytelingum et al. 2008; lambda_a in the
  published 0.01..0.05 range, in units of r). Averse members step up eagerly and
  back off reluctantly, so their aggressiveness settles above the level of the
  last trade price and they keep trading at a lower margin; seeking members do
  the opposite. Without this asymmetry the short-term learning would forget r0
  within one interval and the attitudes would not persist.
- ``beta1`` (short-term learning rate) is the literature default 0.4 for every row;
  it is in the table so a scenario can tune "how fast aggressiveness moves" here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from gridledger.errors import GridledgerError

__all__ = ["ATTITUDE_NAMES", "RISK_TABLE", "RiskProfile", "attitude_value", "risk_profile"]


@dataclass(frozen=True, slots=True)
class RiskProfile:
    """AA parameters set by the risk attitude (see the module table)."""

    a: float
    r0: float
    beta1: float
    lambda_r_up: float
    lambda_a_up: float
    lambda_r_down: float
    lambda_a_down: float


# The ONE table. Rows sorted by ``a``; named rows carry a name, the end rows are
# only interpolation anchors for numeric attitudes.
RISK_TABLE: tuple[tuple[str | None, RiskProfile], ...] = (
    (None, RiskProfile(-1.0, -0.9, 0.4, 0.02, 0.005, 0.08, 0.05)),
    ("seeking", RiskProfile(-0.5, -0.5, 0.4, 0.035, 0.01, 0.065, 0.04)),
    ("neutral", RiskProfile(0.0, 0.0, 0.4, 0.05, 0.025, 0.05, 0.025)),
    ("averse", RiskProfile(0.5, 0.5, 0.4, 0.065, 0.04, 0.035, 0.01)),
    (None, RiskProfile(1.0, 0.9, 0.4, 0.08, 0.05, 0.02, 0.005)),
)

ATTITUDE_NAMES: tuple[str, ...] = tuple(name for name, _ in RISK_TABLE if name is not None)

_FIELDS = ("r0", "beta1", "lambda_r_up", "lambda_a_up", "lambda_r_down", "lambda_a_down")


def attitude_value(attitude: str | float) -> float:
    """The numeric attitude ``a`` in [-1, 1] of ``attitude`` (name or number)."""
    allowed = f"allowed: {', '.join(repr(n) for n in ATTITUDE_NAMES)} or a number in [-1, 1]"
    if isinstance(attitude, str):
        for name, row in RISK_TABLE:
            if name == attitude:
                return row.a
        message = f"unknown risk attitude {attitude!r}; {allowed}"
        raise GridledgerError(message)
    if isinstance(attitude, bool) or not isinstance(attitude, int | float):
        message = f"risk attitude {attitude!r} has type {type(attitude).__name__}; {allowed}"
        raise GridledgerError(message)
    a = float(attitude)
    if not math.isfinite(a) or not -1.0 <= a <= 1.0:
        message = f"risk attitude {attitude!r} is out of range; {allowed}"
        raise GridledgerError(message)
    return a


def risk_profile(attitude: str | float) -> RiskProfile:
    """Parameters for ``attitude``: its table row, or linear interpolation between rows."""
    a = attitude_value(attitude)
    rows = [row for _, row in RISK_TABLE]
    for low, high in itertools.pairwise(rows):
        if low.a <= a <= high.a:
            w = (a - low.a) / (high.a - low.a)
            values = {k: (1 - w) * getattr(low, k) + w * getattr(high, k) for k in _FIELDS}
            return RiskProfile(a=a, **values)
    message = f"risk attitude {a} not covered by RISK_TABLE"  # unreachable: table spans [-1, 1]
    raise GridledgerError(message)
