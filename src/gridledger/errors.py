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
    "KeyPasswordWrong",
    "KeysMismatch",
    "KeysMissing",
    "KeysRequired",
    "KeystoreError",
    "MemberError",
    "NodeStateBehind",
    "NodeStateLost",
    "NodeUnreachable",
    "SavedChainDamaged",
    "SavedChainError",
    "SavedChainOutdated",
    "ScenarioError",
    "SecurityError",
    "SettlementError",
    "UsageError",
    "WrongSigner",
]


class GridledgerError(Exception):
    """Base class of every error gridledger raises on purpose.

    ``exit_code`` is what the command line exits with: 1 for a run-time failure
    (a damaged file, an unreachable node), 2 for a usage mistake (a bad scenario,
    override, option or folder).
    """

    exit_code = 1


class UsageError(GridledgerError):
    """A command was given options, folders or files it cannot work with."""

    exit_code = 2


class ScenarioError(GridledgerError):
    """A scenario file or override is invalid."""

    exit_code = 2


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


class SavedChainError(ChainError):
    """A saved chain folder (``ledger.json``, ``txlog.jsonl``) cannot be used as it is."""


class SavedChainDamaged(SavedChainError):
    """A saved chain file is damaged: torn, edited, reordered, missing or malformed."""


class SavedChainOutdated(SavedChainError):
    """A saved chain was written by an older gridledger and cannot be verified."""


class NodeUnreachable(ChainError):
    """The JSON-RPC node did not answer (down, connection refused or reset, timeout)."""


class NodeStateLost(ChainError):
    """The JSON-RPC node does not hold the chain the saved folder records (restarted
    without its state, another chain id, or another history at the operator's nonces)."""


class NodeStateBehind(NodeStateLost):
    """The JSON-RPC node holds an earlier state of the saved chain than the local log
    (restarted from an older state); a writable ledger re-sends the missing blocks."""


class WrongSigner(ChainError):
    """A signer was asked to sign for someone else (another member's bid, another meter's
    reading): every signer holds one key and signs only as its owner."""


class KeystoreError(UsageError):
    """A keys folder, keystore file or key password cannot be used as given."""


class KeysMissing(KeystoreError):
    """The keys folder lacks the keystore files of some roles, members or meters."""


class KeyPasswordWrong(KeystoreError):
    """A keystore file does not open with the password given."""


class KeysRequired(KeystoreError):
    """Keys must be given: seed-derived simulation keys are refused on a JSON-RPC node,
    and a chain set up with keystores is continued only with them."""


class KeysMismatch(KeystoreError):
    """The keys given are not the ones the saved chain was set up with."""
