"""Keys folders for the tests: keystores with a light scrypt setting (fast to decrypt).

Tests on a JSON-RPC node (anvil) must sign with keystores: the simulation seed is
refused there. ``make_keys`` writes a folder once; ``keystore_ring`` loads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gridledger.ledger.backends import Backend
from gridledger.ledger.keys import KeyRing
from gridledger.ledger.keystore import MIN_SCRYPT_N, write_keystores

__all__ = [
    "FAST_SCRYPT_N",
    "TEST_PASSWORD",
    "fund_ring",
    "keystore_ring",
    "make_keys",
    "password_file",
]

TEST_PASSWORD = "gridledger-tests"
FAST_SCRYPT_N = MIN_SCRYPT_N  # tests only: real folders use the default (docs/ledger.md)


def make_keys(folder: Path, member_ids: Iterable[int]) -> Path:
    """Write the keystores of the roles and ``member_ids`` into ``folder`` (kept if there)
    and a ``password.txt`` beside it; returns ``folder``."""
    write_keystores(folder, TEST_PASSWORD, member_ids, scrypt_n=FAST_SCRYPT_N)
    password_file(folder).write_text(TEST_PASSWORD + "\n", encoding="utf-8")
    return folder


def password_file(folder: Path) -> Path:
    """The password file :func:`make_keys` writes next to ``folder``."""
    return folder.parent / f"{folder.name}-password.txt"


def keystore_ring(folder: Path, member_ids: Iterable[int]) -> KeyRing:
    """A key ring of freshly written keystores in ``folder`` for ``member_ids``."""
    ids = list(member_ids)
    make_keys(folder, ids)
    return KeyRing.from_keystores(folder, TEST_PASSWORD, None, ids)


def fund_ring(backend: Backend, ring: KeyRing, wei: int = 10**21) -> None:
    """Give every account of ``ring`` that sends its own transactions gas (a JSON-RPC node:
    ``anvil_setBalance``; the embedded chain funds at genesis only)."""
    for address in ring.addresses():
        backend.fund(address, wei)
