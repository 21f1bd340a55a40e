"""Keys folders: one encrypted keystore file (Web3 Secret Storage, version 3) per key.

A keys folder holds ``operator.json``, ``dso.json``, ``grid.json`` and, for every member
id, ``member-<id>.json`` (its bidding/withdrawal account) and ``meter-<id>.json`` (its
meter). Each is the standard JSON of ``eth_account.Account.encrypt``, so any Ethereum
tool opens it; its ``address`` field is readable without the password.

Key derivation: scrypt with ``n = 2**15``, ``r = 8``, ``p = 1`` by default
(:data:`DEFAULT_SCRYPT_N`; 32 MiB and about 70 ms per guess on one core). All files
of a folder share one password, so the folder is only as strong as its cheapest file:
one setting for all. The Ethereum default (``n = 2**18``, about 0.6 s per key) would make
loading the 71 keys of the ieee33 scenario take about 20 s at every run start; ``n =
2**15`` takes about 2.5 s (measured in docs/ledger.md, "Keys"). Files written with other
parameters (or pbkdf2) are read as they are: the parameters travel in each file.

The password comes from ``--key-password-file FILE`` (the file's first line) or the
environment variable :data:`PASSWORD_ENV` (:func:`key_password`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_keyfile.keyfile import create_keyfile_json, decrypt_aes_ctr
from eth_utils import keccak

from gridledger.errors import KeyPasswordWrong, KeysMissing, KeystoreError
from gridledger.ledger import encoding as enc

__all__ = [
    "DEFAULT_SCRYPT_N",
    "PASSWORD_ENV",
    "ROLES",
    "KeysFound",
    "KeysWritten",
    "key_password",
    "keystore_address",
    "keystore_file",
    "present_members",
    "read_keystores",
    "write_keystores",
]

log = logging.getLogger(__name__)

PASSWORD_ENV = "GRIDLEDGER_KEY_PASSWORD"
ROLES = ("operator", "dso", "grid")
DEFAULT_SCRYPT_N = 2**15
MIN_SCRYPT_N = 2**10
MAX_SCRYPT_N = 2**20


def keystore_file(label: str, member: int | None = None) -> str:
    """File name of a role's key (``"operator"``...) or of a member's ``"member"`` /
    ``"meter"`` key: ``operator.json``, ``member-7.json``, ``meter-7.json``."""
    return f"{label}.json" if member is None else f"{label}-{member}.json"


def key_password(password_file: Path | None = None) -> str:
    """The keys' password: the first line of ``password_file``, else :data:`PASSWORD_ENV`."""
    if password_file is not None:
        path = Path(password_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            message = f"{path}: key password file cannot be read ({error})"
            raise KeystoreError(message) from error
        password = text.splitlines()[0] if text else ""
        if not password:
            message = f"{path}: key password file is empty"
            raise KeystoreError(message)
        return password
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        message = (
            f"no key password: set the environment variable {PASSWORD_ENV} or give "
            "--key-password-file FILE (chain.key_password_file)"
        )
        raise KeystoreError(message)
    return password


@dataclass(frozen=True, slots=True)
class KeysWritten:
    """What :func:`write_keystores` did: files created and files already there (kept)."""

    created: tuple[str, ...]
    kept: tuple[str, ...]


def _labels(member_ids: Iterable[int]) -> list[tuple[str, int | None]]:
    ids = sorted({int(i) for i in member_ids})
    return [(r, None) for r in ROLES] + [(k, i) for i in ids for k in ("member", "meter")]


def write_keystores(
    folder: Path, password: str, member_ids: Iterable[int], *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> KeysWritten:
    """Create the keystores of the roles and of ``member_ids`` in ``folder``, each with a
    new random key; files already there are kept, never overwritten."""
    if not password:
        message = "keystores need a non-empty password"
        raise KeystoreError(message)
    if scrypt_n & (scrypt_n - 1) or not MIN_SCRYPT_N <= scrypt_n <= MAX_SCRYPT_N:
        message = f"scrypt n = {scrypt_n}: must be a power of two in {MIN_SCRYPT_N}..{MAX_SCRYPT_N}"
        raise KeystoreError(message)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        message = f"{folder}: not a folder (give a keys folder)"
        raise KeystoreError(message)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (folder / keystore_file("operator")).exists():
        # a folder is one password: refuse to add files another password would not open
        _decrypt(folder / keystore_file("operator"), password)
    created: list[str] = []
    kept: list[str] = []
    for label, member in _labels(member_ids):
        name = keystore_file(label, member)
        path = folder / name
        if path.exists():
            kept.append(name)
            continue
        key = enc.derive_key(secrets.token_bytes(32), label)  # in range by construction
        data = create_keyfile_json(key, password.encode(), kdf="scrypt", iterations=scrypt_n)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            kept.append(name)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
        created.append(name)
    return KeysWritten(tuple(created), tuple(kept))


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        message = f"{path}: no such keystore file"
        raise KeysMissing(message) from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        message = f"{path}: not a keystore file ({error})"
        raise KeystoreError(message) from error
    if not isinstance(data, dict) or not isinstance(data.get("crypto"), dict):
        message = f"{path}: not a keystore file (no 'crypto' section)"
        raise KeystoreError(message)
    return data


def keystore_address(path: Path) -> bytes:
    """The address a keystore file declares (its ``address`` field), without decrypting."""
    data = _load_json(Path(path))
    raw = data.get("address")
    try:
        address = bytes.fromhex(str(raw).removeprefix("0x"))
    except ValueError:
        address = b""
    if len(address) != 20:
        message = f"{path}: keystore file has no valid 'address' (found {raw!r:.50})"
        raise KeystoreError(message)
    return address


def _open_keystore(data: dict[str, Any], password: str) -> bytes:
    """The private key of a keystore (raises ``ValueError("MAC mismatch")`` for a wrong
    password). The usual file (version 3, scrypt, aes-128-ctr) is opened here with
    OpenSSL's scrypt (``hashlib``), several times faster than ``Account.decrypt`` and run
    in parallel by threads; any other file by ``Account.decrypt``."""
    crypto = data["crypto"]
    params = crypto.get("kdfparams")
    if not (
        data.get("version") == 3
        and crypto.get("kdf") == "scrypt"
        and crypto.get("cipher") == "aes-128-ctr"
        and isinstance(params, dict)
    ):
        return bytes(Account.decrypt(data, password))
    n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
    try:
        derived = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(params["salt"]),
            n=n,
            r=r,
            p=p,
            dklen=int(params["dklen"]),
            maxmem=128 * r * (n + p + 2) + 2**20,
        )
    except (ValueError, OverflowError):  # parameters OpenSSL refuses: the reference decrypts
        return bytes(Account.decrypt(data, password))
    ciphertext = bytes.fromhex(crypto["ciphertext"])
    if not hmac.compare_digest(keccak(derived[16:32] + ciphertext), bytes.fromhex(crypto["mac"])):
        message = "MAC mismatch"
        raise ValueError(message)
    iv = int(crypto["cipherparams"]["iv"], 16)
    return bytes(decrypt_aes_ctr(ciphertext, derived[:16], iv))


def _decrypt(path: Path, password: str) -> bytes:
    data = _load_json(path)
    try:
        key = _open_keystore(data, password)
    except ValueError as error:
        if "MAC mismatch" in str(error):
            message = f"{path}: wrong key password (the keystore's MAC does not match)"
            raise KeyPasswordWrong(message) from error
        message = f"{path}: keystore file cannot be decrypted ({error})"
        raise KeystoreError(message) from error
    except (KeyError, TypeError) as error:
        message = f"{path}: keystore file is damaged (missing or bad {error})"
        raise KeystoreError(message) from error
    declared = data.get("address")
    if declared is not None and str(declared).lower().removeprefix("0x") != (
        enc.address_of(key).hex()
    ):
        message = (
            f"{path}: keystore's 'address' {declared} is not the address of the key it holds "
            f"(0x{enc.address_of(key).hex()})"
        )
        raise KeystoreError(message)
    return key


@dataclass(slots=True)
class KeysFound:
    """The private keys of one keys folder, decrypted."""

    operator: bytes
    dso: bytes
    grid: bytes
    members: dict[int, bytes] = field(default_factory=dict)
    meters: dict[int, bytes] = field(default_factory=dict)


def present_members(folder: Path) -> list[int]:
    """Member ids with a ``member-<id>.json`` in ``folder``."""
    out = []
    for path in Path(folder).glob("member-*.json"):
        text = path.stem.removeprefix("member-")
        if text.isdigit():
            out.append(int(text))
    return sorted(out)


def read_keystores(
    folder: Path, password: str, member_ids: Iterable[int] | None = None
) -> KeysFound:
    """Decrypt the role keys and the keys of ``member_ids`` (None: every member key file in
    the folder) from ``folder``. Every missing file is named in one
    :class:`~gridledger.errors.KeysMissing`; a wrong password is a
    :class:`~gridledger.errors.KeyPasswordWrong`."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no such folder"
        message = (
            f"{folder}: {what} (give a keys folder; create one with "
            "`gridledger keys init DIR --scenario S`)"
        )
        raise KeysMissing(message)
    ids = present_members(folder) if member_ids is None else member_ids
    labels = _labels(ids)
    missing = [
        keystore_file(label, m)
        for label, m in labels
        if not (folder / keystore_file(label, m)).exists()
    ]
    if missing:
        shown = ", ".join(missing[:12]) + (
            f" and {len(missing) - 12} more" if len(missing) > 12 else ""
        )
        message = (
            f"{folder}: keys folder lacks {len(missing)} keystore file(s): {shown} "
            "(add them with `gridledger keys init DIR --scenario S`; existing files are kept)"
        )
        raise KeysMissing(message)
    paths = [folder / keystore_file(label, m) for label, m in labels]
    # the operator's first: a wrong password fails once, before the pool starts
    first = _decrypt(paths[0], password)
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        rest = list(pool.map(lambda p: _decrypt(p, password), paths[1:]))
    keys = [first, *rest]
    found = KeysFound(operator=keys[0], dso=keys[1], grid=keys[2])
    for (label, member), key in zip(labels[3:], keys[3:], strict=True):
        assert member is not None
        (found.members if label == "member" else found.meters)[member] = key
    addresses = [enc.address_of(k) for k in keys]
    if len(set(addresses)) != len(addresses):
        message = f"{folder}: two keystore files hold the same key (each party needs its own)"
        raise KeystoreError(message)
    log.info("%s: %d keys decrypted", folder, len(keys))
    return found
