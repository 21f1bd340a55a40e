"""Risk attitude -> the hold-out and learning rates of the AA trader.

This module is the one place that maps a member's declared risk attitude to the
parameters of :mod:`gridledger.bidding.adaptive_aggressive`. The mapping is the
table :data:`RISK_TABLE`; a numeric attitude ``a`` in [-1, 1] is interpolated
linearly between its rows (``a`` is the row key), a named attitude picks its row.

=========  =====  ========  =====  ========  ===========  =============
attitude     a    hold_out  beta1  lambda_r  lambda_a up  lambda_a down
=========  =====  ========  =====  ========  ===========  =============
(a = -1)   -1.0    0.01     0.4    0.05      0.3          0.3
seeking    -0.5    0.005    0.4    0.05      0.3          0.3
neutral     0.0    0.0      0.4    0.05      0.3          0.3
averse      0.5   -0.005    0.4    0.05      0.3          0.3
(a = +1)    1.0   -0.01     0.4    0.05      0.3          0.3
=========  =====  ========  =====  ========  ===========  =============

- ``hold_out`` (share of p*): what the attitude adds to the margin a trader asks. A
  trader learns a reference quote tau(r) from its own results; it quotes
  ``tau(r) - hold_out p*`` (buyer) or ``tau(r) + hold_out p*`` (seller). Seeking
  traders (hold_out > 0) hold out for a larger margin and accept a lower chance to
  trade; averse traders (hold_out < 0) concede margin for a higher chance to trade.
  The offset is a price, the same for every limit, so it shifts what each trader asks
  without changing which of its trades are marginal.
- ``lambda_r``, ``lambda_a up`` (more aggressive), ``lambda_a down`` (less aggressive)
  and ``beta1``: the short-term learning of r (paper: lambda_r = 0.05, beta1 = 0.4;
  lambda_a in units of r, 0.3 chosen on the equilibrium experiment's tuning seeds,
  see docs/bidding.md). The same for every attitude: attitudes differ in what they
  ask, not in how fast they learn.
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
