"""Bidding strategies behind one protocol, selected by name from a registry."""

from gridledger.bidding import adaptive_aggressive as _aa  # noqa: F401  (registers "aa")
from gridledger.bidding import zero_intelligence as _zi  # noqa: F401  (registers "zi")
from gridledger.bidding.base import (
    STRATEGIES,
    PublicView,
    RoundInfo,
    Trader,
    TraderSpec,
    make_trader,
    register_strategy,
)

__all__ = [
    "STRATEGIES",
    "PublicView",
    "RoundInfo",
    "Trader",
    "TraderSpec",
    "make_trader",
    "register_strategy",
]
