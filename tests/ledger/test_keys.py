"""Key custody: keystore folders, separate signers per role, the seed policy and what
``ledger.json`` records of the keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak
from tests.keykit import FAST_SCRYPT_N, TEST_PASSWORD, keystore_ring, make_keys

from gridledger.errors import (
    KeyPasswordWrong,
    KeysMismatch,
    KeysMissing,
    KeysRequired,
    KeystoreError,
    SavedChainOutdated,
    WrongSigner,
)
from gridledger.ledger import EmbeddedBackend, Ledger, LedgerMember
from gridledger.ledger import encoding as enc
from gridledger.ledger.keys import DEFAULT_SEED, KeyRing, resolve_keys
from gridledger.ledger.keystore import (
    PASSWORD_ENV,
    key_password,
    keystore_address,
    read_keystores,
    write_keystores,
)
from gridledger.ledger.saved import LEDGER_FILE
from gridledger.market import Bid, Side, Tariffs

MEMBERS = [3, 7, 11]
MARKET = b"\x42" * 20
CHAIN_ID = 31337
TARIFFS = Tariffs(300_000, 80_000)


def _recover(digest: bytes, r: bytes, vs: bytes) -> bytes:
    """The address that made the compact signature ``(r, vs)`` of ``digest``."""
    number = int.from_bytes(vs, "big")
    v, s = 27 + (number >> 255), number & ((1 << 255) - 1)
    signer = Account._recover_hash(digest, vrs=(v, int.from_bytes(r, "big"), s))
    return bytes.fromhex(signer[2:])


def _sender(raw: bytes) -> bytes:
    return bytes.fromhex(Account.recover_transaction(raw)[2:])


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys") / "keys", MEMBERS)


# ------------------------------------------------------------------ keystores
def test_keystore_round_trip(keys_dir: Path) -> None:
    names = sorted(p.name for p in keys_dir.glob("*.json"))
    expected = ["dso.json", "grid.json", "operator.json"] + [
        f"{kind}-{m}.json" for m in MEMBERS for kind in ("member", "meter")
    ]
    assert names == sorted(expected)
    found = read_keystores(keys_dir, TEST_PASSWORD, MEMBERS)
    # standard files: eth-account opens them, their address field is the key's
    operator_file = json.loads((keys_dir / "operator.json").read_text())
    assert bytes(Account.decrypt(operator_file, TEST_PASSWORD)) == found.operator
    assert keystore_address(keys_dir / "operator.json") == enc.address_of(found.operator)
    assert operator_file["crypto"]["kdfparams"]["n"] == FAST_SCRYPT_N
    ring = KeyRing.from_keystores(keys_dir, TEST_PASSWORD, CHAIN_ID, MEMBERS)
    assert ring.source == "keystores" and ring.member_ids == MEMBERS
    assert ring.operator == enc.address_of(found.operator)
    assert ring.dso_address == keystore_address(keys_dir / "dso.json")
    assert ring.grid_address == keystore_address(keys_dir / "grid.json")
    for m in MEMBERS:
        assert ring.member_address(m) == keystore_address(keys_dir / f"member-{m}.json")
        assert ring.meter_address(m) == keystore_address(keys_dir / f"meter-{m}.json")
    addresses = [ring.operator, ring.dso_address, ring.grid_address]
    addresses += [ring.member_address(m) for m in MEMBERS]
    addresses += [ring.meter_address(m) for m in MEMBERS]
    assert len(set(addresses)) == len(addresses)  # new random keys, all different


def test_init_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    first = write_keystores(folder, "pw-1", [1], scrypt_n=FAST_SCRYPT_N)
    assert len(first.created) == 5 and first.kept == ()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    again = write_keystores(folder, "pw-1", [1, 2], scrypt_n=FAST_SCRYPT_N)
    assert again.created == ("member-2.json", "meter-2.json")
    assert set(again.kept) == set(before)
    assert all((folder / name).read_bytes() == data for name, data in before.items())
    assert (folder / "operator.json").stat().st_mode & 0o077 == 0  # owner only
    with pytest.raises(KeyPasswordWrong, match=r"operator\.json: wrong key password"):
        write_keystores(folder, "pw-2", [3], scrypt_n=FAST_SCRYPT_N)
    assert not (folder / "member-3.json").exists()


def test_bad_kdf_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="scrypt n = 3000: must be a power of two"):
        write_keystores(tmp_path / "keys", "pw", [1], scrypt_n=3000)


def test_wrong_password_is_named(keys_dir: Path) -> None:
    with pytest.raises(KeyPasswordWrong, match=r"operator\.json: wrong key password"):
        KeyRing.from_keystores(keys_dir, "not-the-password", CHAIN_ID, MEMBERS)


def test_missing_key_files_are_listed(keys_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(KeysMissing) as caught:
        KeyRing.from_keystores(keys_dir, TEST_PASSWORD, CHAIN_ID, [*MEMBERS, 20, 21])
    message = str(caught.value)
    assert "lacks 4 keystore file(s)" in message
    for name in ("member-20.json", "meter-20.json", "member-21.json", "meter-21.json"):
        assert name in message
    assert "gridledger keys init" in message
    ring = KeyRing.from_keystores(keys_dir, TEST_PASSWORD, CHAIN_ID, MEMBERS)
    with pytest.raises(KeysMissing, match=r"no keys for member\(s\) 5: missing member-5\.json"):
        ring.require_members([3, 5])
    with pytest.raises(KeysMissing, match="no such folder"):
        KeyRing.from_keystores(tmp_path / "nowhere", TEST_PASSWORD, CHAIN_ID, MEMBERS)


def test_key_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(KeystoreError, match=f"set the environment variable {PASSWORD_ENV}"):
        key_password()
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert key_password() == "from-env"
    file = tmp_path / "pw.txt"
    file.write_text("from-file\nignored\n")
    assert key_password(file) == "from-file"
    file.write_text("")
    with pytest.raises(KeystoreError, match=r"pw\.txt: key password file is empty"):
        key_password(file)


# -------------------------------------------------------------------- signers
def test_each_signer_signs_only_for_itself(keys_dir: Path) -> None:
    ring = KeyRing.from_keystores(keys_dir, TEST_PASSWORD, CHAIN_ID, MEMBERS)
    ring.bind_market(MARKET)
    bid = Bid(7, Side.BUY, 1_500, 200_000, 2)
    word = enc.pack_bid(bid)
    digest = enc.bid_digest(ring.domain, 4, 1, word)
    r, vs = ring.member(7).sign_bid(4, 1, word)
    assert _recover(digest, r, vs) == ring.member_address(7)
    with pytest.raises(WrongSigner, match="member 3: cannot sign member 7's bid"):
        ring.member(3).sign_bid(4, 1, word)
    with pytest.raises(WrongSigner, match="meter 3: cannot sign member 7's reading"):
        ring.meter(3).sign_reading(4, enc.pack_reading(7, -200))
    reading = enc.pack_reading(11, -200)
    r, vs = ring.meter(11).sign_reading(4, reading)
    assert _recover(enc.reading_digest(ring.domain, 4, reading), r, vs) == ring.meter_address(11)
    # the ring asks each member's signer for its own bid, each meter for its own reading
    bids = [Bid(m, Side.SELL, 100 + m, 150_000, 1) for m in MEMBERS]
    words, sigs = ring.sign_round(4, 0, bids)
    for k, (m, w) in enumerate(zip(MEMBERS, words, strict=True)):
        found = _recover(enc.bid_digest(ring.domain, 4, 0, w), sigs[2 * k], sigs[2 * k + 1])
        assert found == ring.member_address(m) != ring.meter_address(m)
    words, sigs = ring.sign_readings(5, {m: -m for m in MEMBERS})
    for k, (m, w) in enumerate(zip(MEMBERS, words, strict=True)):
        found = _recover(enc.reading_digest(ring.domain, 5, w), sigs[2 * k], sigs[2 * k + 1])
        assert found == ring.meter_address(m)
    # the DSO signs digests; transactions come from each account's own address
    verdict = keccak(b"a verdict")
    assert _recover(verdict, *ring.dso.sign_digest(verdict)) == ring.dso_address
    assert _sender(ring.sign_tx(MARKET, b"\x01", 50_000, 0)) == ring.operator
    assert _sender(ring.grid.sign_tx(MARKET, b"\x02", 50_000, 0)) == ring.grid_address
    assert _sender(ring.member(3).sign_tx(MARKET, b"\x03", 50_000, 0)) == ring.member_address(3)
    assert _sender(ring.meter(3).sign_tx(MARKET, b"\x04", 50_000, 0)) == ring.meter_address(3)
    assert "key" not in repr(ring.member(3)).lower()  # no key in a repr


def test_seed_ring_keeps_its_derivation() -> None:
    """Seed keys are the ones the simulation always derived (operator, member/<id>,
    meter/<id>), plus the DSO's and the GRID account's."""
    ring = KeyRing.from_seed(DEFAULT_SEED, CHAIN_ID, [5])
    assert ring.operator == enc.address_of(enc.derive_key(DEFAULT_SEED, "operator"))
    assert ring.member_key(5) == enc.derive_key(DEFAULT_SEED, "member/5")
    assert ring.meter_key(5) == enc.derive_key(DEFAULT_SEED, "meter/5")
    assert ring.dso_address == enc.address_of(enc.derive_key(DEFAULT_SEED, "dso"))
    assert ring.grid_address == enc.address_of(enc.derive_key(DEFAULT_SEED, "grid"))
    ring.require_members([6])  # derived on demand
    assert ring.member_ids == [5, 6]
    assert ring.record() == {"source": "seed"}


# --------------------------------------------------------------------- policy
def test_default_seed_refused_on_a_node() -> None:
    """Refused before anything is sent: the URL is never contacted (nothing listens)."""
    url = "http://127.0.0.1:9"
    with pytest.raises(KeysRequired) as caught:
        Ledger.connect(url)
    message = str(caught.value)
    assert "refused on a JSON-RPC node" in message
    assert "operator.json, dso.json, grid.json" in message and "--keys DIR" in message
    assert PASSWORD_ENV in message and "--key-password-file" in message
    with pytest.raises(KeysRequired):
        resolve_keys(url, None, b"another seed")
    with pytest.raises(KeysRequired):
        resolve_keys(url, KeyRing.from_seed(DEFAULT_SEED), None)
    assert resolve_keys("embedded", None, None).source == "seed"


def _small_setup(ledger: Ledger) -> None:
    ledger.setup([LedgerMember(m, 1 + m % 3, 2) for m in MEMBERS], TARIFFS, 1, 10**9)


def test_ledger_json_records_the_keys_not_the_seed(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    _small_setup(Ledger.connect("embedded", state_dir=state))
    text = (state / LEDGER_FILE).read_text()
    saved = json.loads(text)
    assert saved["keys"] == {"source": "seed", "dir": None}
    assert "seed" not in saved and DEFAULT_SEED.hex() not in text
    assert saved["operator"] == KeyRing.from_seed(DEFAULT_SEED).operator.hex()


def test_saved_keys_are_required_again(keys_dir: Path, tmp_path: Path) -> None:
    """A chain set up with keystores continues only with them; seed keys are refused on
    it, and keystores on a seed chain; a read-only ledger needs no keys."""
    state = tmp_path / "chain"
    ring = KeyRing.from_keystores(keys_dir, TEST_PASSWORD, None, MEMBERS)
    backend = EmbeddedBackend(funded=[ring.operator])
    ledger = Ledger(backend, "embedded", state, keys=ring)
    _small_setup(ledger)
    saved = json.loads((state / LEDGER_FILE).read_text())
    assert saved["keys"] == {"source": "keystores", "dir": str(keys_dir.resolve())}
    with pytest.raises(KeysRequired, match=r"set up with the keystores in .*give --keys"):
        Ledger.connect("embedded", state_dir=state)
    other = keystore_ring(tmp_path / "other-keys", MEMBERS)
    with pytest.raises(KeysMismatch, match="this chain's operator is 0x"):
        Ledger.connect("embedded", state_dir=state, keys=other)
    reader = Ledger.connect("embedded", state_dir=state, read_only=True)
    assert reader.keys.source == "public" and reader.operator == ring.operator
    seeded = tmp_path / "seeded"
    _small_setup(Ledger.connect("embedded", state_dir=seeded))
    with pytest.raises(KeysMismatch):
        Ledger.connect("embedded", state_dir=seeded, keys=ring)


def test_version_2_ledger_json_is_refused_by_name(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    _small_setup(Ledger.connect("embedded", state_dir=state))
    path = state / LEDGER_FILE
    data = json.loads(path.read_text())
    data.update(version=2, seed=DEFAULT_SEED.hex())
    path.write_text(json.dumps(data))
    with pytest.raises(SavedChainOutdated, match=r"version 2.*records the seed of its keys"):
        Ledger.connect("embedded", state_dir=state, read_only=True)


def test_keystores_of_other_settings_open_as_eth_account_opens_them(tmp_path: Path) -> None:
    # the usual file (scrypt, aes-128-ctr) is opened with OpenSSL's scrypt, anything else by
    # eth-account: both give the key eth-account gives, and a wrong password is named
    folder = tmp_path / "keys"
    make_keys(folder, [1])
    password = "pässwörd"  # not ASCII: the bytes are the UTF-8 of the text, as in eth-account
    settings = {
        "member-1.json": {"kdf": "scrypt", "iterations": 2**11},
        "meter-1.json": {"kdf": "pbkdf2", "iterations": 1000},
    }
    for name, kdf in settings.items():
        key = enc.derive_key(name.encode(), "test")
        data = Account.encrypt(key, password, **kdf)  # type: ignore[arg-type]
        (folder / name).write_text(json.dumps(data))
    for name in ("operator.json", "dso.json", "grid.json"):
        data = json.loads((folder / name).read_text())
        key = bytes(Account.decrypt(data, TEST_PASSWORD))
        (folder / name).write_text(json.dumps(Account.encrypt(key, password, iterations=2**10)))
    found = read_keystores(folder, password, [1])
    for name, key in (("member-1.json", found.members[1]), ("meter-1.json", found.meters[1])):
        assert key == bytes(Account.decrypt(json.loads((folder / name).read_text()), password))
    with pytest.raises(KeyPasswordWrong, match=r"operator\.json: wrong key password"):
        read_keystores(folder, "passwörd", [1])
    operator = json.loads((folder / "operator.json").read_text())
    operator["crypto"]["kdfparams"]["n"] = 3  # not a power of two: OpenSSL refuses it
    (folder / "operator.json").write_text(json.dumps(operator))
    with pytest.raises(KeystoreError, match=r"operator\.json: keystore file cannot be decrypted"):
        read_keystores(folder, password, [1])
