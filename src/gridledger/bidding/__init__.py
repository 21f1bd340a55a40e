"""Bidding: strategies behind one protocol (a registry by name), the mechanisms that
turn members' positions into rounds of bids, and the best-response game (``game/``)."""

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
from gridledger.bidding.game import BestResponseMechanism, BRSettings
from gridledger.bidding.mechanism import Mechanism, Position, TraderMechanism

__all__ = [
    "STRATEGIES",
    "BRSettings",
    "BestResponseMechanism",
    "Mechanism",
    "Position",
    "PublicView",
    "RoundInfo",
    "Trader",
    "TraderMechanism",
    "TraderSpec",
    "make_trader",
    "register_strategy",
]
