"""Deployment of one market: members, clearing configuration and the setup transactions.

Setup is one block of operator transactions: deploy the settlement token and the
Market (the Market's constructor deploys the FeeClearingVerifier for the fee rules),
record the fee table and kappa (fee rules only), register the members in chunks, mint
and approve the escrow, deposit every member's escrow and the GRID account's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Protocol

import numpy as np
import numpy.typing as npt
import rlp
from eth_utils import keccak, to_checksum_address

from gridledger.errors import ChainError
from gridledger.ledger.contracts import Artifact, artifact
from gridledger.ledger.fee_clearing import kappa_args, pack_fee_table
from gridledger.ledger.keys import PublicKeys
from gridledger.ledger.path_data import zero_path_fees
from gridledger.ledger.shards import MAX_SHARD_BYTES, DataTooLarge, directory, init_code, split
from gridledger.market.path_fees import TABLE_MAX_BUSES, PathFees
from gridledger.market.settlement import Tariffs

__all__ = [
    "CLEARING_RULE_IDS",
    "DEFAULT_LIMIT_WH",
    "MAX_FEE_TABLE_BYTES",
    "MAX_OPTIMAL_BUSES",
    "NETWORK_SIGNED_ONLY",
    "ROLE_CODES",
    "SETUP_PAGE_MEMBERS",
    "ChainTiming",
    "ClearingConfig",
    "Deployment",
    "Helpers",
    "LedgerMember",
    "MemberLike",
    "NetworkCommitment",
    "clearing_config",
    "configured_data",
    "configured_network",
    "create_address",
    "members_for_ledger",
    "plan_deployment",
    "setup_transactions",
]

CLEARING_RULE_IDS: dict[str, int] = {"uniform": 0, "greedy": 1, "optimal": 2}
ROLE_CODES: dict[str, int] = {"consumer": 0, "producer": 1, "prosumer": 2}
MAX_FEE_TABLE_BYTES = MAX_SHARD_BYTES  # one data contract (EIP-170 code size limit - 1)
SETUP_PAGE_MEMBERS = 128  # members registered, or deposited, per setup transaction
MAX_OPTIMAL_BUSES = 36  # FeeClearing._MAX_OPTIMAL_BUSES: the tie-break weights fit 256 bits
ZERO_ADDRESS = bytes(20)
NETWORK_SIGNED_ONLY = (1 << 256) - 1  # Market.NETWORK_SIGNED_ONLY: verdicts signed, not checked


DEFAULT_LIMIT_WH = 1_000_000  # connection limit per interval when none is given (1 MWh)


@dataclass(frozen=True, slots=True)
class LedgerMember:
    """A member as the chain sees it: id, bus, role code (:data:`ROLE_CODES`) and its
    connection limit per interval (the largest bid energy and reading magnitude, Wh)."""

    id: int
    bus: int
    role: int
    limit_wh: int = DEFAULT_LIMIT_WH


@dataclass(frozen=True, slots=True)
class ChainTiming:
    """Deadlines in blocks: a round stays open ``round_blocks`` for members' own bids;
    meters have ``reading_blocks`` of delivery before silent ones get the default reading;
    an interval unsettled ``settle_blocks`` after its binding round may be expired."""

    round_blocks: int = 1
    reading_blocks: int = 1
    settle_blocks: int = 256


@dataclass(frozen=True, slots=True)
class Helpers:
    """Addresses of the contracts the Market calls: the clearing checker (the uniform rule's
    or the fee rules' verifier), the settlement calculator, the curtailment verifier, and
    the entry checks library linked into the Market's code."""

    clearing: bytes
    calculator: bytes
    curtailments: bytes
    entries: bytes


@dataclass(frozen=True, slots=True, eq=False)
class NetworkCommitment:
    """The DSO's linearised network: configuration word and packed table."""

    cfg: int
    table: bytes


class MemberLike(Protocol):
    """What :func:`members_for_ledger` reads of a member: id, bus and role (name or enum)."""

    @property
    def id(self) -> int: ...

    @property
    def bus(self) -> int: ...

    @property
    def role(self) -> str | Enum: ...


def members_for_ledger(
    members: Sequence[MemberLike], limits_wh: Mapping[int, int] | None = None
) -> list[LedgerMember]:
    """Map members with ``id``, ``bus``, ``role`` (str or enum) to ledger members;
    ``limits_wh`` gives each member's connection limit per interval (default
    :data:`DEFAULT_LIMIT_WH`)."""
    out = []
    for m in members:
        role = str(getattr(m.role, "value", m.role))
        if role not in ROLE_CODES:
            message = f"member {m.id}: role {role!r} not in {sorted(ROLE_CODES)}"
            raise ChainError(message)
        limit = DEFAULT_LIMIT_WH if limits_wh is None else int(limits_wh[int(m.id)])
        out.append(LedgerMember(int(m.id), int(m.bus), ROLE_CODES[role], limit))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class ClearingConfig:
    """The clearing rule run on chain; for the fee rules the fee table, kappa and the bytes
    committed for the table (the table itself, or its path form)."""

    rule: str = "uniform"
    fees: npt.NDArray[np.int64] | None = None
    kappa: Fraction = Fraction(1, 2)
    packed: bytes | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """What one setup put on chain (saved in ``ledger.json``)."""

    token: bytes
    market: bytes
    rounds: int
    tariffs: Tariffs
    clearing: ClearingConfig
    members: tuple[LedgerMember, ...]  # by id, unique
    deposit_micro: int
    grid_deposit_micro: int
    helpers: Helpers
    dso: bytes
    grid: bytes
    timing: ChainTiming = ChainTiming()
    network: NetworkCommitment | None = None
    shards: tuple[bytes, ...] = ()  # data contracts holding a fee table or network in parts


def create_address(sender: bytes, nonce: int) -> bytes:
    """Address of the contract that ``sender`` creates with its transaction ``nonce``."""
    return bytes(keccak(rlp.encode([sender, nonce]))[12:])


def clearing_config(
    clearing: str,
    fees: npt.ArrayLike | PathFees | None,
    kappa: Fraction | float,
    members: Sequence[LedgerMember],
) -> tuple[ClearingConfig, bytes | None]:
    """Validate the rule; the configuration and, for a fee rule, the packed fee table.

    ``fees`` is a (B, B) table, fees in path form (:class:`~gridledger.market.path_fees.
    PathFees`) or None (no fees: a zero table, or past ``TABLE_MAX_BUSES`` buses a zero path
    form)."""
    if clearing not in CLEARING_RULE_IDS:
        message = (
            f"setup(): clearing rule {clearing!r} is not implemented on chain; "
            f"use one of {sorted(CLEARING_RULE_IDS)}"
        )
        raise ChainError(message)
    kappa_frac = Fraction(*kappa_args(kappa))
    if clearing == "uniform":
        given = fees.table if isinstance(fees, PathFees) else fees
        if given is not None and np.any(np.asarray(given)):
            message = "setup(): clearing 'uniform' charges no network fees; use greedy/optimal"
            raise ChainError(message)
        return ClearingConfig(clearing, None, kappa_frac), None
    max_bus = max((m.bus for m in members), default=0)
    if fees is None and max_bus >= TABLE_MAX_BUSES:
        fees = zero_path_fees(max_bus + 1)
    if isinstance(fees, PathFees):
        table = fees.table
        packed = pack_fee_table(fees)
    else:
        if fees is None:
            table = np.zeros((max_bus + 1, max_bus + 1), dtype=np.int64)
        else:
            table = np.asarray(fees).astype(np.int64)
        packed = pack_fee_table(table)
    if table.shape[0] <= max_bus:
        message = (
            f"setup(): fee table covers buses 0..{table.shape[0] - 1}, a member is at bus {max_bus}"
        )
        raise ChainError(message)
    if clearing == "optimal" and table.shape[0] > MAX_OPTIMAL_BUSES:
        message = (
            f"setup(): the optimal rule's canonical tie-break is checked on chain for at most "
            f"{MAX_OPTIMAL_BUSES} buses, the fee table has {table.shape[0]}; use greedy"
        )
        raise ChainError(message)
    try:
        split(packed)
    except DataTooLarge as error:
        message = (
            f"setup(): fee table of {table.shape[0]} buses: {error}: commit it in path form "
            '(market.fee_form = "path"), run this feeder off chain (chain.backend = "none", '
            "--chain none) or without a network fee"
        )
        raise ChainError(message) from error
    return ClearingConfig(clearing, table, kappa_frac, packed), packed


def _chunks(data: bytes | None) -> list[bytes]:
    """The chunks ``data`` is deployed in as shards (none when one data contract holds it)."""
    return [] if data is None or len(data) <= MAX_SHARD_BYTES else split(data)


def configured_data(
    table: bytes | None, network: bytes | None, addresses: Sequence[bytes]
) -> tuple[bytes | None, bytes | None, list[bytes]]:
    """What ``configureClearing`` and ``configureNetwork`` are given for the packed fee
    ``table`` and ``network`` (each itself, or when over one data contract the directory of
    its shards at ``addresses``: :mod:`~gridledger.ledger.shards`) and the chunks the
    shards hold, in deployment order."""
    given: list[bytes | None] = []
    chunks: list[bytes] = []
    for data in (table, network):
        parts = _chunks(data)
        if parts:
            at = addresses[len(chunks) : len(chunks) + len(parts)]
            given.append(directory(parts, at))
            chunks += parts
        else:
            given.append(data)
    if len(chunks) != len(addresses):
        message = f"setup(): {len(chunks)} data shards planned at {len(addresses)} addresses"
        raise ChainError(message)
    return given[0], given[1], chunks


def configured_network(d: Deployment, table: bytes | None) -> bytes:
    """The network bytes ``configureNetwork`` is given, and the DSO signs: the packed
    network, or the directory of its shards (``table``: the packed fee table, whose shards
    come first)."""
    network = b"" if d.network is None else d.network.table
    return configured_data(table, network, d.shards)[1] or b""


def plan_deployment(
    operator: bytes,
    nonce: int,
    members: Sequence[LedgerMember],
    tariffs: Tariffs,
    rounds: int,
    deposits_micro: tuple[int, int | None],
    clearing: tuple[str, npt.ArrayLike | PathFees | None, Fraction | float],
    *,
    parties: tuple[bytes, bytes],
    timing: ChainTiming = ChainTiming(),
    network: NetworkCommitment | None = None,
) -> tuple[Deployment, bytes | None]:
    """Check the setup's parameters; the deployment and, for a fee rule, the packed fee table.

    The ``operator``'s transactions ``nonce`` .. ``nonce + 5`` create the token, the
    clearing checker, the settlement calculator, the curtailment verifier, the entry checks
    library and the Market (linked to that library); the next ones create the data shards of
    a fee table or network over one data contract (:func:`configured_data`).
    ``deposits_micro`` is ``(per member, GRID account)``, GRID None: the members' total.
    ``clearing`` is ``(rule, fees, kappa)`` (:func:`clearing_config`); ``parties`` the DSO's
    and the GRID account's addresses; ``network`` the DSO's linearised network, if any.
    """
    if not 1 <= rounds <= 255:
        message = f"setup(): rounds={rounds} must be in 1..255"
        raise ChainError(message)
    config, table = clearing_config(*clearing, members)
    n_shards = len(_chunks(table)) + len(_chunks(None if network is None else network.table))
    shards = tuple(create_address(operator, nonce + 6 + k) for k in range(n_shards))
    by_id = {m.id: m for m in members}
    deposit_micro, grid_micro = deposits_micro
    deployment = Deployment(
        token=create_address(operator, nonce),
        market=create_address(operator, nonce + 5),
        rounds=rounds,
        tariffs=tariffs,
        clearing=config,
        members=tuple(by_id[i] for i in sorted(by_id)),
        deposit_micro=deposit_micro,
        grid_deposit_micro=deposit_micro * len(by_id) if grid_micro is None else grid_micro,
        helpers=Helpers(*(create_address(operator, nonce + k) for k in (1, 2, 3, 4))),
        dso=parties[0],
        grid=parties[1],
        timing=timing,
        network=network,
        shards=shards,
    )
    return deployment, table


def setup_transactions(
    keys: PublicKeys,
    abis: tuple[Artifact, Artifact],
    deployment: Deployment,
    table: bytes | None,
    network_sig: tuple[bytes, bytes] | None = None,
) -> list[tuple[str, bytes | None, bytes]]:
    """The setup calls ``(label, to, data)`` of ``deployment``, in order (``to`` None: a
    deployment); the operator sends them with estimated gas (:meth:`TxQueue.submit`).

    ``abis`` are the token's and the Market's; ``table`` the packed fee table (fee rules).
    The contracts must be at the addresses of the operator's next six nonces; ``network_sig``
    is the DSO's signature of the network commitment (when the deployment has one).
    ``keys`` gives the public addresses (operator, members' accounts and meters).
    Registration and deposits are paged, :data:`SETUP_PAGE_MEMBERS` members per call.
    """
    token_abi, market_abi = abis
    d = deployment
    operator = to_checksum_address(keys.operator)
    ids = [m.id for m in d.members]
    total = d.deposit_micro * len(ids) + d.grid_deposit_micro
    uniform = d.clearing.rule == "uniform"
    clearing_helper = artifact("UniformClearing" if uniform else "FeeClearingVerifier")
    h = d.helpers
    config = (
        operator,
        to_checksum_address(d.dso),
        to_checksum_address(d.grid),
        to_checksum_address(d.token),
        to_checksum_address(ZERO_ADDRESS if uniform else h.clearing),
        to_checksum_address(h.clearing if uniform else ZERO_ADDRESS),
        to_checksum_address(h.calculator),
        to_checksum_address(h.curtailments),
        d.rounds,
        CLEARING_RULE_IDS[d.clearing.rule],
        d.tariffs.tolerance_bp,
        d.tariffs.retail_per_kwh_micro,
        d.tariffs.feed_in_per_kwh_micro,
        d.timing.round_blocks,
        d.timing.reading_blocks,
        d.timing.settle_blocks,
    )
    steps: list[tuple[str, bytes | None, bytes]] = [
        ("deploy token", None, token_abi.deploy_data(operator)),
        ("deploy clearing", None, clearing_helper.deploy_data()),
        ("deploy calculator", None, artifact("SettlementCalculator").deploy_data()),
        ("deploy curtailments", None, artifact("SecurityVerifier").deploy_data()),
        ("deploy entry checks", None, artifact("EntryChecker").deploy_data()),
        ("deploy market", None, market_abi.deploy_data(config, library=h.entries)),
    ]
    fee_data, net_data, chunks = configured_data(
        table, None if d.network is None else d.network.table, d.shards
    )
    for k, part in enumerate(chunks):
        steps.append((f"deploy data shard {k}", None, init_code(part)))
    if fee_data is not None:
        assert d.clearing.fees is not None
        n_buses = int(d.clearing.fees.shape[0])
        kappa = kappa_args(d.clearing.kappa)
        data = market_abi.encode_call("configureClearing", n_buses, *kappa, fee_data)
        steps.append(("configure clearing", d.market, data))
    if d.network is not None:
        if network_sig is None:
            message = "setup(): the network commitment needs the DSO's signature"
            raise ChainError(message)
        args = (d.network.cfg, net_data, list(network_sig))
        steps.append(
            ("configure network", d.market, market_abi.encode_call("configureNetwork", *args))
        )
    for start in range(0, len(d.members), SETUP_PAGE_MEMBERS):
        chunk = d.members[start : start + SETUP_PAGE_MEMBERS]
        data = market_abi.encode_call(
            "registerMembers",
            [m.id for m in chunk],
            [to_checksum_address(keys.member_address(m.id)) for m in chunk],
            [to_checksum_address(keys.meter_address(m.id)) for m in chunk],
            [m.bus for m in chunk],
            [m.role for m in chunk],
            [m.limit_wh for m in chunk],
        )
        steps.append(("register members", d.market, data))
    steps.append(("mint", d.token, token_abi.encode_call("mint", operator, total)))
    approve = token_abi.encode_call("approve", to_checksum_address(d.market), total)
    steps.append(("approve", d.token, approve))
    for start in range(0, len(ids), SETUP_PAGE_MEMBERS):
        page = ids[start : start + SETUP_PAGE_MEMBERS]
        data = market_abi.encode_call("depositMany", page, [d.deposit_micro] * len(page))
        steps.append(("deposit members", d.market, data))
    grid = market_abi.encode_call("depositGrid", d.grid_deposit_micro)
    steps.append(("deposit grid", d.market, grid))
    return steps
