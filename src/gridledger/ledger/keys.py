"""The keys of one simulated deployment: a :class:`KeyRing` of separate signers.

Each party signs with its own signer (:mod:`~gridledger.ledger.signers`): the operator,
the DSO, the GRID account, every member's account and every member's meter. The ring
holds them all because the simulation plays every party; the operator's code path takes
only the operator's signer, the public addresses and the signatures the others made
(:meth:`KeyRing.sign_round` asks each member's signer for its own bid,
:meth:`KeyRing.sign_readings` each meter's signer for its own reading).

Where the keys come from (:attr:`KeyRing.source`):

- ``"seed"``: derived from a seed (:meth:`KeyRing.from_seed`). Anyone who knows the
  seed signs for everyone; the default seed :data:`DEFAULT_SEED` is public. For the
  embedded chain only: :func:`refuse_seed_keys` refuses them on a JSON-RPC node.
- ``"keystores"``: decrypted from a keys folder (:meth:`KeyRing.from_keystores`,
  :mod:`~gridledger.ledger.keystore`).
- ``"public"``: addresses only, no private key (a read-only ledger, :meth:`KeyRing.public`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from gridledger.errors import ChainError, KeysMismatch, KeysMissing, KeysRequired
from gridledger.ledger import encoding as enc
from gridledger.ledger.keystore import PASSWORD_ENV, keystore_file, read_keystores
from gridledger.ledger.signers import (
    MAX_FEE_WEI,
    DsoSigner,
    GridSigner,
    MemberSigner,
    MeterSigner,
    OperatorSigner,
)
from gridledger.market.orders import Bid

__all__ = [
    "DEFAULT_SEED",
    "MAX_FEE_WEI",
    "KeyRing",
    "KeySource",
    "PublicKeys",
    "refuse_seed_keys",
    "resolve_keys",
    "seed_refused_message",
]

DEFAULT_SEED = b"gridledger-simulation-only"

KeySource = Literal["seed", "keystores", "public"]


class PublicKeys(Protocol):
    """The public side of a deployment's keys: what the operator's code needs."""

    @property
    def operator(self) -> bytes: ...

    def member_address(self, member: int) -> bytes: ...

    def meter_address(self, member: int) -> bytes: ...


def seed_refused_message(chain: str) -> str:
    """Why seed-derived keys are refused on ``chain``, and how to give keys instead."""
    return (
        f"chain {chain}: simulation keys derived from a seed are refused on a JSON-RPC "
        "node (the seed is public: anyone could sign as the operator, the DSO, the GRID "
        "account and every member and meter); give a keys folder holding operator.json, "
        "dso.json, grid.json and member-<id>.json, meter-<id>.json for every member with "
        "--keys DIR (scenario key chain.keys), its password in the environment variable "
        f"{PASSWORD_ENV} or --key-password-file FILE; create one with "
        "`gridledger keys init DIR --scenario S`"
    )


def refuse_seed_keys(chain: str, source: KeySource) -> None:
    """Raise :class:`~gridledger.errors.KeysRequired` for seed keys on a non-embedded chain."""
    if chain != "embedded" and source == "seed":
        raise KeysRequired(seed_refused_message(chain))


class KeyRing:
    """The signers of one simulated deployment (see the module docstring).

    ``chain_id`` may be None until the node is known (:meth:`bind_chain`); bids and
    readings are signed over the Market bound with :meth:`bind_market`.
    """

    def __init__(
        self,
        source: KeySource,
        operator: OperatorSigner | bytes,
        dso: DsoSigner | None = None,
        grid: GridSigner | None = None,
        *,
        keys_dir: Path | None = None,
        seed: bytes | None = None,
    ) -> None:
        self.source: KeySource = source
        self.keys_dir = keys_dir
        self._seed = seed
        if isinstance(operator, OperatorSigner):
            self._operator_signer: OperatorSigner | None = operator
            self._operator = operator.address
        else:
            self._operator_signer, self._operator = None, bytes(operator)
        self._dso = dso
        self._grid = grid
        self._members: dict[int, MemberSigner] = {}
        self._meters: dict[int, MeterSigner] = {}
        self.chain_id: int | None = None
        self.market: bytes | None = None

    # ---------------------------------------------------------- constructors
    @classmethod
    def from_seed(
        cls, seed: bytes, chain_id: int | None = None, member_ids: Iterable[int] = ()
    ) -> KeyRing:
        """Keys derived from ``seed`` (simulation only): ``"operator"``, ``"dso"``,
        ``"grid"``, ``"member/<id>"``, ``"meter/<id>"`` (:func:`~gridledger.ledger.encoding.derive_key`)."""
        ring = cls(
            "seed",
            OperatorSigner(enc.derive_key(seed, "operator")),
            DsoSigner(enc.derive_key(seed, "dso")),
            GridSigner(enc.derive_key(seed, "grid")),
            seed=seed,
        )
        ring.require_members(member_ids)
        if chain_id is not None:
            ring.bind_chain(chain_id)
        return ring

    @classmethod
    def from_keystores(
        cls,
        folder: Path,
        password: str,
        chain_id: int | None = None,
        member_ids: Iterable[int] | None = None,
    ) -> KeyRing:
        """Keys decrypted from the keystores of ``folder`` (:mod:`~gridledger.ledger.keystore`):
        the roles' and those of ``member_ids`` (None: every member file there)."""
        folder = Path(folder)
        found = read_keystores(folder, password, member_ids)
        ring = cls(
            "keystores",
            OperatorSigner(found.operator),
            DsoSigner(found.dso),
            GridSigner(found.grid),
            keys_dir=folder.resolve(),
        )
        for member, key in found.members.items():
            ring._members[member] = MemberSigner(key, member)
            ring._meters[member] = MeterSigner(found.meters[member], member)
        if chain_id is not None:
            ring.bind_chain(chain_id)
        return ring

    @classmethod
    def public(cls, operator: bytes) -> KeyRing:
        """Addresses only (a read-only ledger): every signing call is refused."""
        return cls("public", operator)

    # -------------------------------------------------------------- binding
    def bind_chain(self, chain_id: int) -> None:
        """Sign transactions for chain ``chain_id`` (a ring bound to another is refused)."""
        if self.chain_id is not None and self.chain_id != chain_id:
            message = f"keys bound to chain id {self.chain_id}, asked for chain id {chain_id}"
            raise ChainError(message)
        self.chain_id = chain_id
        for signer in self._tx_signers():
            signer.bind_chain(chain_id)

    def bind_market(self, market: bytes) -> None:
        """Sign bids and readings for the Market at ``market`` from now on."""
        self.market = market
        for signer in [*self._members.values(), *self._meters.values()]:
            signer.bind_market(market)

    def _tx_signers(self) -> list[OperatorSigner | GridSigner | MemberSigner | MeterSigner]:
        out: list[OperatorSigner | GridSigner | MemberSigner | MeterSigner] = []
        if self._operator_signer is not None:
            out.append(self._operator_signer)
        if self._grid is not None:
            out.append(self._grid)
        return [*out, *self._members.values(), *self._meters.values()]

    def require_members(self, member_ids: Iterable[int]) -> None:
        """Make sure every member of ``member_ids`` has its account and meter signer:
        derived (seed), or a :class:`~gridledger.errors.KeysMissing` naming the missing
        files (keystores); a public ring needs none."""
        wanted = sorted({int(m) for m in member_ids} - set(self._members))
        if not wanted or self.source == "public":
            return
        if self.source == "keystores":
            names = [keystore_file(k, m) for m in wanted for k in ("member", "meter")]
            shown = ", ".join(names[:12]) + (
                f" and {len(names) - 12} more" if len(names) > 12 else ""
            )
            message = (
                f"{self.keys_dir}: no keys for member(s) {', '.join(map(str, wanted))}: "
                f"missing {shown} (add them with `gridledger keys init DIR --scenario S`)"
            )
            raise KeysMissing(message)
        assert self._seed is not None
        for m in wanted:
            member = MemberSigner(enc.derive_key(self._seed, f"member/{m}"), m, self.chain_id)
            meter = MeterSigner(enc.derive_key(self._seed, f"meter/{m}"), m, self.chain_id)
            if self.market is not None:
                member.bind_market(self.market)
                meter.bind_market(self.market)
            self._members[m], self._meters[m] = member, meter

    # ------------------------------------------------------------ accessors
    @property
    def operator(self) -> bytes:
        """The operator's address."""
        return self._operator

    @property
    def operator_signer(self) -> OperatorSigner:
        """The operator's signer (the only one the operator's code path holds)."""
        if self._operator_signer is None:
            message = "keys: the ledger holds public addresses only (read-only), no operator key"
            raise ChainError(message)
        return self._operator_signer

    @property
    def dso(self) -> DsoSigner:
        """The DSO's signer."""
        if self._dso is None:
            message = "keys: no DSO key (a read-only ledger holds public addresses only)"
            raise ChainError(message)
        return self._dso

    @property
    def grid(self) -> GridSigner:
        """The GRID account's signer."""
        if self._grid is None:
            message = "keys: no GRID key (a read-only ledger holds public addresses only)"
            raise ChainError(message)
        return self._grid

    @property
    def dso_address(self) -> bytes:
        return self.dso.address

    @property
    def grid_address(self) -> bytes:
        return self.grid.address

    @property
    def member_ids(self) -> list[int]:
        """Members with signers, ascending."""
        return sorted(self._members)

    def member(self, member: int) -> MemberSigner:
        """The signer of ``member``'s bidding/withdrawal account."""
        signer = self._members.get(member)
        if signer is None:
            message = f"keys ({self.source}): no key for member {member}"
            raise ChainError(message)
        return signer

    def meter(self, member: int) -> MeterSigner:
        """The signer of ``member``'s meter."""
        signer = self._meters.get(member)
        if signer is None:
            message = f"keys ({self.source}): no key for the meter of member {member}"
            raise ChainError(message)
        return signer

    def member_address(self, member: int) -> bytes:
        """Address of ``member``'s bidding/withdrawal account."""
        return self.member(member).address

    def meter_address(self, member: int) -> bytes:
        """Address of ``member``'s meter."""
        return self.meter(member).address

    def member_key(self, member: int) -> bytes:
        """Private key of ``member``'s account (simulation and tests only)."""
        return self.member(member).key

    def meter_key(self, member: int) -> bytes:
        """Private key of ``member``'s meter (simulation and tests only)."""
        return self.meter(member).key

    @property
    def domain(self) -> bytes:
        """EIP-712 domain separator of the bound Market (b"" before :meth:`bind_market`)."""
        if self.market is None or self.chain_id is None:
            return b""
        return enc.domain_separator(self.chain_id, self.market)

    def addresses(self) -> list[bytes]:
        """Every account that sends transactions of its own (for funding them with gas)."""
        return [s.address for s in self._tx_signers()]

    def record(self) -> dict[str, str]:
        """Where the keys come from, as ``ledger.json`` records it (never a key or seed)."""
        out = {"source": str(self.source)}
        if self.keys_dir is not None:
            out["dir"] = str(self.keys_dir)
        return out

    def describe(self) -> str:
        """The keys' source in words, for messages."""
        if self.source == "keystores":
            return f"the keystores in {self.keys_dir}"
        if self.source == "seed":
            default = self._seed == DEFAULT_SEED
            return "the simulation keys of the default seed" if default else "seed-derived keys"
        return "public addresses only"

    # -------------------------------------------------------------- signing
    def sign_tx(self, to: bytes | None, data: bytes, gas: int, nonce: int) -> bytes:
        """A raw transaction signed by the operator."""
        return self.operator_signer.sign_tx(to, data, gas, nonce)

    def sign_round(
        self, interval: int, round_: int, bids: Sequence[Bid]
    ) -> tuple[list[int], list[bytes]]:
        """Packed bids (by member), each signed by its own member's signer, and the
        signatures ``r, vs`` flattened, for ``recordRound``."""
        words: list[int] = []
        sigs: list[bytes] = []
        for bid in sorted(bids, key=lambda b: b.member):
            if bid.member not in self._members:
                message = f"interval {interval} round {round_}: bid by unknown member {bid.member}"
                raise ChainError(message)
            word, r, vs = self._members[bid.member].sign(interval, round_, bid)
            words.append(word)
            sigs += (r, vs)
        return words, sigs

    def sign_readings(
        self, interval: int, net_wh: Mapping[int, int]
    ) -> tuple[list[int], list[bytes]]:
        """Packed readings (by member), each signed by its own meter, for ``recordReadings``."""
        words: list[int] = []
        sigs: list[bytes] = []
        for member in sorted(net_wh):
            if member not in self._meters:
                message = f"interval {interval}: reading for unknown member {member}"
                raise ChainError(message)
            word, r, vs = self._meters[member].sign(interval, int(net_wh[member]))
            words.append(word)
            sigs += (r, vs)
        return words, sigs


def resolve_keys(
    chain: str,
    keys: KeyRing | None,
    seed: bytes | None,
    *,
    saved: tuple[Path, Mapping[str, str | None], bytes] | None = None,
    read_only: bool = False,
) -> KeyRing:
    """The keys a ledger on ``chain`` signs with: ``keys``, else the keys of ``seed``, else
    (neither given) the default seed's on the embedded chain. ``saved`` is ``(ledger file,
    its keys record, its operator)`` of a saved chain: a read-only ledger without keys gets
    its public operator address; keys other than the ones it was set up with are refused
    (:class:`~gridledger.errors.KeysMismatch`, :class:`~gridledger.errors.KeysRequired`)."""
    if keys is not None and seed is not None:
        message = "keys: give a key ring or a seed, not both"
        raise ChainError(message)
    if keys is None and seed is None and saved is not None:
        where, record, operator = saved
        if read_only:
            return KeyRing.public(operator)
        if record.get("source") == "keystores":
            folder = record.get("dir")
            message = (
                f"{where}: this chain was set up with the keystores in {folder}; give "
                f"--keys {folder} (scenario key chain.keys) and its password in "
                f"{PASSWORD_ENV} or --key-password-file FILE"
            )
            raise KeysRequired(message)
    if keys is None:
        refuse_seed_keys(chain, "seed")
        keys = KeyRing.from_seed(DEFAULT_SEED if seed is None else seed)
    refuse_seed_keys(chain, keys.source)
    if saved is not None and keys.operator != saved[2]:
        where, record, operator = saved
        given = f"the keystores in {record.get('dir')}" if record.get("dir") else "seed keys"
        message = (
            f"{where}: this chain's operator is 0x{operator.hex()} ({given}); "
            f"{keys.describe()} have operator 0x{keys.operator.hex()}: give the keys the "
            "chain was set up with"
        )
        raise KeysMismatch(message)
    return keys
