"""The one exception hierarchy of gridledger.

Every error the library raises on purpose derives from :class:`GridledgerError`.
Messages are built first (naming the file, key and value involved), then raised.
"""

from __future__ import annotations

__all__ = [
    "ChainError",
    "ClearingError",
    "GridError",
    "GridledgerError",
    "MemberError",
    "ScenarioError",
    "SecurityError",
    "SettlementError",
]


class GridledgerError(Exception):
    """Base class of every error gridledger raises on purpose."""


class ScenarioError(GridledgerError):
    """A scenario file or override is invalid."""


class GridError(GridledgerError):
    """A feeder could not be built or a power flow failed."""


class MemberError(GridledgerError):
    """A member, profile or forecaster parameter is invalid."""


class ClearingError(GridledgerError):
    """Market input is malformed (bad bid, unknown member, bad fee table)."""


class SecurityError(GridledgerError):
    """The security check or congestion management could not finish."""


class SettlementError(GridledgerError):
    """Settlement input is inconsistent (unknown trade, missing reading)."""


class ChainError(GridledgerError):
    """A ledger call failed: reverted transaction, unreachable node, bad artifact."""
