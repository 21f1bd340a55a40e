"""Ledger layer: contracts' artifacts, typed bindings, backends, the ``Ledger`` facade.

Knows nothing of power flow or bidding: it moves typed market records
(:mod:`gridledger.market.orders`) to and from the contracts.
"""

from gridledger.ledger.backends import Backend, EmbeddedBackend, RpcBackend
from gridledger.ledger.deploy import ROLE_CODES, LedgerMember, members_for_ledger
from gridledger.ledger.facade import Ledger
from gridledger.ledger.keys import DEFAULT_SEED, KeyRing
from gridledger.ledger.txqueue import ChainStats

__all__ = [
    "DEFAULT_SEED",
    "ROLE_CODES",
    "Backend",
    "ChainStats",
    "EmbeddedBackend",
    "KeyRing",
    "Ledger",
    "LedgerMember",
    "RpcBackend",
    "members_for_ledger",
]
