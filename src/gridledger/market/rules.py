"""Clearing rules by name, behind one signature.

``clear(rule, bids, fees, kappa)`` dispatches to the rule the scenario names
(``market.clearing``). ``fees`` is the per-bus-pair use-of-system table in
micro-tokens per kWh (``fees[seller_bus, buyer_bus]``), or None for no fees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np

from gridledger.errors import ClearingError
from gridledger.market.double_auction import clear_uniform
from gridledger.market.greedy import clear_greedy
from gridledger.market.merit_order import clear_merit_order
from gridledger.market.optimal import clear_optimal
from gridledger.market.orders import Bid, ClearingResult

__all__ = ["CLEARING_RULES", "ClearingRule", "clear"]

ClearingRule = Callable[[Sequence[Bid], "np.ndarray | None", Fraction], ClearingResult]


def _uniform(bids: Sequence[Bid], fees: np.ndarray | None, kappa: Fraction) -> ClearingResult:
    if fees is not None and np.any(fees):
        message = (
            "clearing 'uniform' does not charge network fees; "
            "use market.clearing = 'greedy' or 'optimal' with a network_fee"
        )
        raise ClearingError(message)
    return clear_uniform(bids)


def _greedy(bids: Sequence[Bid], fees: np.ndarray | None, kappa: Fraction) -> ClearingResult:
    return clear_greedy(bids, fees, kappa)


def _optimal(bids: Sequence[Bid], fees: np.ndarray | None, kappa: Fraction) -> ClearingResult:
    return clear_optimal(bids, fees, kappa)


def _merit_order(bids: Sequence[Bid], fees: np.ndarray | None, kappa: Fraction) -> ClearingResult:
    return clear_merit_order(bids, fees, kappa)


CLEARING_RULES: dict[str, ClearingRule] = {
    "uniform": _uniform,
    "greedy": _greedy,
    "optimal": _optimal,
    "merit_order": _merit_order,
}


def clear(
    rule: str,
    bids: Sequence[Bid],
    fees: np.ndarray | None = None,
    kappa: Fraction = Fraction(1, 2),
) -> ClearingResult:
    """Clear ``bids`` with the named rule."""
    if rule not in CLEARING_RULES:
        message = f"market.clearing = {rule!r} is not known; known: {sorted(CLEARING_RULES)}"
        raise ClearingError(message)
    return CLEARING_RULES[rule](bids, fees, kappa)
