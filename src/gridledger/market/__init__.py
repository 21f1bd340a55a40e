"""Pure-Python reference of the market rules (integers in, integers out, no I/O).

Imports nothing of gridledger but :mod:`gridledger.errors`, :mod:`gridledger.lp` and
itself. Formulas and sources: docs/methods.md.
"""

from gridledger.market.double_auction import clear_uniform, sorted_books
from gridledger.market.fees import FEE_METHODS, FeeSpec, fee_table
from gridledger.market.greedy import clear_greedy
from gridledger.market.merit_order import clear_merit_order
from gridledger.market.optimal import (
    Certificate,
    OptimalSolution,
    certify,
    clear_optimal,
    solve_optimal,
)
from gridledger.market.orders import (
    Bid,
    ClearingResult,
    Curtailment,
    Side,
    Trade,
    apply_curtailments,
    validate_bids,
)
from gridledger.market.rules import CLEARING_RULES, clear
from gridledger.market.settlement import (
    GRID,
    OPERATOR,
    MemberSettlement,
    Settlement,
    Tariffs,
    settle,
)
from gridledger.market.units import kwh_to_wh, money_micro, price_to_micro
from gridledger.market.welfare import (
    PriceLookup,
    bid_surplus_wh_micro,
    order_surplus_per_kwh_micro,
    surplus_per_kwh_micro,
    surplus_wh_micro,
    welfare_micro,
)

__all__ = [
    "CLEARING_RULES",
    "FEE_METHODS",
    "GRID",
    "OPERATOR",
    "Bid",
    "Certificate",
    "ClearingResult",
    "Curtailment",
    "FeeSpec",
    "MemberSettlement",
    "OptimalSolution",
    "PriceLookup",
    "Settlement",
    "Side",
    "Tariffs",
    "Trade",
    "apply_curtailments",
    "bid_surplus_wh_micro",
    "certify",
    "clear",
    "clear_greedy",
    "clear_merit_order",
    "clear_optimal",
    "clear_uniform",
    "fee_table",
    "kwh_to_wh",
    "money_micro",
    "order_surplus_per_kwh_micro",
    "price_to_micro",
    "settle",
    "solve_optimal",
    "sorted_books",
    "surplus_per_kwh_micro",
    "surplus_wh_micro",
    "validate_bids",
    "welfare_micro",
]
