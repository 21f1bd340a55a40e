"""Risk attitude -> the target aggressiveness and learning rates of the AA trader.

This module is the one place that maps a member's declared risk attitude to the
parameters of :mod:`gridledger.bidding.adaptive_aggressive`. The mapping is the
table :data:`RISK_TABLE`; a numeric attitude ``a`` in [-1, 1] is interpolated
linearly between its rows (``a`` is the row key), a named attitude picks its row.

=========  =====  =====  =====  ============  ============  ============  ============
attitude     a    r_att  beta1  lambda_r up   lambda_a up   lambda_r dn   lambda_a dn
=========  =====  =====  =====  ============  ============  ============  ============
(a = -1)   -1.0   -0.6   0.4    0.02          0.02          0.08          0.2
seeking    -0.5   -0.3   0.4    0.035         0.06          0.065         0.16
neutral     0.0    0.0   0.4    0.05          0.12          0.05          0.12
averse      0.5    0.3   0.4    0.065         0.16          0.035         0.06
(a = +1)    1.0    0.6   0.4    0.08          0.2           0.02          0.02
=========  =====  =====  =====  ============  ============  ============  ============

- ``r_att``: the attitude's aggressiveness offset. A trader quotes the AA target price
  at ``r_eff = r + r_att`` where ``r`` is what it learned from its own orders. Averse
  traders (r_att > 0) quote between the equilibrium estimate and their limit: they give
  up margin for a higher chance to trade; seeking traders (r_att < 0) quote beyond the
  estimate and hold out for margin; neutral ones quote at the learned level.
- ``lambda_* up`` are used when the trader becomes *more* aggressive (its order was
  not, or not fully, filled), ``lambda_* dn`` when it becomes *less* aggressive (it was
  filled). Averse traders step up eagerly and back off reluctantly, seeking traders the
  opposite, so their quotes stay on their side of the fill boundary. The neutral row is
  the literature default (lambda_r = 0.05; lambda_a in the published 0.01..0.05 range,
  in units of r).
- ``beta1`` (short-term learning rate) is the literature default 0.4 for every row.
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
    hold_out: float
    beta1: float
    lambda_r: float
    lambda_a_up: float
    lambda_a_down: float


# The ONE table. Rows sorted by ``a``; named rows carry a name, the end rows are
# only interpolation anchors for numeric attitudes.
RISK_TABLE: tuple[tuple[str | None, RiskProfile], ...] = (
    (None, RiskProfile(-1.0, 0.01, 0.4, 0.05, 0.3, 0.3)),
    ("seeking", RiskProfile(-0.5, 0.005, 0.4, 0.05, 0.3, 0.3)),
    ("neutral", RiskProfile(0.0, 0.0, 0.4, 0.05, 0.3, 0.3)),
    ("averse", RiskProfile(0.5, -0.005, 0.4, 0.05, 0.3, 0.3)),
    (None, RiskProfile(1.0, -0.01, 0.4, 0.05, 0.3, 0.3)),
)

ATTITUDE_NAMES: tuple[str, ...] = tuple(name for name, _ in RISK_TABLE if name is not None)

_FIELDS = ("hold_out", "beta1", "lambda_r", "lambda_a_up", "lambda_a_down")


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
